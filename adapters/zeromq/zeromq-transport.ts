import { Publisher, Pull, Push, Subscriber } from 'zeromq';
import { setTimeout as sleep } from 'node:timers/promises';
import { Observable } from 'rxjs';
import { consoleLogger, NotConnectedError, PartialPublishError, publishEach, TimeoutError, toError, type ConsumeOptions, type Delivery, type Endpoint, type Logger, type Message, type Transport } from '../../src/core/index.ts';
import { encodeFrames } from './zeromq-codec.ts';
import { checkConnectable, resolveZeroMqEndpoint, type ZeroMqTarget } from './zeromq-endpoint.ts';
import { ZeroMqConfigurationError } from './zeromq-errors.ts';
import { ZeroMqInbox, type InboxConsumer } from './zeromq-inbox.ts';
import { DEFAULT_BOUND_TCP_MAX_MESSAGE_BYTES, DEFAULT_HWM, DEFAULT_MAX_MESSAGE_BYTES, validateZeroMqOptions, type ZeroMqTransportOptions } from './zeromq-options.ts';
import { bindWithRetry, zmqCode } from './zeromq-sockets.ts';

/** One receiving PULL socket of the transport, kept for its lifetime, shared by its consumers. */
interface PullEntry {
  readonly socket: Pull;
  readonly inbox: ZeroMqInbox;
  readonly target: ZeroMqTarget;
  readonly ready: Promise<void>;
}

/** One sending socket (PUSH or PUB) of the transport, kept for its lifetime; sends in call order. */
interface SendEntry {
  readonly socket: Push | Publisher;
  readonly label: string;
  readonly hwm: number;
  ready: Promise<void>;
  tail: Promise<void>;
}

/**
 * ZeroMQ (libzmq through the `zeromq` v6 package): `zmq:<address>?options`, `<address>` being
 * `tcp://host:port`, `ipc:///path` or `inproc://name`. See `resolveZeroMqEndpoint` for the options.
 * - pipeline (default): `publish` on a PUSH socket, `consume` on a PULL socket. By default the consumer
 *   binds and publishers connect (`?bind=` turns a side around: a bound PUSH with connecting PULLs
 *   spreads messages over competing consumer processes).
 * - pubsub (`?pattern=pubsub`): `publish` on a PUB socket (binds by default) with a topic frame
 *   (`?topic=`), `consume` on a SUB socket per subscriber (connects by default, `?topic=` a prefix filter).
 *
 * Delivery is AT MOST ONCE — ZeroMQ has no acknowledgements, no redelivery, no persistence:
 * - `publish` resolves once every message is queued to the socket (no confirmation exists). A PUSH
 *   socket whose peers are all at their high-water mark makes it wait (`publishTimeoutMs`, then
 *   `TimeoutError`; when earlier messages of the call were queued, `PartialPublishError` naming only
 *   the message that timed out and those after it); a PUB socket drops instead, and drops for a
 *   subscriber not connected yet. A second endpoint on the same address and side must have the same
 *   `hwm` (one socket), else `ZeroMqConfigurationError`.
 * - The transport keeps one socket per address and side for its lifetime: a PUSH queues (up to its
 *   high-water mark) before its peer exists, and a PULL outlives its consumers, so a later consumer of
 *   the same transport gets what is queued. Whatever sits in a socket's queue, or unsettled in a
 *   consumer, is lost when the process dies or `close` gives up lingering.
 * - `consume`: see `ZeroMqInbox` (prefetch stops reading the socket; `nack` redelivers in this process
 *   up to `maxDeliveries`, then drops; unsubscribing hands unsettled deliveries to the next consumer of
 *   the same PULL socket; a SUB socket is the subscriber's own and closes with it).
 * - Peers are untrusted by default (`headers=standard`: a fresh id, no identity, correlation, trace or
 *   expiry headers; see `decodeFrames`); `headers=all` is for trusted Interchange peers. A receiving
 *   socket bound on TCP takes 1 MiB messages unless `maxMessageBytes` says otherwise.
 * - ZeroMQ reconnects connecting sockets by itself (`reconnect`: 100 ms doubling to 10 s) and sets
 *   TCP_NODELAY on every TCP connection; a bind whose address is in use is retried with backoff.
 * - `close` lets in-flight publishes finish for up to `lingerMs`, then closes every socket, which
 *   still flushes its queue to connected peers for `lingerMs`; the rest is dropped. Idempotent;
 *   `connect` after `close` opens again with fresh sockets.
 * @example
 * const zmq = new ZeroMqTransport({ hwm: 10_000 });
 * from('zmq:tcp://0.0.0.0:5555').to('zmq:tcp://127.0.0.1:5556?pattern=pubsub&topic=orders');
 */
export class ZeroMqTransport implements Transport {
  readonly scheme = 'zmq';
  readonly defaultPrefetch = 100;
  private readonly options: ZeroMqTransportOptions;
  private readonly maxBytes: number;
  private open = false;
  private readonly pulls = new Map<string, PullEntry>();
  private readonly senders = new Map<string, SendEntry>();
  private readonly subscriptions = new Set<{ readonly socket: Subscriber; readonly inbox: ZeroMqInbox }>();

