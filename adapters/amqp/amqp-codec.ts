import type { Options } from 'amqplib';
import { InterchangeError, type HeaderValue, type Headers, type Message } from '../../src/core/index.ts';

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

/** A body or payload that cannot be encoded or decoded: a per-message failure, never a transport failure. */
export class CodecError extends InterchangeError {
  override readonly name = 'CodecError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('AMQP_CODEC', message, options);
  }
}

const JSON_TYPE = 'application/json';

/** Well-known headers carried by AMQP properties (not repeated in the headers table). */
const PROPERTY_HEADERS = new Set(['correlationId', 'replyTo', 'contentType', 'type', 'priority', 'attempt']);

function isJson(contentType: string): boolean {
  return contentType === JSON_TYPE || contentType.startsWith('application/json;') || contentType.endsWith('+json') || contentType.includes('+json;');
}

/**
 * Message → AMQP. Body: a Buffer goes as is (`contentType` default `application/octet-stream`); a
 * string with a `text/*` (or other non-JSON) content type as UTF-8; anything else as JSON (default
 * content type `application/json`). Properties: messageId ← id, correlationId, replyTo, contentType,
 * `type` and `priority` headers, timestamp (seconds), expiration ← `expiresAt` − now; every other
 * header (and exact `timestamp`/`expiresAt` in ms) in the headers table. `attempt` is not sent: it
 * counts deliveries at one destination. Throws `CodecError`.
 */
export function encodeMessage(message: Message, persistent: boolean, mandatory: boolean): Encoded {
  const headers = message.headers;
  const declared = headers.contentType;
  const body = message.body;
  let content: Buffer;
  let contentType: string;
  if (Buffer.isBuffer(body)) {
    content = body;
    contentType = declared ?? 'application/octet-stream';
  } else if (declared === undefined || isJson(declared)) {
    content = Buffer.from(JSON.stringify(body) ?? 'null', 'utf8');
    contentType = declared ?? JSON_TYPE;
  } else if (typeof body === 'string') {
    content = Buffer.from(body, 'utf8');
    contentType = declared;
  } else {
    throw new CodecError(`message ${message.id}: content type '${declared}' needs a string or Buffer body, got ${typeof body}`);
  }
  const table: Record<string, HeaderValue> = {};
  for (const name in headers) {
    const value = headers[name];
    if (value === undefined || PROPERTY_HEADERS.has(name)) continue;
    table[name] = value;
  }
  const properties: Options.Publish = {
    messageId: message.id,
    contentType,
    persistent,
    mandatory,
    headers: table,
  };
  if (headers.correlationId !== undefined) properties.correlationId = headers.correlationId;
  if (headers.replyTo !== undefined) properties.replyTo = headers.replyTo;
  if (headers.timestamp !== undefined) properties.timestamp = Math.floor(headers.timestamp / 1000);
  if (headers.expiresAt !== undefined) properties.expiration = String(Math.max(0, Math.ceil(headers.expiresAt - Date.now())));
  const type = headers.type;
  if (typeof type === 'string') properties.type = type;
  const priority = headers.priority;
  if (typeof priority === 'number') properties.priority = priority;
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
