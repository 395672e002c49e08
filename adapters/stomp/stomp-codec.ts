import { randomUUID } from 'node:crypto';
import type { HeaderValue, Headers, Message } from '../../src/core/index.ts';
import { StompDecodeError, StompUnencodableError } from './stomp-errors.ts';

/** The STOMP header carrying the Interchange message id (the broker's `message-id` is its own). */
export const ID_HEADER = 'ic-id';
/** The STOMP header typing the headers that are not plain strings: JSON `{ name: 'n' | 'b' | 'e' }` (number, boolean, percent-encoded string). */
export const TYPES_HEADER = 'ic-types';
/** An Interchange header whose name the brokers act on or set themselves travels as `ic-h-<name>`. */
export const ESCAPED_PREFIX = 'ic-h-';
/** The header a consumer sets to the MESSAGE's `destination` (a topic wildcard's concrete one); never published. */
export const DESTINATION_HEADER = 'stompDestination';

/** The longest header value written (ActiveMQ refuses a header line over 10 KiB, and closes the connection). */
export const MAX_HEADER_VALUE_BYTES = 8 * 1024;
/** The most headers one message may carry (ActiveMQ takes at most 1,000 per frame). */
export const MAX_HEADERS = 500;
/** The longest message id written or taken. */
export const MAX_ID_BYTES = 1024;

/**
 * Header names STOMP or a broker gives a meaning (frame headers, JMS/AMQP properties the brokers map,
 * RabbitMQ's queue arguments), compared lower-case. An Interchange header of such a name is written as
 * `ic-h-<name>`; on a MESSAGE, a header of such a name is the broker's and never becomes a message header.
 */
const WIRE_RESERVED = new Set([
  'destination', 'receipt', 'receipt-id', 'content-length', 'content-type', 'content-encoding', 'transaction', 'persistent', 'priority', 'expires', 'expiration',
  'reply-to', 'correlation-id', 'message-id', 'amqp-message-id', 'subscription', 'ack', 'id', 'selector', 'redelivered', 'timestamp', 'type', 'user-id', 'app-id',
  'cluster-id', 'original-destination', 'originalexpiration', 'login', 'passcode', 'host', 'heart-beat', 'version', 'accept-version', 'session', 'server', 'message',
  'durable', 'auto-delete', 'exclusive', 'prefetch-count', 'x-delivery-count', 'x-queue-type', 'x-message-ttl', 'x-expires', 'x-overflow', 'x-death',
  'x-single-active-consumer', 'x-delivery-limit', 'x-initial-cluster-size', 'x-quorum-initial-group-size', 'cc', 'bcc', 'transformation',
]);
const WIRE_RESERVED_PREFIXES = ['ic-', 'jms', 'activemq', 'amq_', 'x-max-', 'x-dead-letter-', 'x-stream-', 'x-first-death-', 'x-queue-', 'x-last-death-'];

/** Whether a STOMP header name is the protocol's or a broker's (see `WIRE_RESERVED`). */
export function isWireReserved(name: string): boolean {
  const lower = name.toLowerCase();
  return WIRE_RESERVED.has(lower) || WIRE_RESERVED_PREFIXES.some((prefix) => lower.startsWith(prefix));
}

/**
 * Message header names an allow-listed foreign STOMP header never becomes (compared case-insensitively):
 * Interchange's (`x-interchange-*`), the well-known headers of `Headers`, the adapter's (`attempt`,
 * `stompDestination`) and RabbitMQ's `CC`/`BCC`, which would route copies of a message forwarded to AMQP.
 */
const RESERVED = new Set(
  ['id', 'attempt', DESTINATION_HEADER, 'timestamp', 'expiresAt', 'correlationId', 'causationId', 'replyTo', 'receiptTo', 'receiptOn', 'contentType', 'schema', 'type', 'priority', 'traceparent', 'tracestate', 'CC', 'BCC', '__proto__'].map((name) => name.toLowerCase()),
);

/** Whether only Interchange (or the broker) may set a header of this name, so no foreign STOMP header may become it. */
export function isReservedHeaderName(name: string): boolean {
  const lower = name.toLowerCase();
  return lower.startsWith('x-interchange-') || RESERVED.has(lower) || isWireReserved(name);
}

