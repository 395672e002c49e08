import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { BehaviorSubject, Observable } from 'rxjs';
import {
  backoffDelay,
  consoleLogger,
  NotConnectedError,
  PartialPublishError,
  publishEach,
  redactUrl,
  TimeoutError,
  toError,
  type ConsumeOptions,
  type Delivery,
  type Endpoint,
  type Logger,
  type Message,
  type StatusReportingTransport,
  type Transport,
  type TransportStatus,
} from '../../src/core/index.ts';
import { encodeEntry } from './redis-streams-codec.ts';
import { StreamGroupConsumer } from './redis-streams-consumer.ts';
import { whileOnline } from './redis-streams-offline.ts';
import { resolveStreamTarget, type RedisStreamTarget } from './redis-streams-endpoint.ts';
import { DEFAULT_MAX_ENTRY_BYTES, validateRedisStreamsOptions, type RedisStreamsTransportOptions } from './redis-streams-options.ts';
import { StreamTail } from './redis-streams-tail.ts';

const DEFAULT_URL = 'redis://127.0.0.1:6379';

/** The transport's connection state (its command connection's). */
export interface RedisStreamsStatus extends TransportStatus {
  readonly state: 'connecting' | 'connected' | 'reconnecting' | 'closed';
}

/**
 * Redis Streams over ioredis: `redis:stream/<key>` (publish; consume without a group: every
 * subscriber gets every new entry, at most once) and `redis:stream/<key>?group=<group>` (consume as
 * a consumer group: competing consumers, at-least-once). See `resolveStreamTarget` for the URI.
 *
 * Contract (the transport SPI, plus):
 * - one command connection (publishes, acks, claims, dead letters) and one connection per
 *   subscription (XREAD/XREADGROUP block it), each reconnecting with backoff; commands wait through
 *   an outage and ioredis resends those unanswered when the link dropped — a publish may then be
 *   written twice (at-least-once: consumers dedupe by message id). `status$` shows the state.
 * - `publish` writes one XADD per message, pipelined in one round trip, trimmed with `MAXLEN ~` when
 *   the endpoint or the transport sets `maxLen`, and resolves when Redis has answered every one
 *   (with the server's own durability: `appendonly yes` + `appendfsync always` for none lost to a
 *   crash). Each message is encoded on its own (`encodeEntry`): one that cannot be fails alone with
 *   `RedisStreamsUnencodableError` and the call rejects with `PartialPublishError` naming it; an
 *   answer not received within `publishTimeoutMs` rejects with `TimeoutError`.
 * - `consume` with a group: see `StreamGroupConsumer` (XACK after settlement, nack → redelivered at
 *   once, `attempt` = Redis's delivery count, `maxDeliveries` → `<key>:dead`, a crashed consumer's
 *   entries claimed after `minIdleMs`, unsettled entries handed back on unsubscribe); without a
 *   group: see `StreamTail`.
 * - `close` stops every subscription (handing back what is unsettled while Redis is reachable; during
 *   an outage the entries stay pending and are claimed after `minIdleMs`), waits for in-flight
 *   publishes (up to `publishTimeoutMs`) and quits (QUIT while the link is up, else disconnects at
 *   once: it never waits for Redis to come back). `connect` after `close` connects again.
 * @example
 * const redis = new RedisStreamsTransport({ url: 'redis://127.0.0.1:6379' });
 * from('redis:stream/orders?group=billing').to('redis:stream/invoices?maxLen=100000');
 */
export class RedisStreamsTransport implements Transport, StatusReportingTransport<RedisStreamsStatus> {
  readonly scheme = 'redis';
  private readonly options: RedisStreamsTransportOptions;
  private readonly log: Logger;
  private readonly url: string;
  private readonly consumerName: string;
  private client: Redis | undefined;
  private closed = true;
  private readonly consumers = new Set<StreamGroupConsumer | StreamTail>();
  private readonly names = new Set<string>();
  /** Hand-backs of disposed subscriptions, by `key\0group`: a new subscription there waits for them. */
  private readonly handBacks = new Map<string, Set<Promise<void>>>();
  private readonly inFlight = new Set<Promise<unknown>>();
  private readonly status = new BehaviorSubject<RedisStreamsStatus>({ state: 'closed', since: Date.now() });

