import { createHash } from 'node:crypto';
import { jetstream, jetstreamManager, JetStreamApiError, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { Observable } from 'rxjs';
import {
  clipErrorText,
  EndpointError,
  isTemplate,
  NotConnectedError,
  PartialPublishError,
  publishEach,
  resolveEndpointTemplate,
  silentLogger,
  toError,
  UnencodableMessageError,
  withHeaders,
  type ConsumeOptions,
  type Delivery,
  type Endpoint,
  type Logger,
  type Message,
  type ProvisionableTransport,
  type RequestOptions,
  type StatusReportingTransport,
  type Transport,
} from '../../src/core/index.ts';
import { CoreSubscription } from './core-subscription.ts';
import { JetStreamSubscription } from './jetstream-subscription.ts';
import { JetStreamTopology } from './jetstream-topology.ts';
import { encodeMessage, type EncodedMessage, type HeaderMapping, type InboundPolicy } from './nats-codec.ts';
import { DEFAULT_NATS_URL, NatsConnectionManager, type NatsTransportStatus } from './nats-connection.ts';
import { natsTarget, publishSubject, type JetStreamTarget, type NatsEndpointOptions, type NatsTarget } from './nats-endpoint.ts';
import { NatsPublishError, NatsUnencodableError } from './nats-errors.ts';
import { validateNatsOptions, type NatsTransportOptions } from './nats-options.ts';
import { natsRequest } from './nats-request-reply.ts';

/** Publishes of one call in flight at once (JetStream acknowledgements pipelined). */
const PUBLISH_WINDOW = 1_024;
const DEFAULT_MAX_MESSAGE_BYTES = 1024 * 1024;

/**
 * `nats:` endpoints over one NATS server or cluster (nats.js v3: `@nats-io/transport-node`,
 * `@nats-io/jetstream`).
 *
 * Endpoints:
 * - `nats:subject/<subject>` — core NATS: at-most-once, no persistence. Consume with wildcards (`*` a
 *   token, `>` the rest); every subscriber gets every message, or one member of a `?queue=<group>`
 *   (competing consumers). Publish resolves once the server has the messages (a flush round trip),
 *   not once anyone received them: subscribers present at that moment get them, nobody else ever will.
 * - `nats:jetstream/<stream>/<subject>` — JetStream: at-least-once. Publish resolves on each message's
 *   stream acknowledgement (`Nats-Msg-Id` = `<subject>:<message id>`: a message re-published to the same
 *   subject within the stream's duplicate window is stored once; see `MSG_ID`). Consume through the durable pull consumer `?consumer=<name>`
 *   (default: derived from stream and subject, so every instance of a route shares it: competing
 *   consumers; another name = another independent subscriber: publish-subscribe). Stream and consumer
 *   are created when absent unless `?provision=false`. See `JetStreamSubscription` for settlement,
 *   `attempt`, redelivery backoff and the dead-letter subject.
 * - Headers: see `HeaderMapping` (publish `?headers=`) and `InboundHeaders` (consume `?headers=`,
 *   `?allowHeaders=`): foreign publishers are untrusted by default.
 * - `request` (request-reply) over core subjects with NATS's own inboxes (see `natsRequest`).
 *
 * Contract (the transport SPI): `publish` rejects with `NotConnectedError` before `connect`,
 * `NatsPublishError` when JetStream did not take a message, `PartialPublishError` naming the messages
 * that failed alone (`NatsUnencodableError`: bad subject, header name, size). `close` stops every
 * consumer (unsettled JetStream deliveries are handed back), flushes and disconnects. Idempotent.
 * @example
 * const nats = new NatsTransport({ url: 'nats://127.0.0.1:4222', maxDeliveries: 3 });
 * await nats.connect();
 * await nats.publish(parseEndpoint('nats:jetstream/ORDERS/orders.created'), [createMessage({ orderId: 1 })]);
 */
export class NatsTransport implements Transport, StatusReportingTransport<NatsTransportStatus>, ProvisionableTransport {
  readonly scheme = 'nats';
  readonly defaultPrefetch = 100;
  private readonly options: NatsTransportOptions & { readonly url: string };
  private readonly log: Logger;
  private readonly connection: NatsConnectionManager;
  private readonly topology: JetStreamTopology;
  private js: JetStreamClient | undefined;
  private jsm: Promise<JetStreamManager> | undefined;
  private readonly subscriptions = new Set<CoreSubscription | JetStreamSubscription>();
  private connecting: Promise<void> | undefined;
  /** Subscriptions still handing back their deliveries: `close` waits for them before disconnecting. */
  private readonly closing = new Set<Promise<void>>();

  /** Throws `InvalidOptionsError` for invalid options. */
  constructor(options: NatsTransportOptions & { readonly logger?: Logger } = {}) {
    const { logger, ...rest } = options;
    validateNatsOptions(rest);
    this.options = { ...rest, url: rest.url ?? DEFAULT_NATS_URL };
    this.log = logger ?? silentLogger;
    this.connection = new NatsConnectionManager(this.options, this.log);
    this.topology = new JetStreamTopology(() => this.manager());
  }

  get status$(): Observable<NatsTransportStatus> {
    return this.connection.status$;
  }

  get status(): NatsTransportStatus {
    return this.connection.status;
  }

  /** Connects, then creates the declared `streams` that are absent; rejects with `NotConnectedError` if no server answers within `connectTimeoutMs`. */
  connect(): Promise<void> {
    this.connecting ??= this.open().catch((error: unknown) => {
      this.connecting = undefined;
      throw error;
    });
    return this.connecting;
  }

  private async open(): Promise<void> {
    const nc = await this.connection.open();
    this.js = jetstream(nc, { timeout: this.options.publishTimeoutMs ?? 10_000 });
    this.jsm = undefined;
    for (const stream of this.options.streams ?? []) await this.topology.ensureStream(stream, true);
    this.log.info('nats transport connected', { servers: this.options.url.split(',').length, version: nc.info?.version });
  }

  private nc(uri: string): NatsConnection {
    if (!this.connection.isOpen || this.connecting === undefined) throw new NotConnectedError(`nats transport is not connected; cannot use '${uri}'`);
    return this.connection.nc;
  }

  private manager(): Promise<JetStreamManager> {
    const nc = this.connection.nc;
    this.jsm ??= jetstreamManager(nc, { timeout: this.options.publishTimeoutMs ?? 10_000 }).catch((error: unknown) => {
      this.jsm = undefined;
      throw new NatsPublishError(`JetStream is not available on this server: ${toError(error).message}`, { cause: error });
    });
    return this.jsm;
  }

  /**
   * Each message is encoded on its own: one that cannot be a NATS message (`NatsUnencodableError`) is
   * left out and the others are sent; then the call rejects with `PartialPublishError` naming the failed
   * ones by index. JetStream: resolves once the stream acknowledged every message (pipelined, at most
   * 1,024 unacknowledged at once); core: once a flush round trip proved the server has them.
   */
  async publish(endpoint: Endpoint, messages: readonly Message[]): Promise<void> {
    const { target, options } = natsTarget(endpoint);
    const nc = this.nc(endpoint.uri);
    const mapping = publishMapping(options);
    const maxPayload = nc.info?.max_payload ?? DEFAULT_MAX_MESSAGE_BYTES;
    const templated = isTemplate(target.subject);
    if (target.kind === 'jetstream' && !this.topology.isReady(target.stream)) await this.ensureStreamOf(target, options);
    return publishEach(
      messages,
      (message): Outgoing => {
        const subject = templated ? publishSubject(target.subject, (template) => decodeURIComponent(resolveEndpointTemplate(template, message))) : publishSubject(target.subject, undefined);
        return { subject, encoded: encodeMessage(message, mapping, maxPayload, target.kind === 'jetstream' ? subject : undefined) };
      },
      (outgoing) => (target.kind === 'jetstream' ? this.publishJetStream(target.stream, outgoing) : this.publishCore(nc, outgoing)),
      (error, message) =>
        error instanceof UnencodableMessageError ? error : new NatsUnencodableError(`message ${message.id} cannot be published to '${endpoint.uri}': ${toError(error).message}`, { cause: error }),
    );
  }

  private async publishCore(nc: NatsConnection, outgoing: readonly Outgoing[]): Promise<void> {
    for (const { subject, encoded } of outgoing) nc.publish(subject, encoded.payload, encoded.headers === undefined ? undefined : { headers: encoded.headers });
    const timeoutMs = this.options.publishTimeoutMs ?? 10_000;
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([nc.flush(), new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new NatsPublishError(`the NATS server did not answer a flush within ${timeoutMs} ms`)), timeoutMs)))]);
    } finally {
      clearTimeout(timer);
    }
  }

  private async publishJetStream(stream: string, outgoing: readonly Outgoing[]): Promise<void> {
    const js = this.js;
    if (js === undefined) throw new NotConnectedError('nats transport is not connected');
    const failures = new Map<number, Error>();
    for (let start = 0; start < outgoing.length; start += PUBLISH_WINDOW) {
      const window = outgoing.slice(start, start + PUBLISH_WINDOW);
      const results = await Promise.allSettled(
        window.map(({ subject, encoded }) => js.publish(subject, encoded.payload, { expect: { streamName: stream }, ...(encoded.headers === undefined ? {} : { headers: encoded.headers }) })),
      );
      results.forEach((result, index) => {
        if (result.status === 'rejected') failures.set(start + index, publishError(result.reason, (window[index] as Outgoing).subject, stream));
      });
    }
    if (failures.size === 0) return;
    if (failures.size === outgoing.length) throw failures.get(0) as Error;
    throw new PartialPublishError(failures, outgoing.length);
  }

  private async ensureStreamOf(target: JetStreamTarget, options: NatsEndpointOptions): Promise<void> {
    // a templated subject's stream captures every value of its placeholders
    const subjects = [target.subject.replace(/\{[^}]*\}/g, '*')];
    await this.topology.ensureStream({ name: target.stream, subjects }, options.provision !== 'false');
  }

  /**
   * Request-reply over a core subject (`nats:subject/<subject>`; see `natsRequest`). Rejects with
   * `EndpointError` for a JetStream endpoint, `NotConnectedError` before `connect`, `TimeoutError` after
   * `timeoutMs`, `NATS_NO_RESPONDERS` when nothing subscribes to the subject.
   * @example const reply = await nats.request(parseEndpoint('nats:subject/prices.lookup'), createMessage({ sku: 'A-1' }), { timeoutMs: 2_000 });
   */
  async request(endpoint: Endpoint, message: Message, options: RequestOptions): Promise<Message> {
    const { target, options: endpointOptions } = natsTarget(endpoint);
    if (target.kind !== 'subject') throw new EndpointError(`'${endpoint.uri}': request-reply goes over core subjects (nats:subject/<subject>)`);
    const nc = this.nc(endpoint.uri);
    const subject = isTemplate(target.subject) ? publishSubject(target.subject, (template) => decodeURIComponent(resolveEndpointTemplate(template, message))) : publishSubject(target.subject, undefined);
    const encoded: EncodedMessage = encodeMessage(message, publishMapping(endpointOptions), nc.info?.max_payload ?? DEFAULT_MAX_MESSAGE_BYTES, undefined);
    return natsRequest(nc, subject, message, encoded, options.timeoutMs, options.signal, endpoint.uri);
  }

  consume(endpoint: Endpoint, options: ConsumeOptions = {}): Observable<Delivery> {
    return new Observable<Delivery>((subscriber) => {
      if (options.signal?.aborted === true) {
        subscriber.complete();
        return undefined;
      }
      const { target, options: endpointOptions } = natsTarget(endpoint);
      const nc = this.nc(endpoint.uri);
      const prefetch = options.prefetch ?? this.defaultPrefetch;
      const inbound = inboundPolicy(endpointOptions);
      const maxMessageBytes = numberOption(endpointOptions.maxMessageBytes) ?? this.options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
      let subscription: CoreSubscription | JetStreamSubscription;
      if (target.kind === 'subject') {
        const core = new CoreSubscription({ subject: target.subject, ...(target.queue === undefined ? {} : { queue: target.queue }), prefetch, maxWaiting: Math.max(10_000, prefetch * 10), maxMessageBytes, inbound, log: this.log }, subscriber);
        core.start(nc);
        subscription = core;
      } else {
        const jetStream = new JetStreamSubscription(
          {
            stream: target.stream,
            durable: target.consumer,
            prefetch,
            maxDeliveries: numberOption(endpointOptions.maxDeliveries) ?? this.options.maxDeliveries ?? 5,
            redelivery: { initialMs: this.options.redelivery?.initialDelayMs ?? 100, maxMs: this.options.redelivery?.maxDelayMs ?? 30_000 },
            maxMessageBytes,
            ackWaitMs: numberOption(endpointOptions.ackWaitMs) ?? this.options.ackWaitMs ?? 30_000,
            inbound,
            deadLetter: (message, reason, subject) => this.deadLetter(message, reason, target.stream, subject),
            log: this.log,
          },
          subscriber,
        );
        subscription = jetStream;
        this.startJetStream(target, endpointOptions, prefetch, jetStream).catch((error: unknown) => {
          this.log.error('nats: JetStream consumer cannot start', { uri: endpoint.uri, error: toError(error).message });
          subscriber.error(error);
        });
      }
      this.subscriptions.add(subscription);
      const onAbort = (): void => void subscription.stopIntake();
      options.signal?.addEventListener('abort', onAbort, { once: true });
      return () => {
        options.signal?.removeEventListener('abort', onAbort);
        this.subscriptions.delete(subscription);
        const closed = subscription.close().finally(() => this.closing.delete(closed));
        this.closing.add(closed);
      };
    });
  }

  private async startJetStream(target: JetStreamTarget, options: NatsEndpointOptions, prefetch: number, subscription: JetStreamSubscription): Promise<void> {
    await this.ensureConsumerOf(target, options, prefetch);
    const js = this.js;
    if (js === undefined) throw new NotConnectedError('nats transport is not connected');
    const consumer = await js.consumers.get(target.stream, target.consumer);
    await subscription.start(consumer);
  }

  private async ensureConsumerOf(target: JetStreamTarget, options: NatsEndpointOptions, prefetch: number): Promise<void> {
    const create = options.provision !== 'false';
    await this.topology.ensureStream({ name: target.stream, subjects: [target.subject] }, create);
    await this.topology.ensureConsumer(
      { stream: target.stream, durable: target.consumer, filterSubject: target.subject, ackWaitMs: numberOption(options.ackWaitMs) ?? this.options.ackWaitMs ?? 30_000, maxAckPending: prefetch },
      create,
    );
  }

  /**
   * Creates a JetStream endpoint's stream and durable consumer when absent, so messages published
   * before its first consumer starts are kept for it (the stream keeps them anyway; the consumer then
   * starts from the first). Core subjects: nothing to create (resolves).
   */
  async provision(endpoint: Endpoint): Promise<void> {
    const { target, options } = natsTarget(endpoint);
    if (target.kind !== 'jetstream') return;
    await this.connect();
    await this.ensureConsumerOf(target, options, this.defaultPrefetch);
  }

  /**
   * The implicit dead-letter destination of JetStream consumers: `<prefix>.<stream>.<subject>` (a
   * subject over 1,024 characters: `<prefix>.<stream>._hashed.<sha256>`), kept by the stream
   * `deadLetter.stream` (created on first use, capturing `<prefix>.>`). The dead letter is the message
   * with `x-interchange-error`, `-error-code`, `-attempts`, `-dead-letter-subject`; logged at WARN.
   */
  private async deadLetter(message: Message, reason: Error, stream: string, subject: string): Promise<void> {
    const prefix = this.options.deadLetter?.prefix ?? 'interchange.dead';
    const deadStream = this.options.deadLetter?.stream ?? 'INTERCHANGE_DEAD';
    await this.topology.ensureStream({ name: deadStream, subjects: [`${prefix}.>`] }, true);
    let deadSubject = `${prefix}.${stream}.${subject}`;
    if (deadSubject.length > 1_024) deadSubject = `${prefix}.${stream}._hashed.${createHash('sha256').update(subject).digest('hex')}`;
    const code = (reason as { code?: unknown }).code;
    const dead = withHeaders(message, {
      'x-interchange-error': clipErrorText(reason.message),
      'x-interchange-error-code': typeof code === 'string' ? code : 'REJECTED',
      'x-interchange-attempts': message.headers.attempt ?? 1,
      'x-interchange-dead-letter-subject': deadSubject,
      attempt: undefined,
    });
    const js = this.js;
    if (js === undefined) throw new NotConnectedError('nats transport is not connected');
    const encoded = encodeMessage(dead, 'all', this.connection.nc.info?.max_payload ?? DEFAULT_MAX_MESSAGE_BYTES, deadSubject);
    await this.publishJetStream(deadStream, [{ subject: deadSubject, encoded }]);
    this.log.warn('nats message parked on the dead-letter subject', { subject: deadSubject.slice(0, 200), stream: deadStream, messageId: message.id, code: typeof code === 'string' ? code : 'REJECTED', error: reason.message.slice(0, 300) });
  }

  async close(): Promise<void> {
    const subscriptions = [...this.subscriptions];
    this.subscriptions.clear();
    await Promise.all([...subscriptions.map((subscription) => subscription.close()), ...this.closing]);
    this.connecting = undefined;
    this.js = undefined;
    this.jsm = undefined;
    this.topology.forget();
    await this.connection.close();
  }
}

