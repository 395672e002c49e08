import { randomUUID } from 'node:crypto';
import rhea, { type Message as AmqpMessage } from 'rhea';
import { toError, type HeaderValue, type Headers, type Message } from '../../src/core/index.ts';
import { DEFAULT_PAYLOAD_LIMITS, FORBIDDEN_KEYS } from '../../src/schema/safe-json.ts';
import { Amqp10DecodeError, Amqp10UnencodableError } from './amqp10-errors.ts';

/** The longest message id, correlation id or reply-to written or taken (a longer foreign id is replaced). */
export const MAX_ID_BYTES = 1024;
/** The most application properties written or taken. */
export const MAX_PROPERTIES = 256;
/** The largest application-properties section, in bytes of names and string values. */
export const MAX_PROPERTIES_BYTES = 64 * 1024;

const JSON_TYPE = 'application/json';
const OCTETS = 'application/octet-stream';
const DATA_SECTION = 0x75;

/**
 * Header names no foreign application property becomes (compared case-insensitively): Interchange's
 * own (`x-interchange-*`), the well-known headers of `Headers` (those with an AMQP 1.0 property of
 * their own come from that property only), the receipt requests, `attempt`, and RabbitMQ's `CC`/`BCC`,
 * which would route copies of a message forwarded to AMQP 0-9-1.
 */
const RESERVED = new Set(
  ['id', 'attempt', 'timestamp', 'expiresAt', 'correlationId', 'causationId', 'replyTo', 'receiptTo', 'receiptOn', 'contentType', 'schema', 'type', 'priority', 'traceparent', 'tracestate', 'CC', 'BCC', '__proto__'].map((name) =>
    name.toLowerCase(),
  ),
);
/** Headers carried by an AMQP 1.0 property (or not at all): never written as application properties. */
const IN_PROPERTIES = new Set(['correlationId', 'contentType', 'replyTo', 'timestamp', 'expiresAt', 'attempt']);

/** Whether a header name is one only Interchange sets, so no untrusted application property may become it. */
export function isReservedHeaderName(name: string): boolean {
  const lower = name.toLowerCase();
  return lower.startsWith('x-interchange-') || RESERVED.has(lower);
}

export function isJsonContentType(contentType: string): boolean {
  return contentType === JSON_TYPE || contentType.startsWith('application/json;') || contentType.endsWith('+json') || contentType.includes('+json;');
}

const byteLength = (text: string): number => Buffer.byteLength(text);

export interface EncodeSettings {
  readonly maxBytes: number;
  /** The header `durable` flag (the endpoint's `durable`, default true). */
  readonly durable: boolean;
}

/**
 * Message → AMQP 1.0 message (rhea's shape): `message_id` = id, `correlation_id`, `content_type`,
 * `reply_to`, `creation_time` = timestamp, `absolute_expiry_time` = expiresAt (and the header `ttl`
 * = the time left, at least 1 ms, so the broker expires it), header `durable`; every other header as
 * an application property (`attempt` never: it describes one delivery). The body is ONE data
 * section: a Buffer as is (content type `application/octet-stream` unless one is set), a string with
 * a non-JSON content type as UTF-8, anything else as JSON (content type `application/json` unless a
 * `+json` one is set).
 *
 * Throws `Amqp10UnencodableError` (permanent, this message alone) when the id is not a non-empty
 * string of at most `MAX_ID_BYTES`, correlationId/replyTo/contentType are not strings, timestamp or
 * expiresAt are not finite numbers, a header value is not a string, finite number or boolean, there
 * are more than `MAX_PROPERTIES` properties or more than `MAX_PROPERTIES_BYTES`, the body cannot be
 * serialised, or body and properties exceed `maxBytes`.
 * @example encodeMessage(createMessage({ orderId: 42 }), { maxBytes: 8 << 20, durable: true }) // { message_id: '…', content_type: 'application/json', body: <data section> }
 */
