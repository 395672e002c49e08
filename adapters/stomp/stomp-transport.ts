import { BehaviorSubject, Observable } from 'rxjs';
import {
  consoleLogger,
  NotConnectedError,
  PartialPublishError,
  publishEach,
  redactUrl,
  type ConsumeOptions,
  type Delivery,
  type Endpoint,
  type Logger,
  type Message,
  type StatusReportingTransport,
  type Transport,
  type TransportStatus,
} from '../../src/core/index.ts';
import { encodeFrame, type EncodedFrame } from './stomp-codec.ts';
import { AttemptTracker, StompConsumer } from './stomp-consumer.ts';
import { resolveStompTarget, type StompTarget } from './stomp-endpoint.ts';
import { StompLink, type BrokerFlavour, type LinkSettings } from './stomp-link.ts';
import { DEFAULT_MAX_MESSAGE_BYTES, DEFAULT_STOMP_URL, parseStompUrl, validateStompOptions, type StompTransportOptions } from './stomp-options.ts';

/** The transport's state (its publishing connection's). */
export interface StompStatus extends TransportStatus {
  readonly state: 'connecting' | 'connected' | 'reconnecting' | 'closed';
}

/**
 * STOMP 1.2 over TCP (@stomp/stompjs with @stomp/tcp-wrapper), for RabbitMQ's STOMP plugin, ActiveMQ
 * and other STOMP brokers: `stomp:queue/<name>`, `stomp:topic/<name>`, RabbitMQ's
 * `stomp:exchange/<exchange>[/<key>]` and `stomp:amq/queue/<name>` (see `resolveStompTarget`).
 *
 * Contract (the transport SPI, plus):
 * - one connection for publishing and one per `consume` subscription, each reconnecting with backoff and
 *   heart-beating; the broker (RabbitMQ or ActiveMQ) is recognised from the CONNECTED frame.
 * - `publish` sends one SEND per message, persistent, each with a `receipt`, pipelined, and resolves
 *   when every RECEIPT has come (RabbitMQ sends it once the message is confirmed, ActiveMQ once it is
 *   stored). Each message is encoded on its own (`encodeFrame`): one that cannot be fails alone with
 *   `StompUnencodableError` and the call rejects with `PartialPublishError` naming it. It waits for a
 *   connection within `publishTimeoutMs`; a connection lost before a RECEIPT rejects that message with
 *   `NotConnectedError` (it may have been stored: resent, it is a duplicate — at-least-once).
 * - `consume`: see `StompConsumer` (ACK after settlement; NACK: RabbitMQ requeues, ActiveMQ applies its
 *   redelivery policy then its DLQ; `attempt`; unsettled messages taken back when the subscription ends).
 * - `close` stops every subscription's intake, waits for publishes and dead-letter SENDs in flight
 *   (each bounded by `publishTimeoutMs`, so their sources' ACKs still go out), then ends the
 *   subscriptions (the broker takes back what is unacknowledged) and disconnects.
 * - `publishTimeoutMs` is one deadline per publish, waiting for a connection included: past it, the
 *   wait for a connection fails with `NotConnectedError`, the wait for a RECEIPT with `TimeoutError`. `connect` after `close`
 *   connects again.
 * - `scheme` (default `stomp`) lets two brokers serve one integration: one transport per broker.
 * @example
 * const rabbit = new StompTransport({ url: 'stomp://guest:guest@127.0.0.1:61613' });
 * const activemq = new StompTransport({ url: 'stomp://127.0.0.1:61623', scheme: 'activemq' });
 * from('stomp:queue/orders?queueType=quorum').to('activemq:queue/invoices');
 */
export class StompTransport implements Transport, StatusReportingTransport<StompStatus> {
  readonly scheme: string;
  private readonly options: StompTransportOptions;
  private readonly log: Logger;
  private readonly url: string;
  private readonly linkSettings: LinkSettings;
  private publisher: StompLink | undefined;
  private closed = true;
  private readonly consumers = new Set<StompConsumer>();
  private readonly inFlight = new Set<Promise<unknown>>();
  private readonly tracker = new AttemptTracker();
  private readonly status = new BehaviorSubject<StompStatus>({ state: 'closed', since: Date.now() });

  constructor(options: StompTransportOptions = {}, log: Logger = consoleLogger) {
    validateStompOptions(options);
    this.options = options;
    this.log = log;
    this.scheme = options.scheme ?? 'stomp';
    this.url = options.url ?? (process.env.STOMP_URL || undefined) ?? DEFAULT_STOMP_URL;
    this.linkSettings = {
      address: parseStompUrl(this.url),
      heartbeatMs: options.heartbeatMs ?? 10_000,
      initialDelayMs: options.reconnect?.initialDelayMs ?? 100,
      maxDelayMs: options.reconnect?.maxDelayMs ?? 10_000,
      label: redactUrl(this.url),
      log,
    };
  }

  /** Connection state changes (the publishing connection's), the current one first (for health checks). */
  get status$(): Observable<StompStatus> {
    return this.status.asObservable();
  }

