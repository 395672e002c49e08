import { defineOptions, EndpointError, InterchangeError, positiveIntegerOption, type Endpoint } from '../../src/core/index.ts';
import { isReservedHeaderName } from './message-codec.ts';

/** MQTT's largest packet (the Remaining Length's maximum): `maxPacketBytes`' default. */
export const MQTT_MAX_PACKET_BYTES = 268_435_455;

/** Where outgoing QoS ≥ 1 messages wait while the broker is unreachable. */
export interface StoreAndForwardOptions {
  /** Messages held at most; one more is refused with `CapacityError` (default 10,000). */
  readonly capacity?: number;
  /**
   * A file that keeps held messages across a restart of the process (append-only, fsynced per
   * batch). Without it the store is memory only and `publish` resolves only on the broker's confirm.
   */
  readonly path?: string;
}

/**
 * The adapter's status topic: `onlinePayload` is published (retained by default) on every connect,
 * the will `payload` by the broker if this process vanishes and by the adapter on a graceful close —
 * so the topic always says whether this instance is up (Home Assistant / Sparkplug style).
 */
export interface LastWillOptions {
  readonly topic: string;
  /** Will payload (UTF-8), also published on a graceful close; default `offline`. */
  readonly payload?: string;
  /** Published on every connect; default `online`. */
  readonly onlinePayload?: string;
  readonly qos?: 0 | 1 | 2;
  readonly retain?: boolean;
}

/** TLS material for `mqtts://` (PEM strings or buffers). Never logged. */
export interface MqttTlsOptions {
  readonly ca?: string | Buffer;
  readonly cert?: string | Buffer;
  readonly key?: string | Buffer;
  readonly rejectUnauthorized?: boolean;
}

export interface MqttTransportOptions {
  /** Broker URL (`mqtt://host:port`, `mqtts://…`). Default: `MQTT_URL`, else the embedded broker. */
  readonly url?: string;
  /**
   * Stable base client id: consumers are `<clientId>:<slot>:<filter hash>`, the publisher
   * `<clientId>:pub`. A stable id is what lets a persistent session survive a restart.
   */
  readonly clientId?: string;
  /** 5 (default) or 4 (MQTT 3.1.1, for brokers without v5: headers then travel in a JSON envelope). */
  readonly protocolVersion?: 4 | 5;
  /** Keep the session across disconnects (default true: `clean: false`). */
  readonly persistentSession?: boolean;
  /** MQTT 5 session expiry interval in seconds (default 86,400). Required > 0 for a persistent v5 session. */
  readonly sessionExpirySeconds?: number;
  readonly username?: string;
  readonly password?: string;
  readonly tls?: MqttTlsOptions;
  /** Default QoS of endpoints without `?qos=` (default 1). */
  readonly qos?: 0 | 1 | 2;
  /**
   * Immediate local redeliveries of a delivery nacked for a transient reason (default 5); after them
   * it is redelivered with backoff (`redelivery`), never acknowledged until delivered.
   */
  readonly maxDeliveries?: number;
  /** Backoff of redeliveries beyond `maxDeliveries`: first delay, ceiling in ms, ±50 % jitter (defaults 1,000, 30,000). */
  readonly redelivery?: { readonly initialDelayMs?: number; readonly maxDelayMs?: number };
  /**
   * Topic prefix of the durable implicit dead-letter topic (default `interchange/dead`): messages
   * nacked for a permanent reason go to `<prefix>/<topic>`, kept by the broker for the persistent
   * session `<clientId>:dead-letters` (see `DeadLetterTopic`).
   */
  readonly deadLetterPrefix?: string;
  /** Reconnect backoff: first delay, ceiling (ms); each delay gets ±50 % jitter (defaults 250, 30,000). */
  readonly reconnect?: { readonly initialDelayMs?: number; readonly maxDelayMs?: number };
  readonly storeAndForward?: StoreAndForwardOptions;
  /**
   * QoS 2 inbound state on disk, one subdirectory per consumer session: a message processed and
   * PUBREC'd (or about to be) is not processed again when a crash makes the broker resend it, and the
   * broker's PUBREL finds it after a restart. Default: memory (the same within one process only).
   */
  readonly qos2Store?: { readonly directory: string };
  readonly lastWill?: LastWillOptions;
  readonly keepaliveSeconds?: number;
  readonly connectTimeoutMs?: number;
  /**
   * The largest PUBLISH this transport sends, fixed header included (default 268,435,455, MQTT's
   * maximum); a broker whose CONNACK sets a smaller Maximum Packet Size lowers it. A larger message
   * fails alone with `MqttUnencodableError`, never reaching the connection.
   *
   * When set (MQTT 5), consumer connections also send it in CONNECT as their Maximum Packet Size: the
   * broker then discards larger packets for them without sending them, as MQTT 5 requires of it
   * (MQTT-3.1.2-25) — such a message is lost to that consumer, not dead-lettered (`maxMessageBytes`
   * dead-letters it instead). Not sent when unset.
   */
  readonly maxPacketBytes?: number;
  /**
   * Consumers: the largest payload taken whole (bytes; default 1,048,576). A larger PUBLISH is never
   * buffered: its payload streams past the parser (SHA-256 and size taken, the first 4 KiB kept) and
   * its delivery carries the 4 KiB as body, headers `x-interchange-original-size`,
   * `x-interchange-sha256`, `x-interchange-truncated` and the intake error `MqttMessageTooLargeError`
   * (permanent: the route dead-letters it). Endpoint option `maxMessageBytes=` overrides it.
   */
  readonly maxMessageBytes?: number;
}

