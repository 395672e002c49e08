import { clipErrorText, DeadLetterHeaders, toError, type HeaderValue, type Headers, type Message } from '../../src/core/index.ts';
import type { InboundFields } from './redis-streams-endpoint.ts';
import { RedisStreamsDecodeError, RedisStreamsUnencodableError } from './redis-streams-errors.ts';

/** Entry field holding the message id. */
export const ID_FIELD = 'id';
/** Entry field holding the headers, a JSON object of strings, numbers and booleans. */
export const HEADERS_FIELD = 'headers';
/** Entry field holding the body's bytes. */
export const BODY_FIELD = 'body';

/** The header a consumer sets to the entry's stream id (`1700000000000-0`); never written by `publish`. */
export const ENTRY_ID_HEADER = 'redisEntryId';

/** The longest message id written or taken (a longer one in an entry is replaced by the entry's own). */
export const MAX_ID_BYTES = 1024;
/** The largest headers field, in bytes of JSON. */
export const MAX_HEADERS_BYTES = 64 * 1024;

const JSON_TYPE = 'application/json';
const OCTETS = 'application/octet-stream';

/** Dead-letter headers that hold numbers (`x-interchange-attempts`…), typed back when read from entry fields. */
const NUMERIC_DEAD_LETTER = new Set<string>([DeadLetterHeaders.attempts, DeadLetterHeaders.failedAt, DeadLetterHeaders.originalSize]);

/**
 * Header names an allow-listed field (`fields=…`) never becomes (compared case-insensitively):
 * Interchange's own (`x-interchange-*`), the well-known headers of `Headers`, the receipt requests
 * (`receiptTo`, `receiptOn`), the adapter's (`attempt`, `redisEntryId`) and RabbitMQ's `CC`/`BCC`, which would route copies of a
 * message forwarded to AMQP.
 */
const RESERVED = new Set(
  ['id', 'attempt', ENTRY_ID_HEADER, 'timestamp', 'expiresAt', 'correlationId', 'causationId', 'replyTo', 'receiptTo', 'receiptOn', 'contentType', 'schema', 'type', 'priority', 'traceparent', 'tracestate', 'CC', 'BCC', '__proto__'].map((name) => name.toLowerCase()),
);

/** Whether a header name is one only Interchange sets, so no foreign entry field may become it. */
export function isReservedHeaderName(name: string): boolean {
  const lower = name.toLowerCase();
  return lower.startsWith('x-interchange-') || RESERVED.has(lower);
}

function isJson(contentType: string): boolean {
  return contentType === JSON_TYPE || contentType.startsWith('application/json;') || contentType.endsWith('+json') || contentType.includes('+json;');
}

/**
 * Message → XADD field/value arguments: `id`, `headers` (JSON, when there are any) and `body` (a
 * Buffer as is, content type `application/octet-stream` unless one is set; a string with a non-JSON
 * content type as UTF-8; anything else as JSON). `attempt` and `redisEntryId` are not written: they
 * describe one delivery at one stream.
 *
 * Throws `RedisStreamsUnencodableError` (permanent, this message alone) when the id is not a string
 * of at most `MAX_ID_BYTES`, a header value is not a string, finite number or boolean, the headers
 * encode to more than `MAX_HEADERS_BYTES`, the body cannot be serialised (or is not a string or
 * Buffer under a non-JSON content type), or body and headers together exceed `maxBytes`.
 * @example encodeEntry(createMessage({ orderId: 42 }), 16 * 1024 * 1024) // ['id', '…', 'headers', '{"timestamp":…}', 'body', '{"orderId":42}']
 */