  /** The broker recognised on the publishing connection (after `connect`). */
  get broker(): BrokerFlavour {
    return this.publisher?.flavour ?? 'generic';
  }

  /**
   * Connects the publishing connection (retrying with backoff up to `connectTimeoutMs`): rejects with
   * `StompConnectRefusedError` at once when the broker refuses the login, else `NotConnectedError`.
   */
  async connect(): Promise<void> {
    if (!this.closed) return;
    this.closed = false;
    const link = new StompLink(this.linkSettings);
    this.publisher = link;
    link.onConnected = () => this.next('connected');
    link.onLost = () => this.next('reconnecting', link.lastErrorText);
    this.next('connecting');
    link.start();
    try {
      await link.whenConnected(this.options.connectTimeoutMs ?? 15_000);
    } catch (error) {
      this.closed = true;
      this.publisher = undefined;
      await link.close();
      this.next('closed', link.lastErrorText);
      throw error;
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const consumers = [...this.consumers];
    this.consumers.clear();
    for (const consumer of consumers) consumer.stopIntake();
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
    await new Promise<void>((resolve) => setImmediate(resolve)); // the callers' continuations (their sources' ACKs) run first
    await Promise.allSettled(consumers.map((consumer) => consumer.dispose()));
    const link = this.publisher;
    this.publisher = undefined;
    await link?.close();
    this.next('closed');
  }

  async publish(endpoint: Endpoint, messages: readonly Message[]): Promise<void> {
    const link = this.publisher;
    if (this.closed || link === undefined) throw new NotConnectedError(`${this.scheme} transport is closed; cannot publish to '${endpoint.uri}'`);
    const target = resolveStompTarget(endpoint);
    const maxBytes = this.options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
    return publishEach(
      messages,
      (message) => encodeFrame(message, target, maxBytes),
      (frames) => this.track(this.send(link, target, frames)),
    );
  }

  consume(endpoint: Endpoint, options: ConsumeOptions = {}): Observable<Delivery> {
    return new Observable<Delivery>((subscriber) => {
      const target = resolveStompTarget(endpoint);
      if (this.closed) {
        subscriber.error(new NotConnectedError(`${this.scheme} transport is closed; cannot consume '${endpoint.uri}'`));
        return undefined;
      }
      if (options.signal?.aborted === true) {
        subscriber.complete();
        return undefined;
      }
      const consumer = new StompConsumer(target, subscriber, new StompLink(this.linkSettings), {
        prefetch: options.prefetch ?? 100,
        maxDeliveries: this.options.maxDeliveries ?? 5,
        maxMessageBytes: this.options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES,
        tracker: this.tracker,
        deadLetter: (destination, headers, body) => {
          const link = this.publisher;
          if (link === undefined) return Promise.reject(new NotConnectedError(`${this.scheme} transport is closed; cannot dead-letter to '${destination}'`));
          return this.track(link.send(destination, headers, body, this.options.publishTimeoutMs ?? 30_000));
        },
        log: this.log,
      });
      this.consumers.add(consumer);
      consumer.start();
      const onAbort = (): void => consumer.stopIntake();
      options.signal?.addEventListener('abort', onAbort, { once: true });
      return () => {
        options.signal?.removeEventListener('abort', onAbort);
        if (!this.consumers.delete(consumer)) return; // closed with the transport
        void consumer.dispose();
      };
    });
  }

  /** One SEND per frame, pipelined (one deadline for all); resolves when every RECEIPT has come. */
  private async send(link: StompLink, target: StompTarget, frames: readonly EncodedFrame[]): Promise<void> {
    const deadline = Date.now() + (this.options.publishTimeoutMs ?? 30_000);
    if (!link.connected) await link.whenConnected(deadline - Date.now());
    const queueType = link.flavour === 'rabbitmq' && target.queueType !== undefined ? target.queueType : undefined;
    const remaining = Math.max(1, deadline - Date.now());
    const outcomes = await link.sendAll(target.destination, queueType === undefined ? frames : frames.map((frame) => ({ headers: { ...frame.headers, 'x-queue-type': queueType }, body: frame.body })), remaining);
    if (outcomes.length === 1 && outcomes[0] !== undefined) throw outcomes[0];
    let failures: Map<number, Error> | undefined;
    for (let index = 0; index < outcomes.length; index += 1) {
      const error = outcomes[index];
      if (error !== undefined) (failures ??= new Map()).set(index, error);
    }
    if (failures === undefined) return;
    if (failures.size === frames.length) throw failures.get(0) as Error;
    throw new PartialPublishError(failures, frames.length);
  }

  private async track(sending: Promise<void>): Promise<void> {
    this.inFlight.add(sending);
    try {
      await sending;
    } finally {
      this.inFlight.delete(sending);
    }
  }

  private next(state: StompStatus['state'], lastError?: string): void {
    if (this.status.value.state === state && lastError === undefined) return;
    this.status.next({ state, since: Date.now(), ...(lastError === undefined || state === 'connected' ? {} : { lastError }) });
  }
}