/** The options' JSON Schema: the one source for validation and docs (draft 2020-12). */
export const mqttOptionsSchema = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  title: 'MQTT transport options',
  type: 'object',
  additionalProperties: false,
  properties: {
    url: { type: 'string', pattern: '^(mqtts?|tcp|tls|wss?)://', description: 'Broker URL; default MQTT_URL, else the embedded broker.' },
    clientId: { type: 'string', minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9._:-]+$', description: 'Stable base client id.' },
    protocolVersion: { enum: [4, 5], default: 5 },
    persistentSession: { type: 'boolean', default: true },
    sessionExpirySeconds: { type: 'integer', minimum: 0, maximum: 4294967295, default: 86400 },
    username: { type: 'string' },
    password: { type: 'string', description: 'Never logged.' },
    tls: {
      type: 'object',
      additionalProperties: false,
      properties: { ca: {}, cert: {}, key: {}, rejectUnauthorized: { type: 'boolean' } },
    },
    qos: { enum: [0, 1, 2], default: 1 },
    maxDeliveries: { type: 'integer', minimum: 1, default: 5 },
    deadLetterPrefix: { type: 'string', minLength: 1, default: 'interchange/dead' },
    redelivery: {
      type: 'object',
      additionalProperties: false,
      properties: { initialDelayMs: { type: 'integer', minimum: 1, default: 1000 }, maxDelayMs: { type: 'integer', minimum: 1, default: 30000 } },
    },
    reconnect: {
      type: 'object',
      additionalProperties: false,
      properties: { initialDelayMs: { type: 'integer', minimum: 1, default: 250 }, maxDelayMs: { type: 'integer', minimum: 1, default: 30000 } },
    },
    storeAndForward: {
      type: 'object',
      additionalProperties: false,
      properties: { capacity: { type: 'integer', minimum: 1, default: 10000 }, path: { type: 'string', minLength: 1 } },
    },
    qos2Store: {
      type: 'object',
      additionalProperties: false,
      required: ['directory'],
      properties: { directory: { type: 'string', minLength: 1, description: 'Directory for QoS 2 inbound state (one subdirectory per consumer session).' } },
    },
    lastWill: {
      type: 'object',
      additionalProperties: false,
      required: ['topic'],
      properties: { topic: { type: 'string', minLength: 1 }, payload: { type: 'string' }, onlinePayload: { type: 'string' }, qos: { enum: [0, 1, 2] }, retain: { type: 'boolean' } },
    },
    keepaliveSeconds: { type: 'integer', minimum: 0, default: 30 },
    connectTimeoutMs: { type: 'integer', minimum: 1, default: 10000 },
    maxPacketBytes: { type: 'integer', minimum: 1, maximum: 268435455, default: 268435455, description: 'Largest PUBLISH sent (bytes, fixed header included); lowered by the broker\'s Maximum Packet Size.' },
    maxMessageBytes: { type: 'integer', minimum: 1, maximum: 268435455, default: 1048576, description: 'consume: largest payload taken whole; a larger message is delivered truncated to 4 KiB with its size and SHA-256, and dead-lettered' },
  },
} as const;

/**
 * Why the broker (or TLS) refused this client: `bad-credentials` (MQTT 5 0x86, 3.1.1 code 4),
 * `not-authorized` (0x87, 3.1.1 code 5), `banned` (0x8A), `client-id-rejected` (0x85, 3.1.1 code 2),
 * `protocol-version` (0x84, 3.1.1 code 1), `bad-authentication-method` (0x8C), `tls-certificate` and
 * `tls-handshake` (then `cause` is the typed `TlsCertificateError` / `TlsHandshakeError`).
 */
export type MqttRefusalReason = 'bad-credentials' | 'not-authorized' | 'banned' | 'client-id-rejected' | 'protocol-version' | 'bad-authentication-method' | 'tls-certificate' | 'tls-handshake';

/**
 * The broker refused this client for good (bad credentials, not authorized, banned, client id
 * rejected) or its TLS certificate failed verification or the TLS handshake failed: retrying the same
 * configuration cannot help, so `connect()` fails at once with the reason as `reason` and the broker's
 * (or TLS's, typed) error as `cause`, rather than after the timeout. Never contains the password.
 */
export class MqttConnectionRefusedError extends InterchangeError {
  override readonly name = 'MqttConnectionRefusedError';
  /** Why (see `MqttRefusalReason`); undefined only when constructed without one. */
  readonly reason: MqttRefusalReason | undefined;
  constructor(message: string, options: { cause: unknown; reason?: MqttRefusalReason }) {
    super('MQTT_REFUSED', message, { cause: options.cause, permanent: true });
    this.reason = options.reason;
  }
}