export function encodeEntry(message: Message, maxBytes: number): (string | Buffer)[] {
  const rawId: unknown = message.id;
  if (typeof rawId !== 'string' || rawId === '') throw new RedisStreamsUnencodableError(String(rawId), 'the id must be a non-empty string');
  const id = rawId;
  if (id.length > MAX_ID_BYTES / 3 && Buffer.byteLength(id) > MAX_ID_BYTES) throw new RedisStreamsUnencodableError(id, `the id is over ${MAX_ID_BYTES} bytes`);
  const source = message.headers;
  let declared: string | undefined;
  const contentType: unknown = source.contentType;
  if (contentType !== undefined) {
    if (typeof contentType !== 'string') throw new RedisStreamsUnencodableError(id, 'header contentType must be a string');
    declared = contentType;
  }
  const body = message.body;
  let bytes: Buffer | string;
  let addedType: string | undefined;
  if (Buffer.isBuffer(body)) {
    bytes = body;
    if (declared === undefined) addedType = OCTETS;
  } else if (body instanceof Uint8Array) {
    bytes = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
    if (declared === undefined) addedType = OCTETS;
  } else if (declared === undefined || isJson(declared)) {
    let json: string | undefined;
    try {
      json = JSON.stringify(body);
    } catch (cause) {
      throw new RedisStreamsUnencodableError(id, `the body cannot be serialised as JSON (${toError(cause).message})`, { cause });
    }
    bytes = json ?? 'null';
  } else if (typeof body === 'string') {
    bytes = body;
  } else {
    throw new RedisStreamsUnencodableError(id, `the body is a ${typeof body}; content type '${declared.slice(0, 64)}' needs a string or Buffer body`);
  }
  let headers: Record<string, HeaderValue> | undefined;
  for (const name in source) {
    const value: unknown = source[name];
    if (value === undefined || name === 'attempt' || name === ENTRY_ID_HEADER) continue;
    if (typeof value === 'number') {
      if (!Number.isFinite(value)) throw new RedisStreamsUnencodableError(id, `header '${name.slice(0, 64)}' is ${value}; header numbers must be finite`);
    } else if (typeof value !== 'string' && typeof value !== 'boolean') {
      throw new RedisStreamsUnencodableError(id, `header '${name.slice(0, 64)}' is ${value === null ? 'null' : `a ${typeof value}`}; header values are strings, numbers or booleans`);
    }
    (headers ??= {})[name] = value;
  }
  if (addedType !== undefined) (headers ??= {}).contentType = addedType;
  const fields: (string | Buffer)[] = [ID_FIELD, id];
  let size = typeof bytes === 'string' ? (bytes.length > maxBytes / 3 ? Buffer.byteLength(bytes) : bytes.length) : bytes.length;
  if (headers !== undefined) {
    const json = JSON.stringify(headers);
    const jsonBytes = json.length > MAX_HEADERS_BYTES / 3 ? Buffer.byteLength(json) : json.length;
    if (jsonBytes > MAX_HEADERS_BYTES) throw new RedisStreamsUnencodableError(id, `the headers are ${jsonBytes} bytes of JSON; the limit is ${MAX_HEADERS_BYTES}`);
    size += jsonBytes;
    fields.push(HEADERS_FIELD, json);
  }
  if (size > maxBytes) throw new RedisStreamsUnencodableError(id, `body and headers are ${size} bytes; maxMessageBytes is ${maxBytes}`);
  fields.push(BODY_FIELD, bytes);
  return fields;
}

/** Where a decoded entry came from and how far it got. */
export interface EntryOrigin {
  readonly key: string;
  readonly entryId: string;
  /** The delivery's attempt (1 for a first read). */
  readonly attempt: number;
}

/**
 * Stream entry (XREAD reply fields, as Buffers) → Message, tolerant of foreign producers.
 *
 * `inbound.headers` `all` (the endpoint said `headers=all`: only trusted Interchange peers write the
 * stream — nothing tells their entries from any other XADD client's): the `id` field (else the fallback
 * `<key>/<entry id>`), the `headers` JSON (string, number and boolean values; `attempt` and
 * `redisEntryId` ignored), top-level `x-interchange-*` fields (a dead-lettered entry's reason);
 * the body by its content type: JSON (or none) → parsed (a body that does not parse is the text when
 * no content type says JSON), `text/*` → string, else bytes. An entry without a `body` field (a
 * foreign `XADD s * orderId 42`) has its fields as the body, an object of strings.
 * `none` (the default: any producer): the id is always `<key>/<entry id>` (stable across redeliveries), the
 * only headers are the fields `inbound.fields` names (strings; reserved names never), the body as
 * above without any content type steering it.
 * Always: `attempt` and `redisEntryId` are the adapter's.
 *
 * Throws `RedisStreamsDecodeError` when the entry is over `maxBytes`, its `headers` field is not a
 * JSON object or over `MAX_HEADERS_BYTES`, or its body does not parse though its content type is JSON.
 * @example decodeEntry([Buffer.from('body'), Buffer.from('{"a":1}')], { key: 'orders', entryId: '1-0', attempt: 1 }, { headers: 'all', fields: undefined }, 1024)
 */