  constructor(
    options: ZeroMqTransportOptions = {},
    private readonly log: Logger = consoleLogger,
  ) {
    validateZeroMqOptions(options);
    this.options = options;
    this.maxBytes = options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
  }

  /** Opens the transport. ZeroMQ itself has nothing to connect to: sockets bind or connect on first use. */
  connect(): Promise<void> {
    this.open = true;
    return Promise.resolve();
  }

  consume(endpoint: Endpoint, options: ConsumeOptions = {}): Observable<Delivery> {
    return new Observable<Delivery>((subscriber) => {
      if (!this.open) {
        subscriber.error(new NotConnectedError(`zeromq transport is not open: call connect() before consuming '${endpoint.uri}'`));
        return undefined;
      }
      const { signal } = options;
      if (signal?.aborted === true) return undefined;
      const prefetch = options.prefetch ?? this.defaultPrefetch;
      let consumer: InboxConsumer;
      let release: () => void;
      try {
        const target = this.resolve(endpoint);
        if (!target.consumerBinds) checkConnectable(endpoint.uri, target.address);
        if (target.pattern === 'pipeline') {
          const entry = this.pullFor(target, endpoint.uri);
          consumer = entry.inbox.attach(subscriber, prefetch);
          entry.ready.catch((error: unknown) => consumer.fail(toError(error)));
          release = () => entry.inbox.detach(consumer);
        } else {
          const subscription = this.subscribe(target, endpoint.uri);
          consumer = subscription.inbox.attach(subscriber, prefetch);
          subscription.ready.catch((error: unknown) => consumer.fail(toError(error)));
          release = () => {
            subscription.inbox.close();
            subscription.socket.close();
            this.subscriptions.delete(subscription);
          };
        }
      } catch (error) {
        subscriber.error(error);
        return undefined;
      }
      const stopIntake = (): void => {
        consumer.intake = false;
      };
      signal?.addEventListener('abort', stopIntake, { once: true });
      return () => {
        signal?.removeEventListener('abort', stopIntake);
        release();
      };
    });
  }

  async publish(endpoint: Endpoint, messages: readonly Message[]): Promise<void> {
    if (!this.open) throw new NotConnectedError(`zeromq transport is not open: call connect() before publishing to '${endpoint.uri}'`);
    const target = this.resolve(endpoint);
    if (!target.publisherBinds) checkConnectable(endpoint.uri, target.address);
    if (messages.length === 0) return;
    const sender = this.senderFor(target, endpoint.uri);
    await publishEach(
      messages,
      (message) => encodeFrames(message, target.pattern, target.topic, this.maxBytes),
      (batch) => this.send(sender, batch),
    );
  }

  async close(): Promise<void> {
    if (!this.open) return;
    this.open = false;
    const lingerMs = this.options.lingerMs ?? 1_000;
    const tails = [...this.senders.values()].map((sender) => sender.tail);
    const drained = Promise.allSettled(tails);
    await Promise.race([drained, sleep(lingerMs, undefined, { ref: false })]);
    for (const { socket, inbox } of this.pulls.values()) {
      inbox.close();
      socket.close();
    }
    for (const subscription of this.subscriptions) {
      subscription.inbox.close();
      subscription.socket.close();
    }
    for (const { socket } of this.senders.values()) socket.close();
    this.pulls.clear();
    this.subscriptions.clear();
    this.senders.clear();
  }

  private resolve(endpoint: Endpoint): ZeroMqTarget {
    return resolveZeroMqEndpoint(endpoint, { hwm: this.options.hwm ?? DEFAULT_HWM, maxDeliveries: this.options.maxDeliveries ?? 5 });
  }

  /** The options every socket gets (a zeromq socket refuses an option its type lacks: HWMs are set per direction). */
  private socketOptions(): { linger: number; reconnectInterval: number; reconnectMaxInterval: number } {
    return {
      linger: this.options.lingerMs ?? 1_000,
      reconnectInterval: this.options.reconnect?.initialDelayMs ?? 100,
      reconnectMaxInterval: this.options.reconnect?.maxDelayMs ?? 10_000,
    };
  }

  /**
   * The largest message a receiving socket takes: `maxMessageBytes` when set; unset, 1 MiB on a socket
   * bound on TCP (any host that reaches the port may connect and queue `hwm` messages), else 16 MiB.
   */
  private receiveLimit(target: ZeroMqTarget, binds: boolean): number {
    if (this.options.maxMessageBytes !== undefined) return this.options.maxMessageBytes;
    return binds && target.address.startsWith('tcp://') ? DEFAULT_BOUND_TCP_MAX_MESSAGE_BYTES : DEFAULT_MAX_MESSAGE_BYTES;
  }

