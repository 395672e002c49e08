import { randomUUID } from 'node:crypto';
import { toError, type HeaderValue, type Headers, type Message } from '../../src/core/index.ts';
import type { ZeroMqInboundHeaders, ZeroMqPattern } from './zeromq-endpoint.ts';
import { ZeroMqDecodeError, ZeroMqUnencodableError } from './zeromq-errors.ts';

/** The header a pubsub consumer sets to the message's topic frame; never written by `publish`. */
export const TOPIC_HEADER = 'zmqTopic';
/** The longest message id written or taken (a longer one inbound is replaced by a fresh one). */
export const MAX_ID_BYTES = 1024;
/** The largest envelope frame (id and headers, JSON), written or taken. */
export const MAX_ENVELOPE_BYTES = 64 * 1024;
/** The longest string header value a `headers=standard` consumer takes (longer ones are dropped). */
export const MAX_HEADER_CHARS = 8 * 1024;

const JSON_TYPE = 'application/json';
const OCTETS = 'application/octet-stream';
/** Headers that describe one delivery at one socket (the adapter's): never written, never taken. */
const DELIVERY_HEADERS = new Set(['attempt', TOPIC_HEADER]);
/**
 * Header names a `headers=standard` consumer never takes from a peer (case-insensitive), as the STOMP
 * adapter's standard mode: Interchange's (`x-interchange-*`), the adapter's, the well-known headers that
 * identify, correlate, trace, expire or type a message (a peer that could set them would suppress a
 * legitimate message behind an idempotent consumer, join another's conversation or trace, expire or
 * retype it), the reply and receipt addresses (a foreign peer would direct replies and receipts
 * wherever it likes) and RabbitMQ's `CC`/`BCC`, which would route copies of a message forwarded to AMQP.
 * `contentType` is taken: it describes the body frame beside it.
 */
const RESERVED = new Set(
  [
    'id', 'attempt', TOPIC_HEADER, 'timestamp', 'expiresAt', 'correlationId', 'causationId', 'schema', 'type', 'priority', 'traceparent', 'tracestate',
    'replyTo', 'receiptTo', 'receiptOn', 'CC', 'BCC', '__proto__', 'constructor', 'prototype',
  ].map((name) => name.toLowerCase()),
);

/** Whether a `headers=standard` consumer refuses a peer's header of this name (see `RESERVED`). */
export function isReservedHeaderName(name: string): boolean {
  const lower = name.toLowerCase();
  return lower.startsWith('x-interchange-') || RESERVED.has(lower);
}

function isJson(contentType: string): boolean {
  return contentType === JSON_TYPE || contentType.startsWith('application/json;') || contentType.endsWith('+json') || contentType.includes('+json;');
}

/**
 * Message → the frames of one ZeroMQ multipart message: pipeline `[envelope, body]`, pubsub
 * `[topic, envelope, body]`. The envelope is JSON `{"id": …, "headers": {…}}` (headers without
 * `attempt` and `zmqTopic`, which describe one delivery); the body a Buffer as is (content type
 * `application/octet-stream` unless one is set), a string under a non-JSON content type as UTF-8,
 * anything else JSON.
 *
 * Throws `ZeroMqUnencodableError` (permanent, this message alone) for an id that is not a non-empty
 * string of at most `MAX_ID_BYTES`, a header value that is not a string, finite number or boolean, an
 * envelope over `MAX_ENVELOPE_BYTES`, a body that cannot be serialised, or frames over `maxBytes`.
 * @example encodeFrames(createMessage({ orderId: 42 }), 'pipeline', '', 16 * 1024 * 1024) // [<Buffer {"id":"…","headers":{…}}>, <Buffer {"orderId":42}>]
 */
