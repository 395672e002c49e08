import type { HeaderValue, Headers, Message } from '../../src/core/index.ts';
import { PgQueueUndecodableError, PgQueueUnencodableError } from './pg-queue-errors.ts';

/** A message as `publish` stores it: the columns of one queue row. */
export interface PgQueueRowValues {
  readonly id: string;
  /** The headers as a JSON object text (`attempt` left out: the row's `deliveries` stands for it). */
  readonly headers: string;
  /** The body as JSON text, or null for a bytes body. */
  readonly body: string | null;
  /** The body as bytes, or null for a JSON body. */
  readonly bytes: Uint8Array | null;
}

/** A claimed row, as the consumer reads it (the body is left out by the claim when the row is over the size limit). */
export interface PgQueueClaimedRow {
  readonly id: string;
  readonly message_id: unknown;
  readonly headers: unknown;
  readonly body: unknown;
  readonly body_bytes: Uint8Array | null;
  /** Bytes of headers and body as stored. */
  readonly size: number | string;
  /** Claims of this row so far, this one included: the `attempt`. */
  readonly deliveries: number;
}

/** Longest message id a queue takes, in characters. */
export const MAX_MESSAGE_ID_LENGTH = 1024;

/**
 * Message → row values. Each message on its own (see `publishEach`): throws `PgQueueUnencodableError`
 * for an id that is empty or over 1,024 characters, a header value that is not a string, a finite
 * number or a boolean, a body that is neither bytes nor JSON-serialisable, or headers and body over
 * `maxBytes` together.
 * @example encodePgQueueMessage(createMessage({ n: 1 }), 16 * 1024 * 1024)
 */
export function encodePgQueueMessage(message: Message, maxBytes: number): PgQueueRowValues {
  const { id } = message;
  if (typeof id !== 'string' || id === '' || id.length > MAX_MESSAGE_ID_LENGTH) throw new PgQueueUnencodableError(String(id).slice(0, 64), `its id must be 1 to ${MAX_MESSAGE_ID_LENGTH} characters`);
  const kept: Record<string, HeaderValue> = {};
  const headers = message.headers;
  for (const name in headers) {
    const value: unknown = headers[name];
    if (value === undefined || name === 'attempt') continue;
    if (typeof value === 'number' ? !Number.isFinite(value) : typeof value !== 'string' && typeof value !== 'boolean') {
      throw new PgQueueUnencodableError(id, `header '${name.slice(0, 64)}' is ${typeof value === 'number' ? String(value) : value === null ? 'null' : `a ${typeof value}`}; header values are strings, finite numbers or booleans`);
    }
    kept[name] = value as HeaderValue;
  }
  const headerText = JSON.stringify(kept);
  let body: string | null = null;
  let bytes: Uint8Array | null = null;
  let size: number;
  if (message.body instanceof Uint8Array) {
    bytes = message.body;
    size = bytes.byteLength;
  } else {
    let text: string | undefined;
    try {
      text = JSON.stringify(message.body);
    } catch (cause) {
      throw new PgQueueUnencodableError(id, `its body is not JSON-serialisable: ${(cause as Error).message}`, { cause });
    }
    if (text === undefined) throw new PgQueueUnencodableError(id, `its body (${typeof message.body}) is neither JSON-serialisable nor bytes`);
    body = text;
    size = text.length * 3 > maxBytes ? Buffer.byteLength(text, 'utf8') : text.length;
  }
  size += headerText.length * 3 > maxBytes ? Buffer.byteLength(headerText, 'utf8') : headerText.length;
  if (size > maxBytes) throw new PgQueueUnencodableError(id, `headers and body take ${size} bytes; the limit (maxMessageBytes) is ${maxBytes}`);
  return { id, headers: headerText, body, bytes };
}

/**
 * A claimed row → the message, with `attempt` = the row's deliveries. The row is untrusted input
 * (anyone with SQL access may insert one): headers that are not a JSON object are ignored, header
 * values other than strings, finite numbers and booleans are dropped (as is a `__proto__` name), a
 * stored `attempt` is replaced. Throws `PgQueueUndecodableError` for a row without a usable message
 * id or over `maxBytes` (its body was not even read): the consumer dead-letters it.
 * @example decodePgQueueRow(row, 16 * 1024 * 1024).headers.attempt // row.deliveries
 */
export function decodePgQueueRow(row: PgQueueClaimedRow, maxBytes: number): Message {
  const id = row.message_id;
  if (typeof id !== 'string' || id === '' || id.length > MAX_MESSAGE_ID_LENGTH) throw new PgQueueUndecodableError(`row ${row.id}: message_id must be 1 to ${MAX_MESSAGE_ID_LENGTH} characters`);
  const size = Number(row.size);
  if (size > maxBytes) throw new PgQueueUndecodableError(`row ${row.id} (message ${id.slice(0, 200)}): headers and body take ${size} bytes; the limit (maxMessageBytes) is ${maxBytes}`);
  const headers: Record<string, HeaderValue> = {};
  const stored = row.headers;
  if (typeof stored === 'object' && stored !== null && !Array.isArray(stored)) {
    for (const [name, value] of Object.entries(stored)) {
      if (name === '__proto__') continue;
      if (typeof value === 'string' || typeof value === 'boolean' || (typeof value === 'number' && Number.isFinite(value))) headers[name] = value;
    }
  }
  headers.attempt = row.deliveries;
  const body: unknown = row.body_bytes === null ? (row.body ?? null) : Buffer.from(row.body_bytes.buffer, row.body_bytes.byteOffset, row.body_bytes.byteLength);
  return { id, headers: headers as Headers, body };
}