export function encodeMessage(message: Message, { maxBytes, durable }: EncodeSettings): AmqpMessage {
  const rawId: unknown = message.id;
  if (typeof rawId !== 'string' || rawId === '') throw new Amqp10UnencodableError(String(rawId), 'the id must be a non-empty string');
  const id = rawId;
  if (Buffer.byteLength(id) > MAX_ID_BYTES) throw new Amqp10UnencodableError(id, `the id is over ${MAX_ID_BYTES} bytes`);
  const headers = message.headers;
  const out: AmqpMessage = { message_id: id, durable, body: undefined };
  const text = (name: 'correlationId' | 'replyTo' | 'contentType'): string | undefined => {
    const value: unknown = headers[name];
    if (value === undefined) return undefined;
    if (typeof value !== 'string') throw new Amqp10UnencodableError(id, `header ${name} must be a string`);
    if (Buffer.byteLength(value) > MAX_ID_BYTES) throw new Amqp10UnencodableError(id, `header ${name} is over ${MAX_ID_BYTES} bytes`);
    return value;
  };
  const instant = (name: 'timestamp' | 'expiresAt'): number | undefined => {
    const value: unknown = headers[name];
    if (value === undefined) return undefined;
    if (typeof value !== 'number' || !Number.isFinite(value)) throw new Amqp10UnencodableError(id, `header ${name} must be a finite number (epoch ms)`);
    return value;
  };
  const correlationId = text('correlationId');
  if (correlationId !== undefined) out.correlation_id = correlationId;
  const replyTo = text('replyTo');
  if (replyTo !== undefined) out.reply_to = replyTo;
  const timestamp = instant('timestamp');
  if (timestamp !== undefined) out.creation_time = new Date(timestamp);
  const expiresAt = instant('expiresAt');
  if (expiresAt !== undefined) {
    out.absolute_expiry_time = new Date(expiresAt);
    out.ttl = Math.max(1, Math.min(0xffffffff, Math.round(expiresAt - Date.now())));
  }
  const declared = text('contentType');
  const body = message.body;
  let bytes: Buffer;
  let contentType = declared;
  if (Buffer.isBuffer(body)) {
    bytes = body;
    contentType ??= OCTETS;
  } else if (body instanceof Uint8Array) {
    bytes = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
    contentType ??= OCTETS;
  } else if (declared === undefined || isJsonContentType(declared)) {
    let json: string | undefined;
    try {
      json = JSON.stringify(body);
    } catch (cause) {
      throw new Amqp10UnencodableError(id, `the body cannot be serialised as JSON (${toError(cause).message})`, { cause });
    }
    bytes = Buffer.from(json ?? 'null');
    contentType ??= JSON_TYPE;
  } else if (typeof body === 'string') {
    bytes = Buffer.from(body);
  } else {
    throw new Amqp10UnencodableError(id, `the body is a ${typeof body}; content type '${declared.slice(0, 64)}' needs a string or Buffer body`);
  }
  out.content_type = contentType;
  let properties: Record<string, HeaderValue> | undefined;
  let count = 0;
  let size = 0;
  for (const name in headers) {
    const value: unknown = headers[name];
    if (value === undefined || IN_PROPERTIES.has(name)) continue;
    if (typeof value === 'number') {
      if (!Number.isFinite(value)) throw new Amqp10UnencodableError(id, `header '${name.slice(0, 64)}' is ${value}; header numbers must be finite`);
      size += 8;
    } else if (typeof value === 'string') size += byteLength(value);
    else if (typeof value === 'boolean') size += 1;
    else throw new Amqp10UnencodableError(id, `header '${name.slice(0, 64)}' is ${value === null ? 'null' : `a ${typeof value}`}; header values are strings, numbers or booleans`);
    size += byteLength(name);
    count += 1;
    (properties ??= {})[name] = value;
  }
  if (count > MAX_PROPERTIES) throw new Amqp10UnencodableError(id, `${count} application properties; the limit is ${MAX_PROPERTIES}`);
  if (size > MAX_PROPERTIES_BYTES) throw new Amqp10UnencodableError(id, `the application properties are ${size} bytes; the limit is ${MAX_PROPERTIES_BYTES}`);
  if (bytes.length + size > maxBytes) throw new Amqp10UnencodableError(id, `body and properties are ${bytes.length + size} bytes; maxMessageBytes is ${maxBytes}`);
  if (properties !== undefined) out.application_properties = properties;
  out.body = rhea.message.data_section(bytes);
  return out;
}

/** What a consumer takes of a message besides its body (the endpoint's `headers` and `properties`). */
export interface InboundProperties {
  /**
   * `all`: only trusted Interchange peers write the address — every application property becomes a
   * header (`x-interchange-*` and `attempt` never). `none` (default): only those `allowed` names.
   */
  readonly headers: 'all' | 'none';
  readonly allowed: ReadonlySet<string> | undefined;
}

/** Where a decoded message came from and how far it got. */
export interface MessageOrigin {
  readonly address: string;
  readonly attempt: number;
  readonly maxBytes: number;
}

interface Section {
  readonly typecode: number;
  readonly content: unknown;
}

const isSection = (value: unknown): value is Section =>
  typeof value === 'object' && value !== null && typeof (value as { typecode?: unknown }).typecode === 'number' && 'content' in value && !Array.isArray(value);