export function encodeFrames(message: Message, pattern: ZeroMqPattern, topic: string, maxBytes: number): Buffer[] {
  const rawId: unknown = message.id;
  if (typeof rawId !== 'string' || rawId === '') throw new ZeroMqUnencodableError(String(rawId), 'the id must be a non-empty string');
  const id = rawId;
  if (Buffer.byteLength(id) > MAX_ID_BYTES) throw new ZeroMqUnencodableError(id, `the id is over ${MAX_ID_BYTES} bytes`);
  const source = message.headers;
  const contentType: unknown = source.contentType;
  if (contentType !== undefined && typeof contentType !== 'string') throw new ZeroMqUnencodableError(id, 'header contentType must be a string');
  const body = message.body;
  let bytes: Buffer;
  let addedType: string | undefined;
  if (Buffer.isBuffer(body)) {
    bytes = body;
    if (contentType === undefined) addedType = OCTETS;
  } else if (body instanceof Uint8Array) {
    bytes = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
    if (contentType === undefined) addedType = OCTETS;
  } else if (contentType === undefined || isJson(contentType)) {
    let json: string | undefined;
    try {
      json = JSON.stringify(body);
    } catch (cause) {
      throw new ZeroMqUnencodableError(id, `the body cannot be serialised as JSON (${toError(cause).message})`, { cause });
    }
    bytes = Buffer.from(json ?? 'null');
  } else if (typeof body === 'string') {
    bytes = Buffer.from(body);
  } else {
    throw new ZeroMqUnencodableError(id, `the body is a ${typeof body}; content type '${contentType.slice(0, 64)}' needs a string or Buffer body`);
  }
  const headers: Record<string, HeaderValue> = {};
  for (const name in source) {
    const value: unknown = source[name];
    if (value === undefined || DELIVERY_HEADERS.has(name)) continue;
    if (typeof value === 'number') {
      if (!Number.isFinite(value)) throw new ZeroMqUnencodableError(id, `header '${name.slice(0, 64)}' is ${value}; header numbers must be finite`);
    } else if (typeof value !== 'string' && typeof value !== 'boolean') {
      throw new ZeroMqUnencodableError(id, `header '${name.slice(0, 64)}' is ${value === null ? 'null' : `a ${typeof value}`}; header values are strings, numbers or booleans`);
    }
    headers[name] = value;
  }
  if (addedType !== undefined) headers.contentType = addedType;
  const envelope = Buffer.from(JSON.stringify({ id, headers }));
  if (envelope.length > MAX_ENVELOPE_BYTES) throw new ZeroMqUnencodableError(id, `id and headers are ${envelope.length} bytes of JSON; the limit is ${MAX_ENVELOPE_BYTES}`);
  const topicFrame = pattern === 'pubsub' ? Buffer.from(topic) : undefined;
  const size = envelope.length + bytes.length + (topicFrame?.length ?? 0);
  if (size > maxBytes) throw new ZeroMqUnencodableError(id, `its frames are ${size} bytes; maxMessageBytes is ${maxBytes}`);
  return topicFrame === undefined ? [envelope, bytes] : [topicFrame, envelope, bytes];
}

/** How a consumer reads inbound frames. */
export interface InboundFrames {
  readonly pattern: ZeroMqPattern;
  readonly headers: ZeroMqInboundHeaders;
}

/**
 * Inbound frames → Message, tolerant of foreign peers, whose every frame is untrusted input.
 *
 * Frames: pipeline `[envelope, body]` or `[body]` (a plain ZeroMQ peer); pubsub `[topic, envelope, body]`,
 * `[topic, body]` or `[body]`. The envelope must be a JSON object of at most `MAX_ENVELOPE_BYTES`.
 * Policy `inbound.headers`: `standard` (default: any peer that reaches the socket, untrusted) gives a
 * fresh id (never the envelope's) and takes the envelope's string, finite-number and boolean headers
 * but reserved names (`isReservedHeaderName`: id, correlation, trace, expiry, schema…), strings only up
 * to `MAX_HEADER_CHARS`; `all` (a trusted Interchange peer) the envelope's id (a non-empty string of at
 * most `MAX_ID_BYTES`, else a fresh one) and every scalar header, `x-interchange-*` included; `none`
 * the body alone, under a fresh id. Always: `attempt` and, pubsub, `zmqTopic` are the
 * adapter's. The body: JSON (or no content type) → parsed (not parsing: the text, unless a content
 * type says JSON), `text/*` → string, else bytes.
 *
 * Throws `ZeroMqDecodeError` for more frames than the pattern has, an envelope that is not a JSON
 * object or is too large, or a body that does not parse though its content type says JSON.
 */
