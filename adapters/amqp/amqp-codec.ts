import type { Options } from 'amqplib';
import { InterchangeError, toError, type HeaderValue, type Headers, type Message } from '../../src/core/index.ts';
import { isBrokerHeader } from './amqp-broker-headers.ts';
import { AmqpUnencodableError } from './amqp-errors.ts';

/** What the codec reads from a delivered (or returned) AMQP message. */
export interface AmqpWireMessage {
  readonly content: Buffer;
  readonly properties: {
    readonly contentType?: unknown;
    readonly headers?: Record<string, unknown> | undefined;
    readonly messageId?: unknown;
    readonly correlationId?: unknown;
    readonly replyTo?: unknown;
    readonly timestamp?: unknown;
    readonly type?: unknown;
    readonly priority?: unknown;
  };
}

/** An encoded message, ready for `basic.publish`. */
export interface Encoded {
  readonly content: Buffer;
  readonly properties: Options.Publish;
}

/** How one destination takes messages (built once per endpoint or publish call, not per message). */
export interface EncodeSettings {
  readonly persistent: boolean;
  readonly mandatory: boolean;
  /** A body larger than this many bytes is refused (default `DEFAULT_MAX_MESSAGE_BYTES`). */
  readonly maxMessageBytes?: number | undefined;
  /** The broker headers (see `BROKER_HEADERS`) this destination may send; the others are dropped. */
  readonly brokerHeaders?: ReadonlySet<string> | undefined;
}

/** A body or payload that cannot be decoded: a per-message failure, never a transport failure. */
export class CodecError extends InterchangeError {
  override readonly name = 'CodecError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('AMQP_CODEC', message, options);
  }
}

/** RabbitMQ 4's default `max_message_size` (16 MiB): the broker closes the channel on a bigger message. */
export const DEFAULT_MAX_MESSAGE_BYTES = 16 * 1024 * 1024;

/**
 * The largest headers table `encodeMessage` lets through, in encoded bytes (length prefix
 * included). amqplib encodes the table into a 65,536-byte scratch buffer and throws — or, when the
 * last string runs past its end, silently truncates — on a bigger one; 1,536 bytes stay as margin.
 */
export const MAX_HEADER_TABLE_BYTES = 64_000;

/** AMQP short strings (property values, header names) hold at most 255 bytes of UTF-8. */
const SHORT_STRING_BYTES = 255;
/** Below this many UTF-16 units a string cannot exceed 255 bytes of UTF-8 (3 bytes per unit at most). */
const SURELY_SHORT = 86;
/** RabbitMQ refuses a per-message TTL above 2^32 - 1 ms (and a negative or non-integer one) by closing the channel. */
const MAX_EXPIRATION_MS = 0xffffffff;
const MAX_TIMESTAMP_SECONDS = 2 ** 53;
const INT64_MIN = -(2 ** 63);
const TWO_63 = 2 ** 63;
/** amqplib writes a number of this magnitude or more (below 2^63) as an int64, so it must be an integer. */
const TWO_50 = 2 ** 50;

const JSON_TYPE = 'application/json';

/** Well-known headers carried by AMQP properties (not repeated in the headers table). */
const PROPERTY_HEADERS = new Set(['correlationId', 'replyTo', 'contentType', 'type', 'priority', 'attempt']);

function isJson(contentType: string): boolean {
  return contentType === JSON_TYPE || contentType.startsWith('application/json;') || contentType.endsWith('+json') || contentType.includes('+json;');
}

function refuse(id: string, field: string, detail: string, cause?: unknown): AmqpUnencodableError {
  return new AmqpUnencodableError(id, field, detail, cause === undefined ? undefined : { cause });
}

/** Throws unless `value` fits an AMQP short string. */
function checkShort(id: string, field: string, value: string): void {
  if (value.length < SURELY_SHORT) return;
  const bytes = Buffer.byteLength(value, 'utf8');
  if (bytes > SHORT_STRING_BYTES) throw refuse(id, field, `is ${bytes} bytes of UTF-8; an AMQP short string holds at most ${SHORT_STRING_BYTES}`);
}

