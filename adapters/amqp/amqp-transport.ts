import { Observable } from 'rxjs';
import {
  consoleLogger,
  NotConnectedError,
  publishEach,
  parseEndpoint,
  type ConsumeOptions,
  type Delivery,
  type Endpoint,
  type Logger,
  type Message,
  type RequestOptions,
  type Transport,
} from '../../src/core/index.ts';
import { encodeMessage, type EncodeSettings } from './amqp-codec.ts';
import { AmqpConnectionManager, withHeartbeat, type AmqpConnectionStatus } from './amqp-connection.ts';
import { AmqpConsumer } from './amqp-consumer.ts';
import { AmqpDeclarer } from './amqp-declarer.ts';
import { resolveTarget, type AmqpTarget } from './amqp-endpoint.ts';
import { validateAmqpOptions, type AmqpTransportOptions } from './amqp-options.ts';
import { AmqpPublisher, Outbound } from './amqp-publisher.ts';
import { AmqpRequester } from './amqp-request-reply.ts';
import { AttemptTracker } from './attempt-tracker.ts';

const DEFAULT_URL = 'amqp://127.0.0.1:5672';

/**
 * RabbitMQ (AMQP 0-9-1) over amqplib: `amqp:queue/<name>` and `amqp:exchange/<name>?routingKey=…`.
 *
 * Contract (the transport SPI, plus):
 * - one connection, kept up with backoff; the topology is declared at connect and after every
 *   reconnect, consumers resume by themselves; `status$` shows the connection state.
 * - `publish` always goes through a confirm channel, persistent and mandatory by default, and
 *   resolves on the broker's confirm of every message; it rejects with `UnroutableError`,
 *   `PublishRejectedError`, `AmqpConfigurationError`, `NotConnectedError` (closed) or `TimeoutError`
 *   (`publishTimeoutMs`, which bounds every publish even on a dead link). During an outage messages
 *   wait and are sent (again, if unconfirmed) after the reconnect: never silently dropped.
 * - each message is encoded (and validated: see `encodeMessage`) on its own: one that cannot be
 *   written as AMQP fails alone with `AmqpUnencodableError`, the others are published and
 *   confirmed, then the call rejects with `PartialPublishError` naming the failed ones (by index).
 *   Broker headers (`CC`, `x-delay`, `x-death`…) are dropped unless the endpoint's `brokerHeaders`
 *   allows them.
 * - `connect` rejects at once with `AmqpAccessRefusedError` when the broker refuses the credentials
 *   or the virtual host.
 * - `consume` acks manually when the delivery is settled, with `prefetch` (default 100) in flight;
 *   see `AmqpConsumer` for nack, attempts and dead-lettering.
 * - `close` stops consuming, waits for in-flight publishes (up to `publishTimeoutMs`), disconnects.
 *   `connect` after `close` connects again.
 */
export class AmqpTransport implements Transport {
  readonly scheme = 'amqp';
  private readonly manager: AmqpConnectionManager;
  private readonly declarer: AmqpDeclarer;
  private readonly publisher: AmqpPublisher;
  private readonly requester: AmqpRequester;
  private readonly attempts = new AttemptTracker();
  private readonly consumers = new Set<AmqpConsumer>();
  private readonly inFlight = new Set<Promise<void>>();
  private readonly log: Logger;
  private closed = true;
  private readonly options: AmqpTransportOptions;

  constructor(options: AmqpTransportOptions = {}, log: Logger = consoleLogger) {
    validateAmqpOptions(options);
    this.options = options;
    this.log = log;
    const url = withHeartbeat(options.url ?? process.env.AMQP_URL ?? DEFAULT_URL, options.heartbeatSeconds ?? 10);
    const reconnect = { initialDelayMs: options.reconnect?.initialDelayMs ?? 100, maxDelayMs: options.reconnect?.maxDelayMs ?? 10_000 };
    this.manager = new AmqpConnectionManager({ url, ...(options.tls === undefined ? {} : { tls: options.tls }), heartbeatSeconds: options.heartbeatSeconds ?? 10, ...reconnect, log });
    this.declarer = new AmqpDeclarer(this.manager, options.topology ?? {}, options.declareQueues ?? true, log);
    this.publisher = new AmqpPublisher(this.manager, { timeoutMs: options.publishTimeoutMs ?? 30_000, ...reconnect, log });
    this.requester = new AmqpRequester(this.manager, log, options.maxMessageBytes);
    // order matters: the topology is in place before anyone publishes or consumes
    this.manager.addUser(this.declarer);
    this.manager.addUser(this.publisher);
    this.manager.addUser(this.requester);
    this.manager.status$.subscribe(() => this.publisher.wakeAll());
  }

  /** Connection state changes, the current one first (for health checks). */
  get status$(): Observable<AmqpConnectionStatus> {
    return this.manager.status$;
  }

