import { Observable } from 'rxjs';
import {
  consoleLogger,
  NotConnectedError,
  publishEach,
  type ConsumeOptions,
  type Delivery,
  type Endpoint,
  type Logger,
  type Message,
  type StatusReportingTransport,
  type Transport,
} from '../../src/core/index.ts';
import { AttemptCounter } from './attempt-counter.ts';
import { encodeMessage } from './amqp10-codec.ts';
import { Amqp10Connection, type Amqp10Status } from './amqp10-connection.ts';
import { Amqp10Subscription } from './amqp10-consumer.ts';
import { resolveAmqp10Target } from './amqp10-endpoint.ts';
import { Amqp10Publisher } from './amqp10-publisher.ts';
import { DEFAULT_MAX_MESSAGE_BYTES, parseAmqp10Url, validateAmqp10Options, type Amqp10TransportOptions } from './amqp10-options.ts';

export type { Amqp10Status } from './amqp10-connection.ts';

const DEFAULT_URL = 'amqp://guest:guest@127.0.0.1:5672';

/**
 * AMQP 1.0 over rhea, against RabbitMQ's `rabbitmq_amqp1_0` plugin (3.10): `amqp10:queue/<name>`,
 * `amqp10:amq/queue/<name>`, `amqp10:exchange/<x>[/<key>]`, `amqp10:topic/<key>` (see `resolveAmqp10Target`).
 *
 * Contract (the transport SPI, plus):
 * - one connection (SASL PLAIN with the URL's user info), reopened with the house backoff when it
 *   drops; `status$` shows the state. A refused login rejects `connect` at once with
 *   `Amqp10AuthenticationError`.
 * - `publish`: unsettled transfers on a sender link per address; resolves when the broker settled
 *   each `accepted` (see `Amqp10Publisher`: typed errors per message, resent after a reconnect —
 *   at-least-once —, `TimeoutError` after `publishTimeoutMs`). Each message is encoded on its own
 *   (`encodeMessage`): one that cannot be fails alone (`Amqp10UnencodableError` in a `PartialPublishError`).
 * - `consume`: a receiver link with manual credit = prefetch, accept after settlement, nack →
 *   release / reject at `maxDeliveries` (see `Amqp10Subscription`).
 * - `close`: detaches every receiver (RabbitMQ requeues what is unsettled), waits for in-flight
 *   publishes (up to `publishTimeoutMs`), closes the connection. `connect` after `close` connects again.
 * @example
 * const amqp10 = new Amqp10Transport({ url: 'amqp://app:secret@rabbit:5672' });
 * from('amqp10:queue/orders').to('amqp10:exchange/invoices/created');
 */
export class Amqp10Transport implements Transport, StatusReportingTransport<Amqp10Status> {
  readonly scheme = 'amqp10';
  private readonly options: Amqp10TransportOptions;
  private readonly log: Logger;
  private readonly connection: Amqp10Connection;
  private readonly attempts = new AttemptCounter();
  private readonly subscriptions = new Set<Amqp10Subscription>();
  private readonly inFlight = new Set<Promise<unknown>>();
  private publisher: Amqp10Publisher | undefined;
  private closed = true;

  constructor(options: Amqp10TransportOptions = {}, log: Logger = consoleLogger) {
    validateAmqp10Options(options);
    this.options = options;
    this.log = log;
    const url = options.url ?? (process.env.AMQP10_URL === '' ? undefined : process.env.AMQP10_URL) ?? DEFAULT_URL;
    this.connection = new Amqp10Connection({
      url,
      target: parseAmqp10Url(url),
      connectTimeoutMs: options.connectTimeoutMs ?? 15_000,
      initialDelayMs: options.reconnect?.initialDelayMs ?? 100,
      maxDelayMs: options.reconnect?.maxDelayMs ?? 10_000,
      idleTimeoutMs: options.idleTimeoutMs ?? 30_000,
      containerId: options.containerId,
      log,
    });
  }

  /** Connection state changes, the current one first (for health checks). */
  get status$(): Observable<Amqp10Status> {
    return this.connection.status$;
  }

  async connect(): Promise<void> {
    if (!this.closed) return;
    await this.connection.open();
    this.closed = false;
    this.publisher = new Amqp10Publisher(this.connection, this.options.publishTimeoutMs ?? 30_000);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const subscription of this.subscriptions) subscription.dispose();
    this.subscriptions.clear();
    await Promise.allSettled([...this.inFlight]);
    this.publisher?.dispose();
    this.publisher = undefined;
    await this.connection.close();
  }

  async publish(endpoint: Endpoint, messages: readonly Message[]): Promise<void> {
    const publisher = this.publisher;
    if (this.closed || publisher === undefined) throw new NotConnectedError(`amqp10 transport is closed; cannot publish to '${endpoint.uri}'`);
    const target = resolveAmqp10Target(endpoint);
    const settings = { maxBytes: this.options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES, durable: target.durable };
    const sending = publishEach(
      messages,
      (message) => encodeMessage(message, settings),
      (encoded) => publisher.send(target.address, endpoint.uri, encoded),
    );
    this.inFlight.add(sending);
    try {
      await sending;
    } finally {
      this.inFlight.delete(sending);
    }
  }

  consume(endpoint: Endpoint, options: ConsumeOptions = {}): Observable<Delivery> {
    return new Observable<Delivery>((subscriber) => {
      const target = resolveAmqp10Target(endpoint);
      if (this.closed) {
        subscriber.error(new NotConnectedError(`amqp10 transport is closed; cannot consume '${endpoint.uri}'`));
        return undefined;
      }
      if (options.signal?.aborted === true) return undefined;
      const subscription = new Amqp10Subscription(target, subscriber, this.connection, {
        prefetch: options.prefetch ?? 100,
        maxDeliveries: this.options.maxDeliveries ?? 5,
        maxMessageBytes: this.options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES,
        attempts: this.attempts,
        log: this.log,
      });
      this.subscriptions.add(subscription);
      const onAbort = (): void => subscription.stopIntake();
      options.signal?.addEventListener('abort', onAbort, { once: true });
      return () => {
        options.signal?.removeEventListener('abort', onAbort);
        this.subscriptions.delete(subscription);
        subscription.dispose();
      };
    });
  }
}
