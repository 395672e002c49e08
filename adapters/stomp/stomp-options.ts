import { defineOptions, positiveIntegerOption } from '../../src/core/index.ts';
import { StompConfigurationError } from './stomp-errors.ts';

/** The largest frame (body plus headers) `publish` writes and a consumer takes whole, by default: 16 MiB. */
export const DEFAULT_MAX_MESSAGE_BYTES = 16 * 1024 * 1024;
/** The default broker: RabbitMQ's STOMP plugin on loopback. */
export const DEFAULT_STOMP_URL = 'stomp://127.0.0.1:61613';

export interface StompTransportOptions {
  /**
   * `stomp://[login:passcode@]host[:port][/virtual-host]` (port 61613 by default; the path, percent-decoded,
   * is the CONNECT `host` header — RabbitMQ's virtual host —, `/` when absent). Default: `STOMP_URL`,
   * else `stomp://127.0.0.1:61613`. The passcode is never logged.
   */
  readonly url?: string;
  /**
   * The endpoint scheme this transport serves (default `stomp`). Two brokers in one integration are two
   * transports with two schemes: `new StompTransport({ url: 'stomp://127.0.0.1:61623', scheme: 'activemq' })` serves `activemq:queue/…`.
   */
  readonly scheme?: string;
  /** How long `connect()` keeps trying before it rejects with `NotConnectedError` (default 15,000 ms). */
  readonly connectTimeoutMs?: number;
  /** STOMP heart-beating, both ways, in ms (default 10,000; 0 = off): a silent link is dropped after about twice this and reconnected. */
  readonly heartbeatMs?: number;
  /** Reconnect backoff: first delay and ceiling in ms, ±50 % jitter each (defaults 100, 10,000). */
  readonly reconnect?: { readonly initialDelayMs?: number; readonly maxDelayMs?: number };
  /** A SEND whose RECEIPT has not come within this time (waiting for a connection included) rejects with `TimeoutError` (default 30,000 ms). */
  readonly publishTimeoutMs?: number;
  /** Default for endpoints without `?maxDeliveries=` (RabbitMQ): deliveries before a nacked message goes to the dead-letter queue (default 5). */
  readonly maxDeliveries?: number;
  /** The largest message, body and headers, published or taken whole (default 16 MiB). */
  readonly maxMessageBytes?: number;
}

/** The options' JSON Schema (draft 2020-12): the one source for validation and docs. */
export const stompOptionsSchema = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  title: 'STOMP transport options',
  type: 'object',
  additionalProperties: false,
  properties: {
    url: { type: 'string', pattern: '^stomp://', description: 'broker URL; default STOMP_URL, else stomp://127.0.0.1:61613' },
    scheme: { type: 'string', pattern: '^[a-z][a-z0-9+.-]*$', maxLength: 32, default: 'stomp' },
    connectTimeoutMs: { type: 'integer', minimum: 1, default: 15000 },
    heartbeatMs: { type: 'integer', minimum: 0, maximum: 600000, default: 10000 },
    reconnect: {
      type: 'object',
      additionalProperties: false,
      properties: { initialDelayMs: { type: 'integer', minimum: 1, default: 100 }, maxDelayMs: { type: 'integer', minimum: 1, default: 10000 } },
    },
    publishTimeoutMs: { type: 'integer', minimum: 1, default: 30000 },
    maxDeliveries: { type: 'integer', minimum: 1, default: 5 },
    maxMessageBytes: { type: 'integer', minimum: 1, maximum: 104857600, default: 16777216, description: 'largest message, body and headers; ActiveMQ takes at most 100 MiB per frame' },
  },
} as const;

