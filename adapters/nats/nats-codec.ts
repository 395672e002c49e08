import { randomUUID } from 'node:crypto';
import { headers as natsHeaders, type MsgHdrs } from '@nats-io/transport-node';
import type { HeaderValue, Headers, Message } from '../../src/core/index.ts';
import { NatsUnencodableError } from './nats-errors.ts';

/**
 * The NATS header carrying the message id. JetStream de-duplicates on it, per stream, within the stream's
 * duplicate window; so that a message forwarded unchanged (same id) to another subject of the stream it
 * came from is not taken for a duplicate, a JetStream publish scopes it by subject: `<subject>:<id>` (a
 * retried publish of the same message to the same subject is still stored once). Decoding strips the scope.
 */
export const MSG_ID = 'Nats-Msg-Id';
/** The NATS header listing the non-plain headers and their types (JSON `{name: 'n' | 'b' | 'j'}`), so values round-trip typed and exact. */
const TYPES = 'ic-types';
/** Well-known headers that are numbers by definition (`Headers`): typed by name, not listed in `ic-types`. */
const NUMERIC = new Set(['timestamp', 'expiresAt']);
/** A string header value NATS would alter (trims it) or refuse (CR, LF): sent JSON-encoded, typed `j`. */
const NEEDS_JSON = /^\s|\s$|[\r\n]/;
/** Headers that describe one delivery at one destination (the adapter's): never published — a consumer sets its own. */
const DELIVERY_HEADERS = new Set(['attempt', 'natsSubject', 'natsSequence', TYPES]);
/** Printable ASCII but `:`: what NATS (and nats.js) accept as a header name. */
const HEADER_NAME = /^[!-9;-~]+$/;

/**
 * What a published NATS message carries besides its payload (publish endpoint option `headers`):
 * `all` (default) the id (`Nats-Msg-Id`) and every header, typed through `ic-types`, for an Interchange
 * consumer; `none` the payload alone, as a plain NATS client publishes (JetStream still gets
 * `Nats-Msg-Id`, for de-duplication); `trace` as `none` plus `traceparent`/`tracestate`.
 */
export type HeaderMapping = 'all' | 'none' | 'trace';

/**
 * What of an inbound NATS message besides its payload may become the message's id and headers
 * (consume endpoint option `headers`). A foreign publisher must never control what reaches the back end:
 * - `standard` (default): the content type (header `Content-Type` or `contentType`, at most 200
 *   characters) and the headers `allowHeaders` names, as strings (at most 8 KiB each; reserved names,
 *   see `isReservedHeaderName`, never). The id is the adapter's: on JetStream derived from the stream
 *   and the stream sequence (the same on every redelivery), on core subjects a fresh one.
 * - `none`: the payload alone. `trace`: as `none`, plus a well-formed W3C `traceparent`/`tracestate`.
 * - `all`: a trusted Interchange peer: its id (`Nats-Msg-Id`) and every header, typed — the inverse of
 *   `encodeMessage` with `all`.
 * In every mode `natsSubject` (the concrete subject), `natsSequence` (JetStream) and `attempt` are the
 * adapter's; no `Nats-*` header ever becomes a message header.
 */
export type InboundHeaders = 'standard' | 'none' | 'all' | 'trace';

export interface InboundPolicy {
  readonly headers: InboundHeaders;
  /** With `standard`: NATS headers taken as message headers of the same name. */
  readonly allowHeaders?: ReadonlySet<string>;
  /** The body is the payload's bytes, unparsed. */
  readonly rawPayload?: boolean;
}

/**
 * Header names no allow-listed NATS header may take (case-insensitive): Interchange's (`x-interchange-*`),
 * the codec's and the server's (`ic-types`, `Nats-*`), the well-known headers of `Headers` and those the
 * adapter sets, and RabbitMQ's `CC`/`BCC`, which would route copies of a message forwarded to AMQP.
 */
const RESERVED = new Set(
  [TYPES, 'id', 'attempt', 'natsSubject', 'natsSequence', 'timestamp', 'expiresAt', 'correlationId', 'causationId', 'replyTo', 'contentType', 'content-type', 'schema', 'type', 'priority', 'traceparent', 'tracestate', 'CC', 'BCC', '__proto__'].map((name) =>
    name.toLowerCase(),
  ),
);

/** Whether only Interchange (or the NATS server) may set a header of this name (see `RESERVED`). */
export function isReservedHeaderName(name: string): boolean {
  const lower = name.toLowerCase();
  return lower.startsWith('x-interchange-') || lower.startsWith('nats-') || RESERVED.has(lower);
}

/** An encoded message: payload, NATS headers (absent when none), and the size both take on the wire. */
export interface EncodedMessage {
  readonly payload: Uint8Array;
  readonly headers: MsgHdrs | undefined;
}