/** A property that must be a short string when present. */
function shortProperty(id: string, field: string, value: unknown): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string') throw refuse(id, field, `is a ${typeof value}; it must be a string`);
  checkShort(id, field, value);
  return value;
}

/**
 * Throws unless amqplib can write `value` in a table and RabbitMQ can read it back: NaN and ±Infinity
 * are refused (amqplib throws on NaN; RabbitMQ closes the whole connection on an infinite double),
 * so are numbers below -2^63 (out of int64) and non-integers of magnitude 2^50 to 2^63, which
 * amqplib writes as int64 and throws on.
 */
function checkNumber(id: string, field: string, value: number): void {
  if (value !== value) throw refuse(id, field, 'is NaN; AMQP tables take finite numbers only');
  if (value === Infinity || value === -Infinity) throw refuse(id, field, `is ${value}; AMQP tables take finite numbers only`);
  if (value < INT64_MIN) throw refuse(id, field, `is ${value}, below the int64 minimum -2^63`);
  if (value < TWO_63 && (value >= TWO_50 || value <= -TWO_50) && Math.floor(value) !== value) {
    throw refuse(id, field, `is ${value}: amqplib writes numbers of magnitude 2^50 to 2^63 as int64, so it must be an integer`);
  }
}

/** The bytes amqplib writes for a (checked) number in a table, its tag excluded — its own int/double choice. */
function numberBytes(value: number): number {
  if (value >= TWO_63 || (value < TWO_50 && value > -TWO_50 && Math.floor(value) !== value)) return 8;
  if (value >= -0x80 && value < 0x80) return 1;
  if (value >= -0x8000 && value < 0x8000) return 2;
  if (value >= -0x80000000 && value < 0x80000000) return 4;
  return 8;
}

/** The exact encoded size of a headers table (length prefix included), as amqplib's `encodeTable` writes it. */
function tableBytes(table: Readonly<Record<string, HeaderValue | readonly string[]>>): number {
  let size = 4;
  for (const name in table) {
    const value = table[name] as HeaderValue | readonly string[];
    size += 2 + Buffer.byteLength(name, 'utf8');
    if (typeof value === 'string') size += 4 + Buffer.byteLength(value, 'utf8');
    else if (typeof value === 'number') size += numberBytes(value);
    else if (typeof value === 'boolean') size += 1;
    else size += 4 + value.reduce((sum, key) => sum + 5 + Buffer.byteLength(key, 'utf8'), 0);
  }
  return size;
}

/** `CC`/`BCC` (when allowed): RabbitMQ takes only an array of strings, so a comma-separated list becomes one. */
function routingKeys(id: string, name: string, value: HeaderValue): string[] {
  const keys = String(value).split(',');
  for (const key of keys) checkShort(id, `header '${name}' routing key`, key);
  return keys;
}

/**
 * Message → AMQP. Body: a Buffer goes as is (`contentType` default `application/octet-stream`); a
 * string with a `text/*` (or other non-JSON) content type as UTF-8; anything else as JSON (default
 * content type `application/json`). Properties: messageId ← id, correlationId, replyTo, contentType,
 * `type` and `priority` headers, timestamp (seconds), expiration ← `expiresAt` − now (0 once past);
 * every other header (and exact `timestamp`/`expiresAt` in ms) in the headers table. `attempt` is
 * not sent: it counts deliveries at one destination.
 *
 * Broker headers (`CC`, `BCC`, `x-delay`, `x-death`…, see `BROKER_HEADERS`) are dropped silently
 * unless `settings.brokerHeaders` allows them: headers come from input and must not steer the
 * broker. An allowed `CC`/`BCC` is sent as RabbitMQ needs it, an array of routing keys (its value
 * split on commas).
 *
 * Everything handed to amqplib is checked first, in one pass, so `channel.publish` never throws on
 * it and RabbitMQ never closes the channel over it. Throws `AmqpUnencodableError` (permanent, this
 * message alone) when: the id, correlationId, replyTo, contentType, `type`, a header name or a
 * CC/BCC routing key is over 255 bytes of UTF-8 (or of the wrong type); a header value is not a
 * string, finite number or boolean (NaN, ±Infinity, below -2^63, a non-integer of magnitude ≥ 2^50);
 * the headers table encodes to more than `MAX_HEADER_TABLE_BYTES`; `priority` is not an integer
 * 0–255; a numeric `timestamp` is not an integer 0–2^53 s; `expiresAt` is not a finite number or is
 * more than 2^32 − 1 ms away; the body cannot be serialised, or is over `maxMessageBytes`.
 * A non-numeric `timestamp` (a foreign publisher's) stays in the table but sets no property.
 */