/** The query options a `stomp:` endpoint accepts (strings in the URI), as JSON Schema. */
export const stompEndpointOptionsSchema = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  title: 'STOMP endpoint options',
  type: 'object',
  additionalProperties: false,
  properties: {
    headers: {
      enum: ['standard', 'all', 'none'],
      description:
        'consuming: what of a MESSAGE becomes id and headers — standard (default: content-type and the allowHeaders, the id from the broker), all (a trusted Interchange peer: its id and every header), none. Publishing: none sends the body and content-type alone; otherwise the id and every header',
    },
    allowHeaders: { type: 'string', pattern: '^[^,\\s]+(,[^,\\s]+)*$', description: 'consuming with headers=standard: comma-separated STOMP headers taken as string headers (never reserved names)' },
    queueType: { enum: ['classic', 'quorum'], description: 'RabbitMQ, queue/ destinations: the x-queue-type sent on SEND and SUBSCRIBE (declares the queue so). quorum gives exact delivery counts' },
    maxDeliveries: positiveIntegerOption('RabbitMQ: deliveries of a nacked message before it goes to the dead-letter queue (default: the transport\'s, 5)', 6),
    deadLetter: { type: 'string', minLength: 1, maxLength: 1000, description: 'RabbitMQ: the dead-letter destination (default /queue/DLQ.<name>); ActiveMQ applies its own policy (DLQ.<queue> here)' },
    persistent: { enum: ['true', 'false'], description: 'publishing: persistent:true (default) or false' },
  },
} as const;

/** An endpoint's options, validated. */
export interface StompEndpointOptions {
  readonly headers?: 'standard' | 'all' | 'none';
  readonly allowHeaders?: string;
  readonly queueType?: 'classic' | 'quorum';
  readonly maxDeliveries?: string;
  readonly deadLetter?: string;
  readonly persistent?: 'true' | 'false';
}

const configurationError = (message: string): Error => new StompConfigurationError(message);
const transportOptions = defineOptions<StompTransportOptions>(stompOptionsSchema, { error: configurationError });
const endpointOptions = defineOptions<StompEndpointOptions>(stompEndpointOptionsSchema, { error: configurationError });

/** Checks transport options against `stompOptionsSchema`; throws `StompConfigurationError` listing every problem (URL passcodes redacted). */
export function validateStompOptions(options: StompTransportOptions): void {
  transportOptions.validate(options, 'STOMP transport options');
}

/** Checks an endpoint's query options; throws `StompConfigurationError` naming the URI and every problem ("did you mean"). */
export function validateStompEndpointOptions(uri: string, options: Readonly<Record<string, string>>): StompEndpointOptions {
  return endpointOptions.validate(options, { uri });
}

/** Where and how to connect, read from a `stomp://` URL. */
export interface StompAddress {
  readonly host: string;
  readonly port: number;
  /** The CONNECT `host` header (RabbitMQ's virtual host). */
  readonly virtualHost: string;
  readonly login: string | undefined;
  readonly passcode: string | undefined;
}

/** Parses a `stomp://` URL; throws `StompConfigurationError` (without the passcode) when it is not one. */
export function parseStompUrl(url: string): StompAddress {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch (cause) {
    throw new StompConfigurationError('invalid STOMP URL: expected stomp://[login:passcode@]host[:port][/virtual-host]', { cause });
  }
  if (parsed.protocol !== 'stomp:' || parsed.hostname === '') throw new StompConfigurationError('invalid STOMP URL: expected stomp://[login:passcode@]host[:port][/virtual-host]');
  const path = decodeUrlPart(parsed.pathname.replace(/^\//, ''), 'virtual host');
  return {
    host: parsed.hostname.replace(/^\[|\]$/g, ''),
    port: parsed.port === '' ? 61613 : Number(parsed.port),
    virtualHost: path === '' ? '/' : path,
    login: parsed.username === '' ? undefined : decodeUrlPart(parsed.username, 'login'),
    passcode: parsed.password === '' ? undefined : decodeUrlPart(parsed.password, 'passcode'),
  };
}

/** Percent-decodes a part of the URL; a malformed escape is a `StompConfigurationError` naming the part, never its text. */
function decodeUrlPart(text: string, part: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    throw new StompConfigurationError(`invalid STOMP URL: the ${part} has a malformed percent-escape`);
  }
}