  get status(): AmqpConnectionStatus {
    return this.manager.status;
  }

  /** Connects (retrying with backoff up to `connectTimeoutMs`) and declares the topology. */
  async connect(): Promise<void> {
    if (!this.closed && this.manager.current !== undefined) return;
    this.closed = false;
    this.publisher.reopenForPublishing();
    await this.manager.open(this.options.connectTimeoutMs ?? 15_000);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const consumer of this.consumers) consumer.stopIntake();
    await Promise.allSettled([...this.inFlight]);
    this.publisher.close();
    this.requester.close();
    await this.manager.close();
  }

  async publish(endpoint: Endpoint, messages: readonly Message[]): Promise<void> {
    if (this.closed) throw new NotConnectedError(`amqp transport is closed; cannot publish to '${endpoint.uri}'`);
    const target = resolveTarget(endpoint);
    if (!this.ensuredFast(target)) await this.ensure(target);
    const settings: EncodeSettings = { persistent: target.persistent, mandatory: target.mandatory, maxMessageBytes: this.options.maxMessageBytes, brokerHeaders: target.brokerHeaders };
    return publishEach(
      messages,
      (message) => {
        const { content, properties } = encodeMessage(message, settings);
        return new Outbound(target.exchange, target.routingKey, content, properties);
      },
      (items) => this.send(items),
    );
  }

  /** Publishes encoded messages, tracked for `close`. */
  private async send(items: readonly Outbound[]): Promise<void> {
    const publishing = this.publisher.publish(items);
    this.inFlight.add(publishing);
    try {
      await publishing;
    } finally {
      this.inFlight.delete(publishing);
    }
  }

  consume(endpoint: Endpoint, options: ConsumeOptions = {}): Observable<Delivery> {
    return new Observable<Delivery>((subscriber) => {
      const target = resolveTarget(endpoint);
      if (options.signal?.aborted === true) {
        subscriber.complete();
        return undefined;
      }
      const consumer = new AmqpConsumer(target, subscriber, this.manager, this.declarer, this.attempts, {
        prefetch: options.prefetch ?? 100,
        maxDeliveries: this.options.maxDeliveries ?? 5,
        initialDelayMs: this.options.reconnect?.initialDelayMs ?? 100,
        maxDelayMs: this.options.reconnect?.maxDelayMs ?? 10_000,
        log: this.log,
      });
      this.consumers.add(consumer);
      const removeUser = this.manager.addUser(consumer);
      // Abort stops the intake only: emitted deliveries may still be settled; unsubscribing hands back the rest.
      const onAbort = (): void => consumer.stopIntake();
      options.signal?.addEventListener('abort', onAbort, { once: true });
      return () => {
        options.signal?.removeEventListener('abort', onAbort);
        removeUser();
        this.consumers.delete(consumer);
        consumer.dispose();
      };
    });
  }

  /**
   * Sends `message` to `uri` with direct reply-to and resolves with the reply (see `AmqpRequester`):
   * the SPI's optional `Transport.request` (what `.request()` and `.scatterGather()` steps use), also
   * callable with a URI. Without `timeoutMs`, option `requestTimeoutMs` (default 30 s). When `signal`
   * aborts, rejects at once with an `InterchangeError` `REQUEST_ABORTED` and the requester forgets the
   * request (a reply arriving later is dropped; the correlation id is free again).
   * @example const reply = await amqp.request('amqp:queue/prices', createMessage({ sku: 'A-1' }), { timeoutMs: 2_000 });
   */
  async request<T = unknown>(uri: string | Endpoint, message: Message, { timeoutMs, signal }: Partial<RequestOptions> = {}): Promise<Message<T>> {
    if (this.closed) throw new NotConnectedError('amqp transport is closed');
    const target = resolveTarget(typeof uri === 'string' ? parseEndpoint(uri) : uri);
    if (!this.ensuredFast(target)) await this.ensure(target);
    return (await this.requester.request(target, message, timeoutMs ?? this.options.requestTimeoutMs ?? 30_000, signal)) as Message<T>;
  }

  private ensuredFast(target: AmqpTarget): boolean {
    return target.kind === 'queue' ? this.declarer.isEnsured('queue', target.name) : this.declarer.isEnsured('exchange', target.name);
  }

  /** Declares what the endpoint needs but the topology does not; waits for the connection (bounded). */
  private async ensure(target: AmqpTarget): Promise<void> {
    if (this.manager.current === undefined) return; // the publisher waits for the connection; declared next time
    if (target.kind === 'queue') await this.declarer.ensureQueue(target.name);
    else if (target.exchangeType !== undefined) await this.declarer.ensureExchange(target.name, target.exchangeType);
    else await this.declarer.checkExchange(target.name);
  }
}