export function decodeEntry(fields: readonly Buffer[], origin: EntryOrigin, inbound: InboundFields, maxBytes: number): Message {
  let size = 0;
  for (const field of fields) size += field.length;
  if (size > maxBytes) throw new RedisStreamsDecodeError(`entry ${origin.entryId} of '${origin.key}' is ${size} bytes; maxMessageBytes is ${maxBytes}`);
  const trusted = inbound.headers === 'all';
  const headers: Record<string, HeaderValue | undefined> = {};
  let id: string | undefined;
  let body: Buffer | undefined;
  let rawHeaders: Buffer | undefined;
  let foreign: Record<string, string> | undefined;
  for (let index = 0; index + 1 < fields.length; index += 2) {
    const name = (fields[index] as Buffer).toString();
    const value = fields[index + 1] as Buffer;
    if (name === BODY_FIELD) body = value;
    else if (name === ID_FIELD && trusted) id = value.toString();
    else if (name === HEADERS_FIELD && trusted) rawHeaders = value;
    else {
      if (name !== ID_FIELD && name !== HEADERS_FIELD && name !== '__proto__') (foreign ??= {})[name] = value.toString();
      if (trusted && name.startsWith('x-interchange-')) {
        const text = value.toString();
        headers[name] = NUMERIC_DEAD_LETTER.has(name) && text !== '' && Number.isFinite(Number(text)) ? Number(text) : text;
      } else if (!trusted && inbound.fields?.has(name) === true && !isReservedHeaderName(name)) {
        headers[name] = value.toString();
      }
    }
  }
  if (rawHeaders !== undefined) readHeaders(rawHeaders, headers, origin);
  const contentType = trusted && typeof headers.contentType === 'string' ? headers.contentType : undefined;
  let decoded: unknown;
  if (body === undefined) decoded = foreign ?? {};
  else if (contentType === undefined || isJson(contentType)) {
    const text = body.toString();
    try {
      decoded = JSON.parse(text);
    } catch (cause) {
      if (contentType !== undefined) throw new RedisStreamsDecodeError(`entry ${origin.entryId} of '${origin.key}': the body is not valid JSON though its content type is '${contentType.slice(0, 64)}'`, { cause });
      decoded = text;
    }
  } else if (contentType.startsWith('text/')) decoded = body.toString();
  else decoded = body;
  if (id === undefined || id === '' || (id.length > MAX_ID_BYTES / 3 && Buffer.byteLength(id) > MAX_ID_BYTES)) id = `${origin.key}/${origin.entryId}`;
  headers.attempt = origin.attempt;
  headers[ENTRY_ID_HEADER] = origin.entryId;
  return { id, headers: headers as Headers, body: decoded };
}

function readHeaders(raw: Buffer, into: Record<string, HeaderValue | undefined>, origin: EntryOrigin): void {
  if (raw.length > MAX_HEADERS_BYTES) throw new RedisStreamsDecodeError(`entry ${origin.entryId} of '${origin.key}': the headers are ${raw.length} bytes; the limit is ${MAX_HEADERS_BYTES}`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw.toString());
  } catch (cause) {
    throw new RedisStreamsDecodeError(`entry ${origin.entryId} of '${origin.key}': the headers field is not JSON`, { cause });
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new RedisStreamsDecodeError(`entry ${origin.entryId} of '${origin.key}': the headers field is not a JSON object`);
  const table = parsed as Record<string, unknown>;
  for (const name in table) {
    if (name === 'attempt' || name === ENTRY_ID_HEADER || name === '__proto__') continue;
    const value = table[name];
    if (typeof value === 'string' || typeof value === 'boolean' || (typeof value === 'number' && Number.isFinite(value))) into[name] = value;
  }
}

/**
 * The fields of an entry as it goes to the dead-letter stream: the original fields as they were
 * (any `x-interchange-*` among them dropped), then `x-interchange-reason` (clipped), `-attempts`,
 * `-failed-at` (epoch ms) and `x-interchange-source` (`<key>/<entry id>`). A consumer of the
 * dead-letter stream with `headers=all` reads them back as headers.
 */
export function deadLetterFields(fields: readonly Buffer[], origin: EntryOrigin, reason: string): (string | Buffer)[] {
  const out: (string | Buffer)[] = [];
  for (let index = 0; index + 1 < fields.length; index += 2) {
    const name = fields[index] as Buffer;
    if (name.length >= 14 && name.toString().startsWith('x-interchange-')) continue;
    out.push(name, fields[index + 1] as Buffer);
  }
  out.push(DeadLetterHeaders.reason, clipErrorText(reason), DeadLetterHeaders.attempts, String(origin.attempt), DeadLetterHeaders.failedAt, String(Date.now()), DEAD_LETTER_SOURCE, `${origin.key}/${origin.entryId}`);
  return out;
}

/** The dead-letter field naming the entry a dead letter came from (`<key>/<entry id>`). */
export const DEAD_LETTER_SOURCE = 'x-interchange-source';