/** Printable ASCII but `:` and `\`: header names @stomp/stompjs writes unescaped and reads back unchanged. */
const HEADER_NAME = /^[!-9;-[\]-~]+$/;
/** A string value the client library would alter on the way back (it trims values, and unescapes `\` wrongly) or could not carry (control characters): sent percent-encoded, typed `e`. */
// eslint-disable-next-line no-control-regex
const NEEDS_ENCODING = /^\s|\s$|[\\\u0000-\u001f\u007f]/;
const JSON_TYPE = 'application/json';
const OCTETS = 'application/octet-stream';

function isJson(contentType: string): boolean {
  return contentType === JSON_TYPE || contentType.startsWith('application/json;') || contentType.endsWith('+json') || contentType.includes('+json;');
}

/** A SEND frame's headers (without `destination` and `receipt`) and body. */
export interface EncodedFrame {
  readonly headers: Record<string, string>;
  readonly body: Uint8Array;
}

/**
 * Message → SEND headers and body. The body: a `Buffer`/`Uint8Array` as is (`content-type`
 * `application/octet-stream` unless one is set); a string under a non-JSON content type as UTF-8;
 * anything else as JSON (`application/json` unless one is set). Always `content-length` (the client
 * library adds it), so bodies may hold NUL bytes. `persistent:true` unless `persistent` is false.
 * With `headers` `all`: `ic-id` (the id) and every header as a STOMP header of the same name (a name
 * brokers act on — `type`, `priority`, `timestamp`, `expires`… — as `ic-h-<name>`), numbers and
 * booleans and strings the client library would alter typed in `ic-types`; `attempt` and
 * `stompDestination` never (they describe one delivery). With `none`: body and content type alone.
 *
 * Throws `StompUnencodableError` (permanent, this message alone) for an id that is not a non-empty
 * string of at most 1 KiB, a header name STOMP cannot carry unescaped, a value that is not a string,
 * finite number or boolean, a value over 8 KiB, more than 500 headers, a body that cannot be
 * serialised, or body and headers over `maxBytes`.
 * @example encodeFrame(createMessage({ orderId: 42 }), { outbound: 'all', persistent: true }, 16 * 1024 * 1024)
 */
export function encodeFrame(message: Message, target: { readonly outbound: 'all' | 'none'; readonly persistent: boolean }, maxBytes: number): EncodedFrame {
  const rawId: unknown = message.id;
  if (typeof rawId !== 'string' || rawId === '') throw new StompUnencodableError(`message '${String(rawId).slice(0, 64)}': the id must be a non-empty string`);
  const id = rawId;
  if (Buffer.byteLength(id) > MAX_ID_BYTES) throw new StompUnencodableError(`message '${id.slice(0, 64)}…': the id is over ${MAX_ID_BYTES} bytes`);
  const declared: unknown = message.headers.contentType;
  if (declared !== undefined && (typeof declared !== 'string' || declared === '' || NEEDS_ENCODING.test(declared) || declared.length > 200)) {
    throw new StompUnencodableError(`message '${id.slice(0, 64)}': contentType must be a printable string of at most 200 characters`);
  }
  const { bytes, contentType } = encodeBody(id, message.body, declared);
  const headers: Record<string, string> = { 'content-type': contentType };
  if (target.persistent) headers.persistent = 'true';
  let size = bytes.length + 64;
  if (target.outbound === 'all') {
    headers[ID_HEADER] = id;
    size += id.length + 8;
    let types: Record<string, 'n' | 'b' | 'e'> | undefined;
    let count = 0;
    for (const name in message.headers) {
      const value: unknown = message.headers[name];
      if (value === undefined || name === 'attempt' || name === DESTINATION_HEADER || name === 'contentType') continue;
      if (!HEADER_NAME.test(name)) throw new StompUnencodableError(`message '${id.slice(0, 64)}': header name '${name.slice(0, 64)}' is not printable ASCII without ':' and '\\'`);
      if ((count += 1) > MAX_HEADERS) throw new StompUnencodableError(`message '${id.slice(0, 64)}' has more than ${MAX_HEADERS} headers`);
      const wireName = isWireReserved(name) ? `${ESCAPED_PREFIX}${name}` : name;
      let text: string;
      if (typeof value === 'string') {
        if (NEEDS_ENCODING.test(value)) {
          text = encodeURIComponent(value);
          (types ??= {})[wireName] = 'e';
        } else text = value;
      } else if (typeof value === 'number' && Number.isFinite(value)) {
        text = String(value);
        (types ??= {})[wireName] = 'n';
      } else if (typeof value === 'boolean') {
        text = String(value);
        (types ??= {})[wireName] = 'b';
      } else {
        throw new StompUnencodableError(`message '${id.slice(0, 64)}': header '${name.slice(0, 64)}' is ${value === null ? 'null' : typeof value === 'number' ? String(value) : `a ${typeof value}`}; header values are strings, finite numbers or booleans`);
      }
      const valueBytes = text.length * 3 > MAX_HEADER_VALUE_BYTES ? Buffer.byteLength(text) : text.length;
      if (valueBytes > MAX_HEADER_VALUE_BYTES) throw new StompUnencodableError(`message '${id.slice(0, 64)}': header '${name.slice(0, 64)}' is ${valueBytes} bytes; the limit is ${MAX_HEADER_VALUE_BYTES}`);
      headers[wireName] = text;
      size += wireName.length + valueBytes + 2;
    }
    if (types !== undefined) {
      const json = JSON.stringify(types);
      if (json.length > MAX_HEADER_VALUE_BYTES) throw new StompUnencodableError(`message '${id.slice(0, 64)}': too many typed headers (${json.length} bytes of ${TYPES_HEADER})`);
      headers[TYPES_HEADER] = json;
      size += json.length;
    }
  }
  if (size > maxBytes) throw new StompUnencodableError(`message '${id.slice(0, 64)}': body and headers are about ${size} bytes; maxMessageBytes is ${maxBytes}`);
  return { headers, body: bytes };
}