/**
 * Message → NATS payload and headers. Bodies: `Buffer`/`Uint8Array` raw; a string raw when `contentType`
 * is `text/*`; anything else JSON. `attempt`, `natsSubject` and `natsSequence` are never sent (they
 * describe one delivery at one destination: the consumer sets its own), nor any header named `Nats-*` (the server acts on those: `Nats-Rollup` purges a stream,
 * `Nats-Expected-*` refuse a publish) or `ic-types`. Throws `NatsUnencodableError` for a body JSON
 * cannot serialize, a header name NATS cannot carry, or a message over `maxPayload` bytes.
 */
export function encodeMessage(message: Message, mapping: HeaderMapping, maxPayload: number, dedupScope: string | undefined): EncodedMessage {
  const msgId = dedupScope === undefined ? message.id : `${dedupScope}:${message.id}`;
  const payload = encodeBody(message.body, message.headers.contentType);
  let hdrs: MsgHdrs | undefined;
  let headerChars = 0;
  if (mapping === 'all') {
    hdrs = natsHeaders();
    hdrs.set(MSG_ID, msgId);
    const types: Record<string, 'n' | 'b' | 'j'> = {};
    let typed = false;
    for (const name in message.headers) {
      const value = message.headers[name];
      if (value === undefined || DELIVERY_HEADERS.has(name) || (name.length > 5 && name.slice(0, 5).toLowerCase() === 'nats-')) continue;
      if (!HEADER_NAME.test(name)) throw new NatsUnencodableError(`message ${message.id}: header name '${name.slice(0, 100)}' is not printable ASCII without ':'`);
      let text: string;
      if (typeof value === 'string') {
        if (NEEDS_JSON.test(value)) {
          text = JSON.stringify(value);
          types[name] = 'j';
          typed = true;
        } else text = value;
      } else {
        text = String(value);
        if (!NUMERIC.has(name) || typeof value !== 'number') {
          types[name] = typeof value === 'number' ? 'n' : 'b';
          typed = true;
        }
      }
      hdrs.append(name, text); // names of one headers object are distinct: no replacing needed
      headerChars += name.length + text.length * 3 + 4;
    }
    if (typed) hdrs.set(TYPES, JSON.stringify(types));
  } else {
    if (mapping === 'trace') hdrs = traceHeaders(message.headers);
    if (dedupScope !== undefined) {
      hdrs ??= natsHeaders();
      hdrs.set(MSG_ID, msgId);
    }
  }
  if (hdrs !== undefined) headerChars += msgId.length * 3 + 64;
  if (payload.length + headerChars > maxPayload) {
    const total = payload.length + (hdrs === undefined ? 0 : Buffer.byteLength(hdrs.toString()));
    if (total > maxPayload) throw new NatsUnencodableError(`message ${message.id} is ${total} bytes with its headers; the server takes at most ${maxPayload} (max_payload)`);
  }
  return { payload, headers: hdrs };
}

function traceHeaders(headers: Headers): MsgHdrs | undefined {
  const { traceparent, tracestate } = headers;
  if (typeof traceparent !== 'string' || !isTraceparent(traceparent)) return undefined;
  const hdrs = natsHeaders();
  hdrs.set('traceparent', traceparent);
  if (typeof tracestate === 'string' && isTracestate(tracestate) && tracestate !== '') hdrs.set('tracestate', tracestate);
  return hdrs;
}

function encodeBody(body: unknown, contentType: string | undefined): Uint8Array {
  if (body instanceof Uint8Array) return body;
  if (typeof body === 'string' && contentType?.startsWith('text/') === true) return Buffer.from(body);
  let json: string | undefined;
  try {
    json = JSON.stringify(body);
  } catch (error) {
    throw new NatsUnencodableError(`the body cannot be serialized as JSON: ${(error as Error).message}`, { cause: error });
  }
  return Buffer.from(json ?? 'null');
}

/** What the adapter knows of one inbound message besides its payload and headers. */
export interface InboundContext {
  readonly subject: string;
  /** JetStream: the stream and the message's sequence in it (the id of an untrusted message derives from them). */
  readonly stream?: string;
  readonly sequence?: number;
  /** Deliveries so far, this one included (JetStream's delivery count); 1 on core subjects. */
  readonly attempt: number;
  /** The id when the publisher is not trusted (`standard`, `none`, `trace`) or sent none; computed only then. */
  readonly fallbackId?: () => string;
}

const MAX_ALLOWED_VALUE_CHARS = 8 * 1024;

/**
 * NATS message → Message, tolerant of foreign publishers (a payload that is not JSON → a UTF-8 string;
 * content type `application/octet-stream` → Buffer, `text/*` → string). What of the NATS headers is
 * taken: see `InboundHeaders`.
 */