/**
 * AMQP 1.0 message (as rhea decodes it) → Message, tolerant of foreign producers.
 *
 * Always taken (validated): `message_id` → id (a string as is; a number, uuid or binary id as text;
 * missing or over `MAX_ID_BYTES` → `<address>/<random uuid>`, so such a message has no stable id),
 * `correlation_id` → correlationId, `content_type`, `reply_to`, `creation_time` → timestamp,
 * `absolute_expiry_time` → expiresAt. Application properties per `inbound` (string, finite number and
 * boolean values only; at most `MAX_PROPERTIES`, `MAX_PROPERTIES_BYTES`). `attempt` is the consumer's.
 *
 * Body: data section(s) → bytes, then by content type: JSON → parsed, `text/*` → string, anything
 * else (none included) → Buffer; an amqp-value → its value and an amqp-sequence → an array, both copied
 * into plain data (see `plainBody`). Throws `Amqp10DecodeError` when a body is over `maxBytes`, an
 * amqp-value/sequence body breaks `plainBody`'s rules, the properties break their bounds,
 * or a body does not parse though its content type says JSON.
 */
export function decodeMessage(raw: AmqpMessage, origin: MessageOrigin, inbound: InboundProperties): Message {
  const headers: Record<string, HeaderValue | undefined> = {};
  const properties = raw.application_properties as Record<string, unknown> | undefined;
  if (properties !== undefined && properties !== null) readProperties(properties, headers, origin, inbound);
  const correlationId = idText(raw.correlation_id);
  if (correlationId !== undefined) headers.correlationId = correlationId;
  const contentType = typeof raw.content_type === 'string' && raw.content_type.length <= 256 ? raw.content_type : undefined;
  if (contentType !== undefined) headers.contentType = contentType;
  if (typeof raw.reply_to === 'string' && Buffer.byteLength(raw.reply_to) <= MAX_ID_BYTES) headers.replyTo = raw.reply_to;
  const created = instant(raw.creation_time);
  if (created !== undefined) headers.timestamp = created;
  const expires = instant(raw.absolute_expiry_time);
  if (expires !== undefined) headers.expiresAt = expires;
  headers.attempt = origin.attempt;
  const id = idText(raw.message_id) ?? `${origin.address}/${randomUUID()}`;
  return { id, headers: headers as Headers, body: decodeBody(raw.body, contentType, origin) };
}

function decodeBody(body: unknown, contentType: string | undefined, origin: MessageOrigin): unknown {
  let bytes: Buffer | undefined;
  if (isSection(body)) {
    if (body.typecode === DATA_SECTION && Buffer.isBuffer(body.content)) bytes = body.content;
    else return plainBody(body.content, origin);
  } else if (Array.isArray(body) && body.length > 0 && body.every((part) => isSection(part) && part.typecode === DATA_SECTION && Buffer.isBuffer(part.content))) {
    bytes = Buffer.concat(body.map((part) => (part as Section).content as Buffer));
  } else {
    return plainBody(body, origin);
  }
  if (bytes.length > origin.maxBytes) throw new Amqp10DecodeError(`a message of '${origin.address}' has a ${bytes.length}-byte body; maxMessageBytes is ${origin.maxBytes}`);
  if (contentType === undefined) return bytes;
  if (isJsonContentType(contentType)) {
    try {
      return JSON.parse(bytes.toString());
    } catch (cause) {
      throw new Amqp10DecodeError(`a message of '${origin.address}': the body is not valid JSON though its content type is '${contentType.slice(0, 64)}'`, { cause });
    }
  }
  return contentType.startsWith('text/') ? bytes.toString() : bytes;
}

/** The deepest nesting of lists and maps taken in an amqp-value or amqp-sequence body (the house JSON limit). */
export const MAX_BODY_DEPTH = DEFAULT_PAYLOAD_LIMITS.maxDepth;
/** The most list and map entries taken in an amqp-value or amqp-sequence body. */
export const MAX_BODY_ENTRIES = 100_000;

// rhea's class of typed and described values (not exported by name)
const Typed = Object.getPrototypeOf(rhea.types.wrap_string('')).constructor as abstract new (...args: never[]) => { readonly value: unknown };

/**
 * An amqp-value or amqp-sequence body (as rhea decoded it) → plain data, built from own keys only:
 * maps → objects (null prototype never leaks: a fresh `{}` per map), lists/arrays → arrays, binary →
 * Buffer, timestamp → epoch ms, a described value → its value (descriptor dropped), bigint/ulong →
 * number when safe, else its decimal string, non-finite numbers → null (as JSON has them). Throws
 * `Amqp10DecodeError` when it nests deeper than `MAX_BODY_DEPTH`, holds more than `MAX_BODY_ENTRIES`
 * entries or about `maxBytes` bytes, has a `__proto__` or `constructor` key (`FORBIDDEN_KEYS`; a map key
 * `__proto__` reaches rhea as the object's prototype), or any other object (a known composite).
 */