/** The adapter's configuration is invalid, or cannot keep what it promises (a persistent session). */
export class MqttConfigError extends InterchangeError {
  override readonly name = 'MqttConfigError';
  constructor(message: string) {
    super('MQTT_CONFIG', message);
  }
}

/** The query options an `mqtt:` endpoint URI accepts (all strings in the URI), as JSON Schema. */
export const mqttEndpointOptionsSchema = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  title: 'MQTT endpoint options',
  type: 'object',
  additionalProperties: false,
  properties: {
    qos: { enum: ['0', '1', '2'], description: 'QoS of the subscription / of published messages (default: the transport\'s qos, else 1)' },
    retain: { enum: ['true', 'false'], description: 'publish: set the retain flag (default false)' },
    headers: {
      enum: ['all', 'none', 'standard', 'trace'],
      description:
        'publish: `all` sends the id and headers as MQTT 5 user properties (3.1.1: a JSON envelope); `none` (or `standard`) the payload and the MQTT 5 standard properties alone; `trace` as `none` plus the W3C trace context (user properties traceparent, tracestate) (default all). ' +
        'consume: what of a PUBLISH besides its payload becomes headers — `standard` the MQTT 5 standard properties (content type, expiry, response topic) and the `userProperties` allow-list, with a fresh id; `none` nothing; `trace` nothing but the W3C trace context of an untrusted publisher (user property traceparent only when strictly well-formed, tracestate only beside it and when at most 512 well-formed characters; anything else dropped); `all` everything, id included, from a trusted Interchange peer (default standard)',
    },
    userProperties: {
      type: 'string',
      pattern: '^[^,]+(,[^,]+)*$',
      description: 'consume, with headers=standard: comma-separated MQTT 5 user properties that become headers (strings); reserved names (x-interchange-*, message-id, ic-types, well-known headers) are refused',
    },
    payload: { enum: ['decoded', 'raw'], description: 'consume: `raw` makes the body the payload bytes as sent, unparsed (default decoded)' },
    group: { type: 'string', pattern: '^[^/+#]+$', description: 'consume: shared subscription group ($share/<group>/<filter>)' },
    clientId: { type: 'string', minLength: 1, description: 'consume: pins the consumer\'s session client id' },
    maxDeliveries: positiveIntegerOption("consume: transiently failed deliveries redelivered at once before redeliveries back off (default: the transport's, else 5)", 6),
    maxMessageBytes: positiveIntegerOption("consume: largest payload taken whole, in bytes (default: the transport's, else 1,048,576); a larger message is delivered truncated and dead-lettered", 9),
  },
} as const;

const endpointOptions = defineOptions<Readonly<Record<string, string>>>(mqttEndpointOptionsSchema);
/** Endpoints already checked: a route publishes through the same endpoint object every time. */
const checkedEndpoints = new WeakSet<Endpoint>();

/** Checks an endpoint's query options against `mqttEndpointOptionsSchema`; throws `EndpointError` naming the URI and every problem. */
export function validateMqttEndpointOptions(endpoint: Endpoint): void {
  if (checkedEndpoints.has(endpoint)) return;
  endpointOptions.validate(endpoint.options, endpoint);
  const allowed = endpoint.options.userProperties;
  if (allowed !== undefined) {
    const headers = endpoint.options.headers;
    if (headers !== undefined && headers !== 'standard') throw new EndpointError(`invalid options in '${endpoint.uri}': userProperties applies to headers=standard, not headers=${headers}`);
    const reserved = allowed.split(',').filter((name) => isReservedHeaderName(name));
    if (reserved.length > 0) {
      throw new EndpointError(`invalid options in '${endpoint.uri}': userProperties may not name ${reserved.map((name) => `'${name}'`).join(', ')}: x-interchange-*, message-id, ic-types, CC, BCC and the well-known headers are set by Interchange alone`);
    }
  }
  checkedEndpoints.add(endpoint);
}

const transportOptions = defineOptions<MqttTransportOptions>(mqttOptionsSchema, { secrets: ['password', 'key', 'cert', 'ca'], error: (message) => new MqttConfigError(message) });

/**
 * Validates options against `mqttOptionsSchema` and refuses a configuration that cannot keep a
 * session: a persistent session needs a stable `clientId`, and on MQTT 5 a session expiry > 0.
 * Throws `MqttConfigError` naming every problem; the message never contains the password, TLS
 * material or a URL's password.
 */
export function validateMqttOptions(options: MqttTransportOptions): void {
  transportOptions.validate(options, 'MQTT options');
  if (options.persistentSession !== false) {
    if (options.clientId === undefined) {
      throw new MqttConfigError('a persistent MQTT session needs a stable clientId: a random one starts a new session on every connect, so messages queued for the old one are never received (set clientId, or persistentSession: false)');
    }
    if ((options.protocolVersion ?? 5) === 5 && options.sessionExpirySeconds === 0) {
      throw new MqttConfigError('MQTT 5 with sessionExpirySeconds 0 ends the session at disconnect: a persistent session needs sessionExpirySeconds > 0 (or persistentSession: false)');
    }
  }
}
