import { createHash, randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { Observable } from 'rxjs';
import {
  checkUrlCredentials,
  integerOption,
  NotConnectedError,
  publishEach,
  resolveEndpointTemplate,
  UnencodableMessageError,
  silentLogger,
  isTemplate,
  parseEndpoint,
  redactUrl,
  type ConsumeOptions,
  type Delivery,
  type Endpoint,
  type Logger,
  type Message,
  type RequestOptions,
  type StatusReportingTransport,
  type Transport,
} from '../../src/core/index.ts';
import { DeadLetterTopic } from './dead-letter-topic.ts';
import { startEmbeddedBroker, type EmbeddedBroker } from './embedded-broker.ts';
import { ForwardStore, HeldPublish } from './forward-store.ts';
import { assertPublishable, encodeMessage, STANDARD_INBOUND, type HeaderMapping, type InboundPolicy, type PublishLimits } from './message-codec.ts';
import { MqttConnection, MqttConnections, type ConnectionConfig, type MqttTransportStatus } from './mqtt-connection.ts';
import { MqttUnencodableError } from './mqtt-errors.ts';
import { MQTT_MAX_PACKET_BYTES, validateMqttEndpointOptions, validateMqttOptions, type LastWillOptions, type MqttTransportOptions } from './mqtt-options.ts';
import { MqttPublisher } from './mqtt-publisher.ts';
import { MqttRequester } from './mqtt-request-reply.ts';
import { MqttSubscription } from './mqtt-subscription.ts';
import { DEFAULT_MAX_MESSAGE_BYTES } from './oversize-publish.ts';
import { publishTopic, TopicPattern } from './topic-pattern.ts';

type Qos = 0 | 1 | 2;

/**
 * A consumer's receive window when its route sets no prefetch (Receive Maximum, and the local window
 * on MQTT 3.1.1). A PUBLISH is acknowledged only after its route settled it — for a bridge, after the
 * destination's confirm — so the window must cover the device rate times that round trip: with 100,
 * a bridge to RabbitMQ worked stop-and-wait (the broker sent 100, all went out as one batch, waited
 * for one confirm, were acknowledged together) at 0.75× the throughput of a bridge that acknowledges
 * on receipt; with 1,000 the pipe stays full (bench/RESULTS.md, issue 17). Memory: at most this many
 * received messages held at once.
 */
const DEFAULT_PREFETCH = 1_000;

/**
 * `mqtt:` endpoints over one MQTT broker (mqtt.js v5).
 *
 * Endpoints:
 * - consume `mqtt:devices/+deviceId/telemetry?qos=1` — wildcards, named parameters (each a message
 *   header of that name, e.g. `deviceId`), `#rest`; `?group=g` or `$share/g/…` for a shared
 *   subscription (instances split the stream); `?clientId=` pins the consumer's session id;
 *   `?payload=raw` gives the payload's bytes as the body, unparsed (headers still decoded).
 *   Publishers are untrusted by default — a device must never control what reaches the back end —
 *   so `?headers=` says what of a PUBLISH besides its payload becomes headers (see `InboundHeaders`):
 *   `standard` (default) the MQTT 5 standard properties only (content type, expiry → `expiresAt`,
 *   response topic → `replyTo`) and a fresh id, plus the user properties `?userProperties=a,b`
 *   allow-lists (reserved names refused); `none` nothing but the payload; `all` the id and every
 *   header as an Interchange publisher sent them — only for a trusted Interchange peer. Topic
 *   parameters override anything from properties; `mqttTopic` and `attempt` are the adapter's.
 * - publish `mqtt:commands/{deviceId}?qos=1&retain=true` — `{name}` filled from headers, then body;
 *   `?headers=none` (or `standard`) publishes the payload alone, as devices do (no id or headers as
 *   user properties, no MQTT 3.1.1 envelope): for devices and foreign consumers, and bandwidth (see
 *   `HeaderMapping`). A message that cannot be a valid PUBLISH (see `assertPublishable`,
 *   `publishTopic`, option `maxPacketBytes`) fails alone with `MqttUnencodableError`.
 *
 * Contract (the transport SPI, MQTT flavoured):
 * - Each `consume` is its own connection and session (`<clientId>:<slot>:<hash of the filter>`, slot =
 *   the lowest free index among this transport's consumers of that filter, so a restarted process that
 *   consumes the same endpoints in the same order resumes the same sessions). QoS 1/2 PUBLISHes are
 *   acknowledged only after their deliveries settle, in order, pipelined (see `MqttSubscription`),
 *   with at most `prefetch` (default 1,000) unacknowledged. QoS 0 is at-most-once.
 * - `publish` resolves on PUBACK/PUBCOMP (see `MqttPublisher` for store-and-forward while the broker
 *   is unreachable); messages that cannot be encoded are left out, the others sent, and once those
 *   are confirmed it rejects with `PartialPublishError` naming the failed ones by index;
 *   a message nacked `maxDeliveries` times goes to `<deadLetterPrefix>/<topic>`.
 * - MQTT keeps messages only for sessions that exist: publish before a consumer's session exists and
 *   the broker drops them. `provision` creates that session ahead (like declaring a queue).
 * - `close` stops every consumer (unacknowledged messages stay with their sessions), lets in-flight
 *   publishes finish, disconnects. Idempotent.
 * - `status$` (health checks, metrics): `connected` only when the publisher's connection and every
 *   consumer's established one are; `reconnecting` while any is lost (see `MqttConnections`).
 */
export class MqttTransport implements Transport, StatusReportingTransport<MqttTransportStatus> {
  readonly scheme = 'mqtt';
  /** Routes' receive window when they set no prefetch (see `DEFAULT_PREFETCH`). */
  readonly defaultPrefetch = DEFAULT_PREFETCH;
  private readonly options: MqttTransportOptions;
  private readonly log: Logger;
  private readonly baseClientId: string;
  private readonly protocolVersion: 4 | 5;
  private publisherConnection: MqttConnection | undefined;
  private publisher: MqttPublisher | undefined;
  private readonly publishTopics = new Map<string, string>();
  private store: ForwardStore | undefined;
  private readonly subscriptions = new Set<MqttSubscription>();
  /** Client ids in use by this transport's consumers. */
  private readonly slots = new Set<string>();
  /** Consumers' connections still ending, by client id: the next user of that session waits. */
  private readonly ending = new Map<string, Promise<void>>();
  /** Per consumer client id: attempts of messages handed back unacknowledged (see `SubscriptionSettings.handedBack`). */
  private readonly handedBack = new Map<string, Map<string, number>>();
  private connecting: Promise<void> | undefined;
  private brokerUrl: string | undefined;
  private embedded: EmbeddedBroker | undefined;
  private deadLetters: DeadLetterTopic | undefined;
  private readonly connections = new MqttConnections();
  private requester: MqttRequester | undefined;

  /** Throws `MqttConfigError` for invalid options or a configuration that cannot keep a session; `EndpointError` for a `url` whose user info needs percent-encoding. */
  constructor(options: MqttTransportOptions & { readonly logger?: Logger }) {
    const { logger, ...rest } = options;
    validateMqttOptions(rest);
    if (rest.url !== undefined) checkUrlCredentials(rest.url, 'the MQTT URL'); // mqtt.js would split it elsewhere, and Node print it whole
    this.options = rest;
    this.log = logger ?? silentLogger;
    this.baseClientId = rest.clientId ?? `interchange-${randomUUID().slice(0, 8)}`;
    // aedes (the embedded broker) speaks MQTT 3.1.1 only
    this.protocolVersion = rest.url === undefined ? 4 : (rest.protocolVersion ?? 5);
    this.brokerUrl = rest.url;
  }

  /** The broker's URL; with no `url` option, the embedded broker's once `connect` has started it. */
  get url(): string {
    if (this.brokerUrl === undefined) throw new NotConnectedError('mqtt transport: the embedded broker starts on connect()');
    return this.brokerUrl;
  }

  /** Connection state changes over all this transport's connections, the current one first (see `MqttConnections`). */
  get status$(): Observable<MqttTransportStatus> {
    return this.connections.status$;
  }

  get status(): MqttTransportStatus {
    return this.connections.status;
  }

  /** Outgoing messages held for an unreachable broker (store-and-forward). */
  get held(): number {
    return this.store?.size ?? 0;
  }

  /** Connects the publishing side; rejects with `NotConnectedError` if the broker does not answer in time. */
  connect(): Promise<void> {
    this.connecting ??= this.openPublisher().catch((error: unknown) => {
      this.connecting = undefined;
      throw error;
    });
    return this.connecting;
  }

  private async openPublisher(): Promise<void> {
    if (this.brokerUrl === undefined) {
      this.embedded = await startEmbeddedBroker({ log: this.log });
      this.brokerUrl = this.embedded.url;
    }
    const store = new ForwardStore(this.options.storeAndForward?.capacity ?? 10_000, this.options.storeAndForward?.path);
    const loaded = await store.load();
    if (loaded > 0) this.log.info('mqtt store-and-forward: resending messages held by a previous run', { count: loaded });
    const connection = new MqttConnection(this.connectionConfig(`${this.baseClientId}:pub`, undefined, true), this.log);
    this.store = store;
    this.publisherConnection = connection;
    this.publisher = new MqttPublisher(connection, store, this.log);
    this.connections.open();
    this.connections.follow(connection);
    const status = this.options.lastWill;
    if (status !== undefined) connection.onConnect(() => announce(connection, status, status.onlinePayload ?? 'online'));
    try {
      await connection.open();
    } catch (error) {
      await this.close();
      throw error;
    }
    this.log.info('mqtt transport connected', { url: redactUrl(this.url), clientId: this.baseClientId });
  }

  /**
   * Each message is encoded on its own: one that cannot be a valid PUBLISH (its topic, a property, its
   * size — `MqttUnencodableError`) is left out and the others are sent; once they are confirmed the
   * call rejects with `PartialPublishError` naming the failed ones by index. A fixed endpoint topic
   * that cannot be published to fails the whole call with `MqttUnencodableError`.
   */
  async publish(endpoint: Endpoint, messages: readonly Message[]): Promise<void> {
    const publisher = this.publisher;
    validateMqttEndpointOptions(endpoint);
    if (publisher === undefined) throw new NotConnectedError(`mqtt transport is not connected; cannot publish to '${endpoint.uri}'`);
    const qos = this.qosOf(endpoint);
    const retain = endpoint.options.retain === 'true';
    const mapping = headerMappingOf(endpoint);
    const templated = isTemplate(endpoint.path);
    const fixedTopic = templated ? undefined : this.topicOf(endpoint.path);
    const limits: PublishLimits = { protocolVersion: this.protocolVersion, qos, maxPacketBytes: this.maxPacketBytes() };
    // encoding is pure: whatever it throws is that message's fault alone
    return publishEach(
      messages,
      (message) => {
        const topic = fixedTopic ?? publishTopic(parseEndpoint(resolveEndpointTemplate(endpoint.uri, message)).path);
        const encoded = encodeMessage(message, this.protocolVersion, mapping);
        assertPublishable(topic, encoded, limits);
        return new HeldPublish(topic, encoded.payload, qos, retain, encoded.properties);
      },
      (outgoing) => publisher.publish(outgoing),
      (error, message) =>
        error instanceof UnencodableMessageError ? error : new MqttUnencodableError(`message ${message.id} cannot be published to '${endpoint.uri}': ${(error as Error).message}`, { cause: error }),
    );
  }

  /**
   * Request-reply over MQTT 5 (see `MqttRequester`): publishes `message` to `endpoint` with Response
   * Topic `interchange/replies/<clientId>` (subscribed once, by a connection of its own,
   * `<clientId>:replies`) and Correlation Data = its `correlationId` (else its id); resolves with the
   * first reply carrying that correlation data. Rejects with `TimeoutError` after `timeoutMs`,
   * `REQUEST_ABORTED` when `signal` aborts, `NotConnectedError` before `connect` or after `close`.
   * @example const reply = await mqtt.request(parseEndpoint('mqtt:services/price'), createMessage({ sku: 'A-1' }), { timeoutMs: 2_000 });
   */
  request(endpoint: Endpoint, message: Message, options: RequestOptions): Promise<Message> {
    if (this.publisher === undefined || this.brokerUrl === undefined) return Promise.reject(new NotConnectedError(`mqtt transport is not connected; cannot send a request to '${endpoint.uri}'`));
    this.requester ??= new MqttRequester({
      topic: `interchange/replies/${this.baseClientId}`,
      connection: { ...this.connectionConfig(`${this.baseClientId}:replies`, undefined, false), persistent: false },
      publish: (target, request) => this.publish(target, [request]),
      log: this.log,
    });
    return this.requester.request(endpoint, message, options);
  }

  /** The largest PUBLISH to send: option `maxPacketBytes`, lowered by the broker's Maximum Packet Size (last CONNACK). */
  private maxPacketBytes(): number {
    return Math.min(this.options.maxPacketBytes ?? MQTT_MAX_PACKET_BYTES, this.publisherConnection?.serverMaximumPacketSize ?? MQTT_MAX_PACKET_BYTES);
  }

  consume(endpoint: Endpoint, options: ConsumeOptions = {}): Observable<Delivery> {
    return new Observable<Delivery>((subscriber) => {
      if (options.signal?.aborted === true) {
        subscriber.complete();
        return undefined;
      }
      validateMqttEndpointOptions(endpoint);
      const pattern = new TopicPattern(endpoint.path, endpoint.options.group);
      const qos = this.qosOf(endpoint);
      const prefetch = options.prefetch ?? DEFAULT_PREFETCH;
      const clientId = endpoint.options.clientId ?? this.claimSlot(pattern.filter);
      this.slots.add(clientId);
      const subscription = new MqttSubscription(
        {
          pattern,
          qos,
          prefetch,
          connection: { ...this.connectionConfig(clientId, Math.min(prefetch, 65_535), false), ...consumerLimits(endpoint, this.options) },
          maxDeliveries: integerOption(endpoint, 'maxDeliveries', this.options.maxDeliveries ?? 5),
          log: this.log,
          redeliveryDelayMs: { initialMs: this.options.redelivery?.initialDelayMs ?? 1_000, maxMs: this.options.redelivery?.maxDelayMs ?? 30_000 },
          deadLetter: (message, reason) => this.deadLetter(message, reason),
          handedBack: this.handedBackOf(clientId),
          rawPayload: rawPayloadOf(endpoint),
          inbound: inboundPolicyOf(endpoint),
          ...(this.options.qos2Store === undefined ? {} : { qos2Directory: join(this.options.qos2Store.directory, clientId) }),
        },
        subscriber,
      );
      this.subscriptions.add(subscription);
      this.connections.follow(subscription.connection);
      const previous = this.ending.get(clientId) ?? Promise.resolve();
      void previous.then(() => {
        if (!subscriber.closed) subscription.start();
      });
      const onAbort = (): void => subscription.stopIntake();
      options.signal?.addEventListener('abort', onAbort, { once: true });
      return () => {
        options.signal?.removeEventListener('abort', onAbort);
        this.subscriptions.delete(subscription);
        this.connections.unfollow(subscription.connection);
        const ended = subscription.close().finally(() => {
          if (this.ending.get(clientId) === ended) this.ending.delete(clientId);
        });
        this.ending.set(clientId, ended);
        this.slots.delete(clientId);
      };
    });
  }

  /**
   * Creates the persistent session (and subscription) of the first consumer of `endpoint` without
   * consuming, so QoS ≥ 1 messages published before that consumer starts are kept for it.
   *
   * Never acknowledges a message: a session that already exists (CONNACK session present) is left at
   * once, untouched — it has its subscription — and any PUBLISH of it that arrives before the
   * DISCONNECT is held unacknowledged (as `MqttSubscription` holds them), so the broker keeps it for
   * the consumer. Nothing is done while a consumer of this transport holds the session.
   */
  async provision(endpoint: Endpoint): Promise<void> {
    validateMqttEndpointOptions(endpoint);
    if (this.brokerUrl === undefined) await this.connect(); // the embedded broker starts on connect
    const pattern = new TopicPattern(endpoint.path, endpoint.options.group);
    const clientId = endpoint.options.clientId ?? `${this.baseClientId}:0:${hash(pattern.filter)}`;
    if (this.slots.has(clientId)) return; // consuming: the session exists
    await this.ending.get(clientId);
    // Receive Maximum 1: at most one PUBLISH of a queued session is sent before we leave
    const connection = new MqttConnection({ ...this.connectionConfig(clientId, 1, false), onPublish: holdAcknowledgement }, this.log);
    let sessionPresent = false;
    connection.onConnect((present) => {
      sessionPresent = present;
    });
    try {
      await connection.open();
      if (!sessionPresent) await connection.client.subscribeAsync(pattern.filter, { qos: this.qosOf(endpoint) });
    } finally {
      await connection.end();
    }
  }

  async close(): Promise<void> {
    this.connections.close();
    const requester = this.requester;
    this.requester = undefined;
    await requester?.close();
    const subscriptions = [...this.subscriptions];
    this.subscriptions.clear();
    await Promise.all([...subscriptions.map((subscription) => subscription.close()), ...this.ending.values()]);
    const connection = this.publisherConnection;
    this.publisherConnection = undefined;
    this.publisher = undefined;
    this.connecting = undefined;
    const status = this.options.lastWill;
    if (connection?.connected === true && status !== undefined) announce(connection, status, status.payload ?? 'offline');
    await connection?.end(); // after the status message: a graceful end waits for what is in flight
    await this.store?.close();
    this.store = undefined;
    if (this.embedded !== undefined) {
      await this.embedded.close();
      this.embedded = undefined;
      this.brokerUrl = undefined;
    }
  }

  /** The durable implicit dead-letter topic (see `DeadLetterTopic`); created on first use. */
  private deadLetter(message: Message, reason: Error): Promise<void> {
    this.deadLetters ??= new DeadLetterTopic(this.options.deadLetterPrefix ?? 'interchange/dead', `${this.baseClientId}:dead-letters`, {
      provision: (filter, clientId) => this.provision({ uri: `mqtt:${filter}?clientId=${clientId}`, scheme: 'mqtt', path: filter, options: { qos: '1', clientId } }),
      publish: (topic, dead) => this.publish({ uri: `mqtt:${topic}`, scheme: 'mqtt', path: topic, options: { qos: '1' } }, [dead]),
    }, this.log);
    return this.deadLetters.send(message, reason);
  }

  private handedBackOf(clientId: string): Map<string, number> {
    let map = this.handedBack.get(clientId);
    if (map === undefined) {
      map = new Map();
      this.handedBack.set(clientId, map);
    }
    return map;
  }

  private claimSlot(filter: string): string {
    const suffix = hash(filter);
    for (let slot = 0; ; slot += 1) {
      const clientId = `${this.baseClientId}:${slot}:${suffix}`;
      if (!this.slots.has(clientId)) return clientId;
    }
  }

  /** The publish topic of a fixed (non-template) endpoint path, checked once. */
  private topicOf(path: string): string {
    let topic = this.publishTopics.get(path);
    if (topic === undefined) {
      topic = publishTopic(path);
      if (this.publishTopics.size < 10_000) this.publishTopics.set(path, topic);
    }
    return topic;
  }

  private qosOf(endpoint: Endpoint): Qos {
    const qos = endpoint.options.qos; // '0' | '1' | '2' (validateMqttEndpointOptions)
    return qos === undefined ? (this.options.qos ?? 1) : (Number(qos) as Qos);
  }

  private connectionConfig(clientId: string, receiveMaximum: number | undefined, publisher: boolean): ConnectionConfig {
    const o = this.options;
    const config: ConnectionConfig = {
      url: this.url,
      clientId,
      persistent: o.persistentSession !== false,
      protocolVersion: this.protocolVersion,
      sessionExpirySeconds: o.sessionExpirySeconds ?? 86_400,
      keepaliveSeconds: o.keepaliveSeconds ?? 30,
      connectTimeoutMs: o.connectTimeoutMs ?? 10_000,
      initialDelayMs: o.reconnect?.initialDelayMs ?? 250,
      maxDelayMs: o.reconnect?.maxDelayMs ?? 30_000,
      ...(receiveMaximum === undefined ? {} : { receiveMaximum }),
      ...(o.username === undefined ? {} : { username: o.username }),
      ...(o.password === undefined ? {} : { password: o.password }),
      ...(o.tls === undefined ? {} : { tls: o.tls }),
      ...(publisher && o.lastWill !== undefined ? { will: o.lastWill } : {}),
    };
    return config;
  }
}

/** A provisioning connection's inbound PUBLISHes: never acknowledged (the session's consumer gets them). */
function holdAcknowledgement(): void {}

function hash(text: string): string {
  return createHash('sha256').update(text).digest('hex').slice(0, 10);
}

/** Publishes on the status topic (the will's QoS and retain flag). */
function announce(connection: MqttConnection, status: LastWillOptions, payload: string): void {
  connection.client.publish(status.topic, payload, { qos: status.qos ?? 1, retain: status.retain ?? true });
}

/** Publish endpoint option `headers` (validated by `validateMqttEndpointOptions`): `all`, the default, or `none` (`standard` is `none`: the payload and the MQTT 5 standard properties). */
function headerMappingOf(endpoint: Endpoint): HeaderMapping {
  const headers = endpoint.options.headers;
  return headers === 'none' || headers === 'standard' ? 'none' : headers === 'trace' ? 'trace' : 'all';
}

/** Consume endpoint options `headers` (default `standard`) and `userProperties` (validated by `validateMqttEndpointOptions`). */
function inboundPolicyOf(endpoint: Endpoint): InboundPolicy {
  const { headers, userProperties } = endpoint.options;
  if (headers === 'all' || headers === 'none' || headers === 'trace') return { headers };
  return userProperties === undefined ? STANDARD_INBOUND : { headers: 'standard', userProperties: new Set(userProperties.split(',')) };
}

/** Endpoint option `payload` (validated by `validateMqttEndpointOptions`): `raw`, or `decoded`, the default. */
function rawPayloadOf(endpoint: Endpoint): boolean {
  return endpoint.options.payload === 'raw';
}

/** A consumer connection's size limits: `maxMessageBytes` (endpoint option, else the transport's, else 1 MiB) and, when set, `maxPacketBytes` as its MQTT 5 Maximum Packet Size. */
function consumerLimits(endpoint: Endpoint, options: MqttTransportOptions): { maxMessageBytes: number; maxPacketBytes?: number } {
  const maxMessageBytes = integerOption(endpoint, 'maxMessageBytes', options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES);
  return options.maxPacketBytes === undefined ? { maxMessageBytes } : { maxMessageBytes, maxPacketBytes: options.maxPacketBytes };
}
