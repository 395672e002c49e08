import { defineOptions, positiveIntegerOption } from '../../src/core/index.ts';
import { Amqp10ConfigurationError } from './amqp10-errors.ts';

/** The largest message (body plus application properties) published or taken, by default: 8 MiB. */
export const DEFAULT_MAX_MESSAGE_BYTES = 8 * 1024 * 1024;

export interface Amqp10TransportOptions {
  /**
   * `amqp://[user:pass@]host[:port]` or `amqps://…` (SASL PLAIN with the user info, else ANONYMOUS).
   * Default: `AMQP10_URL`, else `amqp://guest:guest@127.0.0.1:5672`. Never logged unredacted.
   */
  readonly url?: string;
  /** How long `connect()` keeps trying before it rejects with `NotConnectedError` (default 15,000 ms). A refused login rejects at once. */
  readonly connectTimeoutMs?: number;
  /** Reconnect backoff (the house `backoffDelay`): first delay and ceiling in ms, ±50 % jitter each (defaults 100, 10,000). */
  readonly reconnect?: { readonly initialDelayMs?: number; readonly maxDelayMs?: number };
  /**
   * A publish whose every message the broker has not settled `accepted` within this time (across
   * reconnects: unsettled transfers are sent again after one) rejects with `TimeoutError` (default 30,000 ms).
   */
  readonly publishTimeoutMs?: number;
  /** Default for endpoints without `?maxDeliveries=`: deliveries of a message before it is rejected to the queue's dead-letter exchange (default 5). */
  readonly maxDeliveries?: number;
  /** The largest message published or consumed, body and application properties, in bytes (default 8 MiB). */
  readonly maxMessageBytes?: number;
  /** AMQP idle time-out announced to the broker, in ms (default 30,000; 0 = none): a silent dead link is noticed within about twice this. */
  readonly idleTimeoutMs?: number;
  /** The container id announced on open (default `interchange-<hostname>-<pid>`). */
  readonly containerId?: string;
}

/** The options' JSON Schema (draft 2020-12): the one source for validation and docs. */
export const amqp10OptionsSchema = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  title: 'AMQP 1.0 transport options',
  type: 'object',
  additionalProperties: false,
  properties: {
    url: { type: 'string', pattern: '^amqps?://', description: 'broker URL; default AMQP10_URL, else amqp://guest:guest@127.0.0.1:5672' },
    connectTimeoutMs: { type: 'integer', minimum: 1, default: 15000 },
    reconnect: {
      type: 'object',
      additionalProperties: false,
      properties: { initialDelayMs: { type: 'integer', minimum: 1, default: 100 }, maxDelayMs: { type: 'integer', minimum: 1, default: 10000 } },
    },
    publishTimeoutMs: { type: 'integer', minimum: 1, default: 30000 },
    maxDeliveries: { type: 'integer', minimum: 1, default: 5 },
    maxMessageBytes: { type: 'integer', minimum: 1, maximum: 268435456, default: 8388608 },
    idleTimeoutMs: { type: 'integer', minimum: 0, default: 30000 },
    containerId: { type: 'string', minLength: 1, maxLength: 200 },
  },
} as const;

/** The query options an `amqp10:` URI accepts (strings in the URI), as JSON Schema. */
export const amqp10EndpointOptionsSchema = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  title: 'AMQP 1.0 endpoint options',
  type: 'object',
  additionalProperties: false,
  properties: {
    maxDeliveries: positiveIntegerOption("deliveries of a message before it is rejected to the queue's dead-letter exchange (default: the transport's, 5)", 6),
    headers: {
      enum: ['all', 'none'],
      description:
        'consuming: what application properties become headers — none (default: any AMQP 1.0 producer may write the address; only those named by `properties`) or all (only trusted Interchange peers write it: every application property, x-interchange-* excepted)',
    },
    properties: { type: 'string', pattern: '^[^,\\s]+(,[^,\\s]+)*$', description: 'consuming, not with headers=all: comma-separated application properties that become headers (never reserved names)' },
    durable: { enum: ['true', 'false'], description: 'publishing: the header durable flag (default true: RabbitMQ persists the message in a durable queue)' },
  },
} as const;

const configurationError = (message: string): Error => new Amqp10ConfigurationError(message);
const transportOptions = defineOptions<Amqp10TransportOptions>(amqp10OptionsSchema, { error: configurationError });
const endpointOptions = defineOptions(amqp10EndpointOptionsSchema, { error: configurationError });

/** Checks transport options against `amqp10OptionsSchema`; throws `Amqp10ConfigurationError` listing every problem (URL passwords redacted). */
export function validateAmqp10Options(options: Amqp10TransportOptions): void {
  transportOptions.validate(options, 'AMQP 1.0 transport options');
}

/** Checks an endpoint's query options; throws `Amqp10ConfigurationError` naming the URI and every problem. */
export function validateAmqp10EndpointOptions(uri: string, options: Readonly<Record<string, string>>): void {
  endpointOptions.validate(options, { uri });
}

/** Where and how to connect, read from a URL. */
export interface ConnectionTarget {
  readonly host: string;
  readonly port: number;
  readonly tls: boolean;
  readonly username: string | undefined;
  readonly password: string | undefined;
}

/** Reads `amqp[s]://[user[:pass]@]host[:port]`; throws `Amqp10ConfigurationError` (never quoting the password). */
export function parseAmqp10Url(url: string): ConnectionTarget {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new Amqp10ConfigurationError('amqp10: the url is not a URL (expected amqp://[user:pass@]host[:port])');
  }
  const tls = parsed.protocol === 'amqps:';
  if (!tls && parsed.protocol !== 'amqp:') throw new Amqp10ConfigurationError(`amqp10: the url's scheme is '${parsed.protocol}'; expected amqp: or amqps:`);
  if (parsed.hostname === '') throw new Amqp10ConfigurationError('amqp10: the url has no host');
  return {
    host: parsed.hostname.replace(/^\[(.*)\]$/, '$1'),
    port: parsed.port === '' ? (tls ? 5671 : 5672) : Number(parsed.port),
    tls,
    username: parsed.username === '' ? undefined : decodeURIComponent(parsed.username),
    password: parsed.password === '' ? undefined : decodeURIComponent(parsed.password),
  };
}