export function encodeMessage(message: Message, settings: EncodeSettings): Encoded {
  const rawId: unknown = message.id;
  if (typeof rawId !== 'string') throw refuse(String(rawId), 'messageId', `is a ${typeof rawId}; it must be a string`);
  const id = rawId;
  checkShort(id, 'messageId', id);
  const headers = message.headers;
  const declared = shortProperty(id, 'contentType', headers.contentType);
  const body = message.body;
  let content: Buffer;
  let contentType: string;
  if (Buffer.isBuffer(body)) {
    content = body;
    contentType = declared ?? 'application/octet-stream';
  } else if (declared === undefined || isJson(declared)) {
    let json: string | undefined;
    try {
      json = JSON.stringify(body);
    } catch (cause) {
      throw refuse(id, 'body', `cannot be serialised as JSON (${toError(cause).message})`, cause);
    }
    content = Buffer.from(json ?? 'null', 'utf8');
    contentType = declared ?? JSON_TYPE;
  } else if (typeof body === 'string') {
    content = Buffer.from(body, 'utf8');
    contentType = declared;
  } else {
    throw refuse(id, 'body', `is a ${typeof body}; content type '${AmqpUnencodableError.quote(declared)}' needs a string or Buffer body`);
  }
  const maxBytes = settings.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
  if (content.length > maxBytes) throw refuse(id, 'body', `is ${content.length} bytes; maxMessageBytes is ${maxBytes}`);

  const allowed = settings.brokerHeaders;
  const table: Record<string, HeaderValue | string[]> = {};
  // an upper bound of the table's encoded size (3 bytes per UTF-16 unit at most): exact sizes are
  // computed only when it says the table might be too big
  let bound = 4;
  for (const name in headers) {
    const value: unknown = headers[name];
    if (value === undefined || PROPERTY_HEADERS.has(name)) continue;
    if (isBrokerHeader(name) && allowed?.has(name) !== true) continue;
    if (name.length >= SURELY_SHORT && Buffer.byteLength(name, 'utf8') > SHORT_STRING_BYTES) {
      throw refuse(id, `header '${AmqpUnencodableError.quote(name)}'`, `has a name of ${Buffer.byteLength(name, 'utf8')} bytes of UTF-8; header names hold at most ${SHORT_STRING_BYTES}`);
    }
    switch (typeof value) {
      case 'string':
        bound += 6 + 3 * (name.length + value.length);
        break;
      case 'number':
        checkNumber(id, `header '${AmqpUnencodableError.quote(name)}'`, value);
        bound += 10 + 3 * name.length;
        break;
      case 'boolean':
        bound += 3 + 3 * name.length;
        break;
      default:
        throw refuse(id, `header '${AmqpUnencodableError.quote(name)}'`, `is ${value === null ? 'null' : `a ${typeof value}`}; header values are strings, numbers or booleans`);
    }
    if (name === 'CC' || name === 'BCC') {
      const keys = routingKeys(id, name, value);
      bound += 5 + keys.length * 5 + 3 * String(value).length;
      table[name] = keys;
    } else {
      table[name] = value;
    }
  }
  if (bound > MAX_HEADER_TABLE_BYTES) {
    const size = tableBytes(table);
    if (size > MAX_HEADER_TABLE_BYTES) throw refuse(id, 'headers', `encode to ${size} bytes; the limit is ${MAX_HEADER_TABLE_BYTES}`);
  }

  const properties: Options.Publish = {
    messageId: id,
    contentType,
    persistent: settings.persistent,
    mandatory: settings.mandatory,
    headers: table,
  };
  const correlationId = shortProperty(id, 'correlationId', headers.correlationId);
  if (correlationId !== undefined) properties.correlationId = correlationId;
  const replyTo = shortProperty(id, 'replyTo', headers.replyTo);
  if (replyTo !== undefined) properties.replyTo = replyTo;
  const timestamp: unknown = headers.timestamp;
  if (typeof timestamp === 'number') {
    const seconds = Math.floor(timestamp / 1000);
    if (!(seconds >= 0 && seconds <= MAX_TIMESTAMP_SECONDS)) throw refuse(id, 'timestamp', `is ${timestamp} ms; AMQP timestamps are whole seconds from 0 to 2^53`);
    properties.timestamp = seconds;
  }
  const expiresAt: unknown = headers.expiresAt;
  if (expiresAt !== undefined) {
    if (typeof expiresAt !== 'number' || !Number.isFinite(expiresAt)) throw refuse(id, 'expiresAt', `is ${String(expiresAt)}; it must be a finite number (epoch ms)`);
    const ttl = Math.ceil(expiresAt - Date.now());
    if (ttl > MAX_EXPIRATION_MS) throw refuse(id, 'expiresAt', `is ${ttl} ms away; RabbitMQ takes a per-message TTL of at most ${MAX_EXPIRATION_MS} ms`);
    properties.expiration = String(Math.max(0, ttl));
  }
  const type = headers.type;
  if (typeof type === 'string') {
    checkShort(id, 'type', type);
    properties.type = type;
  }
  const priority = headers.priority;
  if (typeof priority === 'number') {
    if (!(Number.isInteger(priority) && priority >= 0 && priority <= 255)) throw refuse(id, 'priority', `is ${priority}; it must be an integer from 0 to 255`);
    properties.priority = priority;
  }
  return { content, properties };
}