function plainBody(body: unknown, origin: MessageOrigin): unknown {
  const budget = { entries: 0, bytes: 0 };
  const fail = (why: string): never => {
    throw new Amqp10DecodeError(`a message of '${origin.address}': the amqp-value body ${why}`);
  };
  const count = (entries: number, bytes: number): void => {
    budget.entries += entries;
    budget.bytes += bytes;
    if (budget.entries > MAX_BODY_ENTRIES) fail(`has over ${MAX_BODY_ENTRIES} entries`);
    if (budget.bytes > origin.maxBytes) fail(`is over maxMessageBytes (${origin.maxBytes})`);
  };
  const plain = (value: unknown, depth: number): unknown => {
    if (value === null || value === undefined) return null;
    switch (typeof value) {
      case 'string':
        count(0, Buffer.byteLength(value));
        return value;
      case 'number':
        count(0, 8);
        return Number.isFinite(value) ? value : null;
      case 'boolean':
        count(0, 1);
        return value;
      case 'bigint':
        count(0, 8);
        return value <= BigInt(Number.MAX_SAFE_INTEGER) && value >= BigInt(Number.MIN_SAFE_INTEGER) ? Number(value) : value.toString();
      case 'object':
        break;
      default:
        return fail(`holds a ${typeof value}`);
    }
    if (Buffer.isBuffer(value)) {
      count(0, value.length);
      return value;
    }
    if (value instanceof Date) {
      count(0, 8);
      return Number.isFinite(value.getTime()) ? value.getTime() : null;
    }
    if (value instanceof Typed) return plain(value.value, depth);
    if (depth >= MAX_BODY_DEPTH) fail(`nests deeper than ${MAX_BODY_DEPTH}`);
    if (Array.isArray(value)) {
      count(value.length, 0);
      return value.map((item: unknown) => plain(item, depth + 1));
    }
    if (Object.getPrototypeOf(value) !== Object.prototype) fail(`holds a map with a '__proto__' key or a described type`);
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(value)) {
      if (FORBIDDEN_KEYS.includes(key)) fail(`holds a map with a '${key}' key`);
      count(1, Buffer.byteLength(key));
      out[key] = plain((value as Record<string, unknown>)[key], depth + 1);
    }
    return out;
  };
  return plain(body, 0);
}

function readProperties(properties: Record<string, unknown>, into: Record<string, HeaderValue | undefined>, origin: MessageOrigin, inbound: InboundProperties): void {
  const trusted = inbound.headers === 'all';
  let count = 0;
  let size = 0;
  for (const name in properties) {
    count += 1;
    const value = properties[name];
    size += byteLength(name) + (typeof value === 'string' ? byteLength(value) : 8);
    if (name === 'attempt' || name === '__proto__' || name.toLowerCase().startsWith('x-interchange-')) continue;
    if (trusted ? IN_PROPERTIES.has(name) : inbound.allowed?.has(name) !== true || isReservedHeaderName(name)) continue;
    if (typeof value === 'string' || typeof value === 'boolean' || (typeof value === 'number' && Number.isFinite(value))) into[name] = value;
    else if (typeof value === 'bigint' && value <= BigInt(Number.MAX_SAFE_INTEGER) && value >= BigInt(Number.MIN_SAFE_INTEGER)) into[name] = Number(value);
  }
  if (count > MAX_PROPERTIES) throw new Amqp10DecodeError(`a message of '${origin.address}' has ${count} application properties; the limit is ${MAX_PROPERTIES}`);
  if (size > MAX_PROPERTIES_BYTES) throw new Amqp10DecodeError(`a message of '${origin.address}' has ${size} bytes of application properties; the limit is ${MAX_PROPERTIES_BYTES}`);
}

/** An AMQP 1.0 message id of any of its types as text: string as is, number/ulong as digits, binary/uuid as hex. */
export function idText(value: unknown): string | undefined {
  let text: string | undefined;
  if (typeof value === 'string') text = value;
  else if (typeof value === 'number' || typeof value === 'bigint') text = String(value);
  else if (Buffer.isBuffer(value)) text = value.length === 16 ? rhea.uuid_to_string(value) : value.toString('hex');
  if (text === undefined || text === '' || Buffer.byteLength(text) > MAX_ID_BYTES) return undefined;
  return text;
}

function instant(value: unknown): number | undefined {
  if (value instanceof Date) {
    const ms = value.getTime();
    return Number.isFinite(ms) ? ms : undefined;
  }
  return typeof value === 'number' && Number.isFinite(value) ? value : undefined;
}