export function decodeMessage(data: Uint8Array, hdrs: MsgHdrs | undefined, context: InboundContext, policy: InboundPolicy): Message {
  const headers: Record<string, HeaderValue | undefined> = {};
  let id: string | undefined;
  const trust = policy.headers;
  if (hdrs !== undefined) {
    if (trust === 'all') id = readPeerHeaders(hdrs, headers, context.subject);
    else if (trust === 'standard') readStandardHeaders(hdrs, headers, policy.allowHeaders);
    else if (trust === 'trace') readTraceContext(hdrs, headers);
  }
  const contentType = typeof headers.contentType === 'string' ? headers.contentType : undefined;
  const view = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  let body: unknown;
  if (policy.rawPayload === true || contentType === 'application/octet-stream') body = Buffer.from(view);
  else if (contentType?.startsWith('text/') === true) body = view.toString();
  else {
    const text = view.toString();
    try {
      body = text === '' ? text : JSON.parse(text);
    } catch {
      body = text;
    }
  }
  headers.natsSubject = context.subject;
  if (context.sequence !== undefined) headers.natsSequence = context.sequence;
  if (context.attempt > 1) headers.attempt = context.attempt; // the adapter's count: never the publisher's
  return { id: id ?? context.fallbackId?.() ?? randomUUID(), headers: headers as Headers, body };
}

/** A trusted peer's headers (typed through `ic-types`); returns its `Nats-Msg-Id`. */
function readPeerHeaders(hdrs: MsgHdrs, headers: Record<string, HeaderValue | undefined>, subject: string): string | undefined {
  let types: Record<string, unknown> | undefined;
  const rawTypes = hdrs.get(TYPES);
  if (rawTypes !== '') {
    try {
      const parsed: unknown = JSON.parse(rawTypes);
      if (typeof parsed === 'object' && parsed !== null) types = parsed as Record<string, unknown>;
    } catch {
      types = undefined;
    }
  }
  let id: string | undefined;
  for (const [name, values] of hdrs) {
    const value = values[values.length - 1];
    if (value === undefined) continue;
    if (name === MSG_ID) {
      id = value.startsWith(`${subject}:`) ? value.slice(subject.length + 1) : value;
      continue;
    }
    if (name === TYPES || name === '__proto__' || name === 'attempt' || name.slice(0, 5).toLowerCase() === 'nats-') continue;
    const type = NUMERIC.has(name) ? 'n' : types !== undefined && Object.hasOwn(types, name) ? types[name] : undefined;
    headers[name] = type === 'n' ? numberOr(value) : type === 'b' ? value === 'true' : type === 'j' ? jsonString(value) : value;
  }
  return id;
}

function readStandardHeaders(hdrs: MsgHdrs, headers: Record<string, HeaderValue | undefined>, allow: ReadonlySet<string> | undefined): void {
  const contentType = lastValue(hdrs, 'Content-Type') ?? lastValue(hdrs, 'contentType');
  if (contentType !== undefined && contentType.length <= 200) headers.contentType = contentType;
  if (allow === undefined) return;
  for (const name of allow) {
    if (isReservedHeaderName(name)) continue;
    const value = lastValue(hdrs, name);
    if (value !== undefined && value.length <= MAX_ALLOWED_VALUE_CHARS) headers[name] = value;
  }
}

function readTraceContext(hdrs: MsgHdrs, headers: Record<string, HeaderValue | undefined>): void {
  const traceparent = hdrs.values('traceparent');
  if (traceparent.length !== 1 || !isTraceparent(traceparent[0] as string)) return;
  headers.traceparent = traceparent[0];
  const tracestate = hdrs.values('tracestate');
  if (tracestate.length === 1 && tracestate[0] !== '' && isTracestate(tracestate[0] as string)) headers.tracestate = tracestate[0];
}

function lastValue(hdrs: MsgHdrs, name: string): string | undefined {
  const values = hdrs.values(name);
  return values[values.length - 1];
}

function numberOr(text: string): number | string {
  const value = Number(text);
  return text.trim() === '' || Number.isNaN(value) ? text : value;
}

function jsonString(text: string): string {
  try {
    const value: unknown = JSON.parse(text);
    return typeof value === 'string' ? value : text;
  } catch {
    return text;
  }
}

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}$/;
const TRACESTATE_MEMBER = /^[a-z0-9][a-z0-9_\-*/@]{0,255}=[\x20-\x2b\x2d-\x3c\x3e-\x7e]{0,255}[\x21-\x2b\x2d-\x3c\x3e-\x7e]$/;

/** A W3C `traceparent` exactly well-formed: version `00`, lowercase hex, ids not all zero. */
export function isTraceparent(value: string): boolean {
  const match = TRACEPARENT.exec(value);
  return match !== null && !/^0+$/.test(match[1] as string) && !/^0+$/.test(match[2] as string);
}

/** A W3C `tracestate` of at most 512 characters and 32 well-formed list members. */
export function isTracestate(value: string): boolean {
  if (value.length > 512) return false;
  const members = value.split(',').map((member) => member.trim()).filter((member) => member !== '');
  return members.length <= 32 && members.every((member) => TRACESTATE_MEMBER.test(member));
}