function encodeBody(id: string, body: unknown, declared: string | undefined): { bytes: Uint8Array; contentType: string } {
  if (body instanceof Uint8Array) return { bytes: body, contentType: declared ?? OCTETS };
  if (declared !== undefined && !isJson(declared)) {
    if (typeof body === 'string') return { bytes: Buffer.from(body), contentType: declared };
    throw new StompUnencodableError(`message '${id.slice(0, 64)}': the body is a ${body === null ? 'null' : typeof body}; content type '${declared.slice(0, 64)}' needs a string or Buffer body`);
  }
  let json: string | undefined;
  try {
    json = JSON.stringify(body);
  } catch (cause) {
    throw new StompUnencodableError(`message '${id.slice(0, 64)}': the body cannot be serialised as JSON (${(cause as Error).message})`, { cause });
  }
  return { bytes: Buffer.from(json ?? 'null'), contentType: declared ?? JSON_TYPE };
}

/** What the adapter knows of one MESSAGE besides its headers and body. */
export interface InboundContext {
  /** Deliveries so far, this one included. */
  readonly attempt: number;
  readonly maxBytes: number;
}

/** What of a MESSAGE may become id and headers (endpoint options `headers` and `allowHeaders`). */
export interface InboundPolicy {
  readonly inbound: 'standard' | 'all' | 'none';
  readonly allowHeaders: ReadonlySet<string> | undefined;
}

const MAX_ALLOWED_VALUE_CHARS = 8 * 1024;

/**
 * MESSAGE frame → Message, tolerant of foreign producers. Never taken from the frame, whatever the
 * policy: the broker's headers (`message-id`, `subscription`, `ack`, `destination`, `redelivered`,
 * `x-delivery-count`, `content-length`… see `isWireReserved`). The adapter sets `attempt` and
 * `stompDestination`.
 * - `standard` (default: any producer): `contentType` from `content-type` (≤ 200 characters) and the
 *   headers `allowHeaders` names as strings (≤ 8 KiB; reserved names never, see `isReservedHeaderName`);
 *   the id is the broker's `message-id` (ActiveMQ's is the same on every redelivery, RabbitMQ's is per
 *   delivery), else a fresh one.
 * - `none`: the body alone (parsed as below without a content type).
 * - `all`: a trusted Interchange peer: its id (`ic-id`) and every header, typed — the inverse of
 *   `encodeFrame`; `x-interchange-*` headers included.
 * The body: JSON content type (or none) → parsed (a body that does not parse is the text when no
 * content type says JSON), `text/*` → string, anything else → Buffer.
 *
 * Throws `StompDecodeError` when body and headers are over `maxBytes`, or the body does not parse
 * though its content type is JSON (the consumer hands either to the route as `intakeError`).
 */