  constructor(options: RedisStreamsTransportOptions = {}, log: Logger = consoleLogger) {
    validateRedisStreamsOptions(options);
    this.options = options;
    this.log = log;
    this.url = options.url ?? process.env.REDIS_URL ?? DEFAULT_URL;
    this.consumerName = options.consumerName ?? `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
  }

  /** Connection state changes, the current one first (for health checks). */
  get status$(): Observable<RedisStreamsStatus> {
    return this.status.asObservable();
  }

  /** Connects (retrying with backoff up to `connectTimeoutMs`); rejects with `NotConnectedError`. */
  async connect(): Promise<void> {
    if (!this.closed && this.client !== undefined) return;
    this.closed = false;
    const client = this.newClient();
    this.client = client;
    this.watch(client);
    const timeoutMs = this.options.connectTimeoutMs ?? 15_000;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        client.off('ready', ready);
        reject(new NotConnectedError(`redis: cannot connect to ${redactUrl(this.url)} within ${timeoutMs} ms${this.status.value.lastError === undefined ? '' : `: ${this.status.value.lastError}`}`));
      }, timeoutMs);
      const ready = (): void => {
        clearTimeout(timer);
        resolve();
      };
      client.once('ready', ready);
      client.connect().catch(() => undefined); // failures are retried by the retry strategy until the timeout
    }).catch(async (error: unknown) => {
      this.closed = true;
      this.client = undefined;
      client.disconnect();
      throw error;
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const consumers = [...this.consumers];
    this.consumers.clear();
    await Promise.allSettled([...consumers.map((consumer) => consumer.dispose()), ...[...this.handBacks.values()].flatMap((set) => [...set])]);
    this.names.clear();
    this.handBacks.clear();
    await Promise.allSettled([...this.inFlight]);
    const client = this.client;
    this.client = undefined;
    if (client !== undefined && !(await whileOnline(client, () => client.quit()).catch(() => false))) client.disconnect();
    this.next('closed');
  }

  async publish(endpoint: Endpoint, messages: readonly Message[]): Promise<void> {
    const client = this.client;
    if (this.closed || client === undefined) throw new NotConnectedError(`redis transport is closed; cannot publish to '${endpoint.uri}'`);
    const target = resolveStreamTarget(endpoint);
    const maxBytes = this.options.maxMessageBytes ?? DEFAULT_MAX_ENTRY_BYTES;
    const maxLen = target.maxLen ?? this.options.maxLen;
    const head: (string | number)[] = maxLen === undefined ? [target.key, '*'] : [target.key, 'MAXLEN', '~', maxLen, '*'];
    return publishEach(
      messages,
      (message) => encodeEntry(message, maxBytes),
      (entries) => this.track(this.send(client, head, entries), endpoint),
    );
  }

  consume(endpoint: Endpoint, options: ConsumeOptions = {}): Observable<Delivery> {
    return new Observable<Delivery>((subscriber) => {
      const target = resolveStreamTarget(endpoint);
      const client = this.client;
      if (this.closed || client === undefined) {
        subscriber.error(new NotConnectedError(`redis transport is closed; cannot consume '${endpoint.uri}'`));
        return undefined;
      }
      if (options.signal?.aborted === true) {
        subscriber.complete();
        return undefined;
      }
      const blocking = client.duplicate({ lazyConnect: true, connectionName: 'interchange-stream-consumer' });
      blocking.on('error', () => undefined); // what fails is a command: the subscription's loop logs it and retries
      const common = {
        prefetch: options.prefetch ?? 100,
        blockMs: this.options.blockMs ?? 5_000,
        maxMessageBytes: this.options.maxMessageBytes ?? DEFAULT_MAX_ENTRY_BYTES,
        initialDelayMs: this.options.reconnect?.initialDelayMs ?? 100,
        maxDelayMs: this.options.reconnect?.maxDelayMs ?? 10_000,
        log: this.log,
      };
      let consumer: StreamGroupConsumer | StreamTail;
      let release: (() => void) | undefined;
      if (target.group === undefined) {
        const tail = new StreamTail(target, subscriber, blocking, common);
        tail.start();
        consumer = tail;
      } else {
        const [name, free] = this.claimName(target);
        release = free;
        const group = new StreamGroupConsumer(target, name, subscriber, client, blocking, {
          ...common,
          maxDeliveries: this.options.maxDeliveries ?? 5,
          minIdleMs: this.options.minIdleMs ?? 30_000,
          claimIntervalMs: this.options.claimIntervalMs ?? 5_000,
        });
        group.start(Promise.allSettled([...(this.handBacks.get(handBackKey(target)) ?? [])]));
        consumer = group;
      }
      this.consumers.add(consumer);
      const onAbort = (): void => consumer.stopIntake();
      options.signal?.addEventListener('abort', onAbort, { once: true });
      return () => {
        options.signal?.removeEventListener('abort', onAbort);
        if (!this.consumers.delete(consumer)) return; // closed with the transport
        if (consumer instanceof StreamTail) {
          consumer.dispose();
          return;
        }
        const handBack = consumer.dispose().finally(() => {
          release?.();
          set.delete(handBack);
        });
        const key = handBackKey(target);
        const set = this.handBacks.get(key) ?? new Set<Promise<void>>();
        this.handBacks.set(key, set);
        set.add(handBack);
      };
    });
  }

  /** The endpoint's consumer name (or the transport's), with `-2`, `-3`… while a live subscription of this transport holds it. */
  private claimName(target: RedisStreamTarget): [string, () => void] {
    const base = target.consumer ?? this.consumerName;
    let name = base;
    for (let n = 2; this.names.has(`${target.key}\0${target.group}\0${name}`); n += 1) name = `${base}-${n}`;
    const id = `${target.key}\0${target.group}\0${name}`;
    this.names.add(id);
    return [name, () => this.names.delete(id)];
  }

  /** XADDs in one round trip (pipelined when more than one); a failed one fails its message alone. */
  private async send(client: Redis, head: readonly (string | number)[], entries: readonly (string | Buffer)[][]): Promise<void> {
    if (entries.length === 1) {
      await client.call('XADD', ...head, ...(entries[0] as (string | Buffer)[]));
      return;
    }
    const pipeline = client.pipeline();
    for (const fields of entries) pipeline.call('XADD', ...head, ...fields);
    const results = (await pipeline.exec()) ?? [];
    let failures: Map<number, Error> | undefined;
    results.forEach(([error], index) => {
      if (error !== null) (failures ??= new Map()).set(index, error);
    });
    if (failures !== undefined) {
      if (failures.size === entries.length) throw failures.get(0) as Error;
      throw new PartialPublishError(failures, entries.length);
    }
  }

  /** Bounds a publish by `publishTimeoutMs` and tracks it for `close`. */
  private async track(sending: Promise<void>, endpoint: Endpoint): Promise<void> {
    const timeoutMs = this.options.publishTimeoutMs ?? 30_000;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new TimeoutError(`redis: publish to '${endpoint.uri}' not answered within ${timeoutMs} ms`)), timeoutMs);
    });
    const bounded = Promise.race([sending, timeout]);
    this.inFlight.add(bounded);
    try {
      await bounded;
    } finally {
      clearTimeout(timer);
      this.inFlight.delete(bounded);
      sending.catch(() => undefined);
    }
  }

  private newClient(): Redis {
    const initialMs = this.options.reconnect?.initialDelayMs ?? 100;
    const maxMs = this.options.reconnect?.maxDelayMs ?? 10_000;
    return new Redis(this.url, {
      lazyConnect: true,
      maxRetriesPerRequest: null,
      enableReadyCheck: true,
      connectionName: 'interchange-streams',
      retryStrategy: (times) => backoffDelay(times - 1, { initialMs, maxMs }),
    });
  }

  private watch(client: Redis): void {
    client.on('ready', () => this.next('connected'));
    client.on('reconnecting', () => this.next('reconnecting'));
    client.on('error', (error: unknown) => {
      const text = redactUrl(toError(error).message);
      if (this.status.value.lastError !== text) this.log.warn('redis: connection error', { url: redactUrl(this.url), error: text });
      this.status.next({ ...this.status.value, lastError: text });
    });
  }

  private next(state: RedisStreamsStatus['state']): void {
    if (this.status.value.state === state) return;
    const { lastError } = this.status.value;
    this.status.next({ state, since: Date.now(), ...(lastError === undefined || state === 'connected' ? {} : { lastError }) });
  }
}

function handBackKey(target: RedisStreamTarget): string {
  return `${target.key}\0${target.group ?? ''}`;
}