interface Outgoing {
  readonly subject: string;
  readonly encoded: EncodedMessage;
}

function publishMapping(options: NatsEndpointOptions): HeaderMapping {
  const headers = options.headers;
  return headers === 'none' || headers === 'standard' ? 'none' : headers === 'trace' ? 'trace' : 'all';
}

function inboundPolicy(options: NatsEndpointOptions): InboundPolicy {
  const headers = options.headers ?? 'standard';
  const rawPayload = options.payload === 'raw';
  if (headers === 'standard' && options.allowHeaders !== undefined) return { headers, allowHeaders: new Set(options.allowHeaders.split(',')), rawPayload };
  return { headers, rawPayload };
}

function numberOption(value: string | undefined): number | undefined {
  return value === undefined ? undefined : Number(value);
}

/** A JetStream publish failure as the adapter's typed error. */
function publishError(error: unknown, subject: string, stream: string): Error {
  if (error instanceof NotConnectedError) return error;
  const cause = toError(error);
  if (cause.name === 'JetStreamNotEnabled' || /no responders/i.test(cause.message)) {
    return new NatsPublishError(`no JetStream stream took '${subject}' (is it captured by stream '${stream}', and JetStream enabled?): ${cause.message}`, { cause });
  }
  if (error instanceof JetStreamApiError) return new NatsPublishError(`stream '${stream}' refused '${subject}': ${cause.message}`, { cause });
  return new NatsPublishError(`JetStream publish to '${subject}' failed: ${cause.message}`, { cause });
}

export type { NatsTarget };