export function decodeFrame(frameHeaders: Readonly<Record<string, string>>, body: Uint8Array, context: InboundContext, policy: InboundPolicy): Message {
  let size = body.length;
  for (const name in frameHeaders) size += name.length + (frameHeaders[name] as string).length;
  if (size > context.maxBytes) throw new StompDecodeError(`message '${(frameHeaders['message-id'] ?? '').slice(0, 100)}' on '${(frameHeaders.destination ?? '').slice(0, 200)}' is ${size} bytes; maxMessageBytes is ${context.maxBytes}`, { oversized: true });
  const headers: Record<string, HeaderValue | undefined> = {};
  let id: string | undefined;
  const contentTypeHeader = frameHeaders['content-type'];
  const contentType = policy.inbound !== 'none' && contentTypeHeader !== undefined && contentTypeHeader !== '' && contentTypeHeader.length <= 200 ? contentTypeHeader : undefined;
  if (contentType !== undefined) headers.contentType = contentType;
  if (policy.inbound === 'all') id = readPeerHeaders(frameHeaders, headers);
  else if (policy.inbound === 'standard' && policy.allowHeaders !== undefined) {
    for (const name of policy.allowHeaders) {
      if (isReservedHeaderName(name) || !Object.hasOwn(frameHeaders, name)) continue;
      const value = frameHeaders[name] as string;
      if (value.length <= MAX_ALLOWED_VALUE_CHARS) headers[name] = value;
    }
  }
  const view = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  let decoded: unknown;
  if (contentType === undefined || isJson(contentType)) {
    const text = view.toString();
    try {
      decoded = text === '' && contentType === undefined ? text : JSON.parse(text);
    } catch (cause) {
      if (contentType !== undefined) throw new StompDecodeError(`message '${(frameHeaders['message-id'] ?? '').slice(0, 100)}': the body is not valid JSON though its content type is '${contentType.slice(0, 64)}'`, { cause });
      decoded = text;
    }
  } else if (contentType.startsWith('text/')) decoded = view.toString();
  else decoded = Buffer.from(view);
  if (id === undefined || id === '' || Buffer.byteLength(id) > MAX_ID_BYTES) {
    const brokerId = frameHeaders['message-id'];
    id = brokerId !== undefined && brokerId !== '' && brokerId.length <= MAX_ID_BYTES ? brokerId : randomUUID();
  }
  if (frameHeaders.destination !== undefined) headers[DESTINATION_HEADER] = frameHeaders.destination;
  headers.attempt = context.attempt;
  return { id, headers: headers as Headers, body: decoded };
}

/** A trusted peer's headers, typed through `ic-types`; returns its `ic-id`. */
function readPeerHeaders(frameHeaders: Readonly<Record<string, string>>, headers: Record<string, HeaderValue | undefined>): string | undefined {
  let types: Record<string, unknown> | undefined;
  const rawTypes = frameHeaders[TYPES_HEADER];
  if (rawTypes !== undefined) {
    try {
      const parsed: unknown = JSON.parse(rawTypes);
      if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)) types = parsed as Record<string, unknown>;
    } catch {
      types = undefined;
    }
  }
  for (const wireName in frameHeaders) {
    let name = wireName;
    if (wireName.startsWith(ESCAPED_PREFIX)) name = wireName.slice(ESCAPED_PREFIX.length);
    else if (isWireReserved(wireName)) continue;
    if (name === '' || name === '__proto__' || name === 'attempt' || name === DESTINATION_HEADER || name === 'contentType') continue;
    const text = frameHeaders[wireName] as string;
    const type = types !== undefined && Object.hasOwn(types, wireName) ? types[wireName] : undefined;
    headers[name] = type === 'n' ? numberOr(text) : type === 'b' ? text === 'true' : type === 'e' ? decodedOr(text) : text;
  }
  return frameHeaders[ID_HEADER];
}

function numberOr(text: string): number | string {
  const value = Number(text);
  return text.trim() === '' || !Number.isFinite(value) ? text : value;
}

function decodedOr(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}