function headerValue(value: unknown): HeaderValue | undefined {
  switch (typeof value) {
    case 'string':
    case 'number':
    case 'boolean':
      return value;
    case 'bigint':
      return Number(value);
    case 'object':
      if (value === null) return undefined;
      if (Buffer.isBuffer(value)) return value.toString('utf8');
      if (value instanceof Date) return value.getTime();
      return JSON.stringify(value);
    default:
      return undefined;
  }
}

/**
 * AMQP → Message (the inverse of `encodeMessage`), with `attempt` as given. A message without a
 * messageId gets `fallbackId`. Broker headers (`x-death`, `x-first-death-*`) come through, tables as
 * JSON strings. Throws `CodecError` when a JSON body does not parse.
 */
export function decodeMessage(raw: AmqpWireMessage, attempt: number, fallbackId: string): Message {
  const props = raw.properties;
  const headers: Record<string, HeaderValue | undefined> = {};
  const table = props.headers;
  if (table !== undefined) {
    for (const name in table) {
      if (name === 'x-delivery-count') continue;
      const value = headerValue(table[name]);
      if (value !== undefined) headers[name] = value;
    }
  }
  const contentType = typeof props.contentType === 'string' ? props.contentType : undefined;
  if (contentType !== undefined) headers.contentType = contentType;
  if (typeof props.correlationId === 'string') headers.correlationId = props.correlationId;
  if (typeof props.replyTo === 'string') headers.replyTo = props.replyTo;
  if (typeof props.type === 'string') headers.type = props.type;
  if (typeof props.priority === 'number') headers.priority = props.priority;
  if (typeof headers.timestamp !== 'number' && typeof props.timestamp === 'number') headers.timestamp = props.timestamp * 1000;
  headers.attempt = attempt;
  let body: unknown;
  if (contentType !== undefined && isJson(contentType)) {
    try {
      body = JSON.parse(raw.content.toString('utf8'));
    } catch (cause) {
      throw new CodecError(`message ${String(props.messageId)}: body is not valid JSON though its content type is '${contentType}'`, { cause });
    }
  } else if (contentType !== undefined && contentType.startsWith('text/')) {
    body = raw.content.toString('utf8');
  } else {
    body = raw.content;
  }
  const id = typeof props.messageId === 'string' && props.messageId !== '' ? props.messageId : fallbackId;
  return { id, headers: headers as Headers, body };
}