export function decodeFrames(frames: readonly Buffer[], inbound: InboundFrames, attempt = 1): Message {
  let topic: Buffer | undefined;
  let envelope: Buffer | undefined;
  let body: Buffer;
  if (inbound.pattern === 'pubsub') {
    if (frames.length === 3) [topic, envelope, body] = frames as [Buffer, Buffer, Buffer];
    else if (frames.length === 2) [topic, body] = frames as [Buffer, Buffer];
    else if (frames.length === 1) body = frames[0] as Buffer;
    else throw new ZeroMqDecodeError(`a pubsub message has 1–3 frames ([topic,] [envelope,] body); got ${frames.length}`);
  } else if (frames.length === 2) [envelope, body] = frames as [Buffer, Buffer];
  else if (frames.length === 1) body = frames[0] as Buffer;
  else throw new ZeroMqDecodeError(`a pipeline message has 1–2 frames ([envelope,] body); got ${frames.length}`);

  const headers: Record<string, HeaderValue> = {};
  let id: string | undefined;
  if (envelope !== undefined && inbound.headers !== 'none') {
    const peerId = readEnvelope(envelope, headers, inbound.headers === 'all');
    if (inbound.headers === 'all') id = peerId;
  }
  else if (envelope !== undefined && envelope.length > MAX_ENVELOPE_BYTES) throw new ZeroMqDecodeError(`the envelope is ${envelope.length} bytes; the limit is ${MAX_ENVELOPE_BYTES}`);
  const contentType = typeof headers.contentType === 'string' ? headers.contentType : undefined;
  let decoded: unknown;
  if (contentType === undefined || isJson(contentType)) {
    const text = body.toString();
    try {
      decoded = JSON.parse(text);
    } catch (cause) {
      if (contentType !== undefined) throw new ZeroMqDecodeError(`the body is not valid JSON though its content type is '${contentType.slice(0, 64)}'`, { cause });
      decoded = text;
    }
  } else if (contentType.startsWith('text/')) decoded = body.toString();
  else decoded = body;
  headers.attempt = attempt;
  if (topic !== undefined) headers[TOPIC_HEADER] = topic.toString();
  return { id: id ?? randomUUID(), headers: headers as Headers, body: decoded };
}

/**
 * What a consumer delivers when frames do not decode (with `ZeroMqDecodeError` as the delivery's
 * `intakeError`): a fresh id, the last frame's bytes as the body, `attempt` and the topic.
 */
export function undecodedMessage(frames: readonly Buffer[], pattern: ZeroMqPattern): Message {
  const headers: Record<string, HeaderValue> = { attempt: 1, contentType: OCTETS };
  if (pattern === 'pubsub' && frames.length > 1) headers[TOPIC_HEADER] = (frames[0] as Buffer).subarray(0, 1024).toString();
  return { id: randomUUID(), headers: headers as Headers, body: frames.at(-1) ?? Buffer.alloc(0) };
}

function readEnvelope(raw: Buffer, into: Record<string, HeaderValue>, trusted: boolean): string | undefined {
  if (raw.length > MAX_ENVELOPE_BYTES) throw new ZeroMqDecodeError(`the envelope is ${raw.length} bytes; the limit is ${MAX_ENVELOPE_BYTES}`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw.toString());
  } catch (cause) {
    throw new ZeroMqDecodeError('the envelope frame is not JSON', { cause });
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new ZeroMqDecodeError('the envelope frame is not a JSON object');
  const { id, headers } = parsed as { id?: unknown; headers?: unknown };
  if (typeof headers === 'object' && headers !== null && !Array.isArray(headers)) {
    const table = headers as Record<string, unknown>;
    for (const name of Object.keys(table)) {
      if (DELIVERY_HEADERS.has(name) || name === '__proto__') continue;
      const value = table[name];
      if (!(typeof value === 'string' || typeof value === 'boolean' || (typeof value === 'number' && Number.isFinite(value)))) continue;
      if (!trusted) {
        if (isReservedHeaderName(name)) continue;
        if (name === 'contentType' && typeof value !== 'string') continue;
        if (typeof value === 'string' && value.length > MAX_HEADER_CHARS) continue;
      }
      into[name] = value;
    }
  }
  return typeof id === 'string' && id !== '' && Buffer.byteLength(id) <= MAX_ID_BYTES ? id : undefined;
}