  /** Binds or connects `socket` as the target says; a synchronous connect failure is a configuration error. */
  private attachSocket(socket: Push | Pull | Publisher | Subscriber, binds: boolean, target: ZeroMqTarget, uri: string): Promise<void> {
    if (binds) return bindWithRetry(socket, target.address, this.options.bindTimeoutMs ?? 10_000, () => !this.open);
    try {
      socket.connect(target.address);
    } catch (error) {
      socket.close();
      throw new ZeroMqConfigurationError(`'${uri}': cannot connect to ${target.address}: ${toError(error).message}`, { cause: error });
    }
    return Promise.resolve();
  }

  private pullFor(target: ZeroMqTarget, uri: string): PullEntry {
    const key = `${target.address}\0${target.consumerBinds}`;
    const existing = this.pulls.get(key);
    if (existing !== undefined) {
      const { hwm, headers, maxDeliveries } = existing.target;
      if (hwm !== target.hwm || headers !== target.headers || maxDeliveries !== target.maxDeliveries) {
        throw new ZeroMqConfigurationError(`'${uri}': ${target.address} is consumed already with other options (hwm, headers, maxDeliveries must match)`);
      }
      return existing;
    }
    const socket = new Pull({ ...this.socketOptions(), receiveHighWaterMark: target.hwm, maxMessageSize: this.receiveLimit(target, target.consumerBinds) });
    const ready = this.attachSocket(socket, target.consumerBinds, target, uri);
    const inbox = new ZeroMqInbox(socket, ready, { pattern: 'pipeline', headers: target.headers, maxDeliveries: target.maxDeliveries, label: uri, log: this.log });
    const entry: PullEntry = { socket, inbox, target, ready };
    this.pulls.set(key, entry);
    ready.catch(() => {
      // a socket that could not bind is given up: the next consume tries afresh
      if (this.pulls.get(key) !== entry) return;
      this.pulls.delete(key);
      inbox.close();
      socket.close();
    });
    return entry;
  }

  private subscribe(target: ZeroMqTarget, uri: string): { readonly socket: Subscriber; readonly inbox: ZeroMqInbox; readonly ready: Promise<void> } {
    const socket = new Subscriber({ ...this.socketOptions(), receiveHighWaterMark: target.hwm, maxMessageSize: this.receiveLimit(target, target.consumerBinds) });
    socket.subscribe(target.topic);
    const ready = this.attachSocket(socket, target.consumerBinds, target, uri);
    const inbox = new ZeroMqInbox(socket, ready, { pattern: 'pubsub', headers: target.headers, maxDeliveries: target.maxDeliveries, label: uri, log: this.log });
    const subscription = { socket, inbox, ready };
    this.subscriptions.add(subscription);
    return subscription;
  }

  private senderFor(target: ZeroMqTarget, uri: string): SendEntry {
    const key = `${target.pattern}\0${target.address}\0${target.publisherBinds}`;
    const existing = this.senders.get(key);
    if (existing !== undefined) {
      if (existing.hwm !== target.hwm) throw new ZeroMqConfigurationError(`'${uri}': ${target.address} is published to already with hwm=${existing.hwm} (one socket per address: hwm must match)`);
      return existing;
    }
    const settings = { ...this.socketOptions(), sendHighWaterMark: target.hwm, sendTimeout: this.options.publishTimeoutMs ?? 30_000 };
    const socket = target.pattern === 'pipeline' ? new Push(settings) : new Publisher(settings);
    const sender: SendEntry = { socket, label: uri, hwm: target.hwm, ready: this.attachSocket(socket, target.publisherBinds, target, uri), tail: Promise.resolve() };
    this.senders.set(key, sender);
    sender.ready.catch(() => {
      // a socket that could not bind is given up: the next publish tries afresh
      if (this.senders.get(key) === sender) this.senders.delete(key);
      socket.close();
    });
    return sender;
  }

  /** Queues `batch` on the sender's socket after whatever it is sending (zeromq allows one pending send per socket). */
  private send(sender: SendEntry, batch: readonly Buffer[][]): Promise<void> {
    const run = sender.tail.then(async () => {
      await sender.ready;
      const { socket } = sender;
      for (let index = 0; index < batch.length; index += 1) {
        try {
          await socket.send(batch[index] as Buffer[]);
        } catch (caught) {
          let error: Error = toError(caught);
          if (!this.open) error = new NotConnectedError(`zeromq transport closed while publishing to '${sender.label}'`, { cause: caught });
          else if (zmqCode(caught) === 'EAGAIN') error = new TimeoutError(`publish to '${sender.label}': no room within ${this.options.publishTimeoutMs ?? 30_000} ms (every peer at its high-water mark, or none connected)`);
          if (index === 0) throw error;
          // the messages before this one are queued already: a retry must not send them again
          throw new PartialPublishError(new Map(batch.slice(index).map((_, offset) => [index + offset, error])), batch.length);
        }
      }
    });
    sender.tail = run.catch(() => undefined);
    return run;
  }
}
