import { toError, type HeaderValue, type Headers, type Message } from '../../src/core/index.ts';
import { CoapDecodeError, CoapUnencodableError } from './coap-errors.ts';

/**
 * Experimental-use option numbers (RFC 7252 §12.2: 65000–65535), elective and safe to forward, so a
 * CoAP server that does not know them ignores them: the message id, and the headers as JSON.
 */
export const ID_OPTION = '65000';
export const HEADERS_OPTION = '65004';

/** The header a consumer sets to the device's address (`host:port`); never taken from the device. */
export const PEER_HEADER = 'coapPeer';
/** The header a consumer sets to the request's path (`devices/d1/telemetry`). */
export const PATH_HEADER = 'coapPath';

/** The largest CoAP message `publish` sends: one datagram, node-coap's limit (no block-wise publish). */
export const MAX_REQUEST_BYTES = 1152;
/** The longest message id taken from a trusted peer. */
export const MAX_ID_BYTES = 255;

/** Content types with a registered CoAP Content-Format that `publish` sets (the rest travel in the headers option only). */
const CONTENT_FORMATS = new Set(['text/plain', 'application/json', 'application/octet-stream', 'application/cbor', 'application/xml', 'application/link-format', 'application/senml+json', 'application/senml+cbor', 'application/exi']);

/** Header names an allow-listed query parameter never becomes (case-insensitive), besides `x-interchange-*`. */
const RESERVED = new Set(['id', 'attempt', PEER_HEADER, PATH_HEADER, 'timestamp', 'expiresAt', 'correlationId', 'causationId', 'replyTo', 'receiptTo', 'receiptOn', 'contentType', 'schema', 'type', 'priority', 'traceparent', 'tracestate', 'CC', 'BCC', '__proto__'].map((name) => name.toLowerCase()));

/** Whether no device-chosen value may become this header. */
export function isReservedHeaderName(name: string): boolean {
  const lower = name.toLowerCase();
  return lower.startsWith('x-interchange-') || RESERVED.has(lower);
}

export function isJson(contentType: string): boolean {
  const base = contentType.split(';')[0]?.trim().toLowerCase() ?? '';
  return base === 'application/json' || base.endsWith('+json');
}

/** A message as one CoAP request: options by name (node-coap's) and the payload. */
export interface EncodedRequest {
  readonly options: Record<string, string | Buffer>;
  readonly payload: Buffer;
}

/**
 * Message → one CoAP request: the id in option 65000, the headers (`attempt` left out) as JSON in
 * option 65004, Content-Format when the content type has a registered one, the body as bytes (Buffer
 * as is, a string under a non-JSON content type as UTF-8, anything else as JSON).
 *
 * Throws `CoapUnencodableError` (permanent, this message alone) for an id that is not a non-empty string of at
 * most `MAX_ID_BYTES`, a header value that is not a string, finite number or boolean, a body that
 * cannot be serialised, or a request over `MAX_REQUEST_BYTES` with `pathBytes` of Uri-Path.
 * @example encodeRequest(createMessage({ t: 21.5 }), 20)
 */
export function encodeRequest(message: Message, pathBytes: number): EncodedRequest {
  const id: unknown = message.id;
  if (typeof id !== 'string' || id === '' || Buffer.byteLength(id) > MAX_ID_BYTES) throw new CoapUnencodableError(`message id must be a non-empty string of at most ${MAX_ID_BYTES} bytes`);
  const declared = message.headers.contentType;
  if (declared !== undefined && typeof declared !== 'string') throw new CoapUnencodableError(`message '${id}': header contentType must be a string`);
  const body = message.body;
  let payload: Buffer;
  if (Buffer.isBuffer(body)) payload = body;
  else if (body instanceof Uint8Array) payload = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  else if (declared === undefined || isJson(declared)) {
    let json: string | undefined;
    try {
      json = JSON.stringify(body);
    } catch (cause) {
      throw new CoapUnencodableError(`message '${id}': the body cannot be serialised as JSON (${toError(cause).message})`, { cause });
    }
    payload = Buffer.from(json ?? 'null');
  } else if (typeof body === 'string') payload = Buffer.from(body);
  else throw new CoapUnencodableError(`message '${id}': the body is a ${typeof body}; content type '${declared.slice(0, 64)}' needs a string or Buffer body`);
  const headers: Record<string, HeaderValue> = {};
  for (const name in message.headers) {
    const value: unknown = message.headers[name];
    if (value === undefined || name === 'attempt') continue;
    if (typeof value === 'number' ? !Number.isFinite(value) : typeof value !== 'string' && typeof value !== 'boolean') {
      throw new CoapUnencodableError(`message '${id}': header '${name.slice(0, 64)}' must be a string, finite number or boolean`);
    }
    headers[name] = value as HeaderValue;
  }
  const options: Record<string, string | Buffer> = { [ID_OPTION]: Buffer.from(id) };
  const json = JSON.stringify(headers);
  if (json !== '{}') options[HEADERS_OPTION] = Buffer.from(json);
  const type = (declared ?? (Buffer.isBuffer(body) || body instanceof Uint8Array ? 'application/octet-stream' : 'application/json')).split(';')[0]?.trim().toLowerCase() ?? '';
  if (CONTENT_FORMATS.has(type)) options['Content-Format'] = type;
  // header, token (8), option headers (≤ 5 bytes each, at most ~8 path segments counted), payload marker
  let size = 4 + 8 + 1 + pathBytes + 5 * 8 + payload.length;
  for (const value of Object.values(options)) size += 5 + (typeof value === 'string' ? 2 : value.length);
  if (size > MAX_REQUEST_BYTES) throw new CoapUnencodableError(`message '${id}': the request would be about ${size} bytes, over CoAP's one-datagram ${MAX_REQUEST_BYTES} (block-wise publish is not supported)`);
  return { options, payload };
}

/** What a consumer takes from a device's request. */
export interface InboundRequest {
  /** The exchange's message id: the server's random nonce and a counter (unique across restarts and Message ID wrap-around). */
  readonly id: string;
  /** `host:port` of the device. */
  readonly peer: string;
  readonly messageId: number;
  readonly token: Buffer;
  /** The Uri-Path segments. */
  readonly path: readonly string[];
  /** Captured path parameters. */
  readonly params: Readonly<Record<string, string>>;
  /** The Uri-Query options (`k=v` each). */
  readonly queries: readonly string[];
  /** Content-Format as a media type, when the request has one. */
  readonly contentFormat: string | undefined;
  /** Experimental options 65000/65004, when present. */
  readonly idOption: Buffer | undefined;
  readonly headersOption: Buffer | undefined;
  readonly payload: Buffer;
}

/** What of a request becomes headers (endpoint options `headers`, `query`). */
export interface InboundPolicy {
  /** Trust the publisher's id and headers options (Interchange peers only). */
  readonly trusted: boolean;
  /** Uri-Query parameters that become string headers. */
  readonly query: ReadonlySet<string> | undefined;
}

/**
 * A device's request → Message, untrusted unless `policy.trusted`.
 * - id: trusted and option 65000 present → it; else the exchange's (`request.id`: the same for a
 *   retransmission of the same request, different for a new one, also after a restart or Message ID wrap-around).
 * - headers: path parameters, allow-listed Uri-Query parameters (reserved names never), `contentType`
 *   (from Content-Format), `coapPeer`, `coapPath`, `attempt`. Trusted: first the 65004 JSON object's
 *   string/number/boolean values (`x-interchange-*` included); the adapter's own are set after them.
 * - body: a JSON Content-Format (or none and the payload parses) → parsed; `text/*` → string; else the bytes.
 * Throws `CoapDecodeError` when a JSON Content-Format's payload does not parse, or the trusted headers option is not a JSON object.
 */
export function decodeRequest(request: InboundRequest, policy: InboundPolicy, attempt: number): Message {
  const headers: Record<string, HeaderValue | undefined> = {};
  let id: string | undefined;
  if (policy.trusted) {
    if (request.idOption !== undefined && request.idOption.length > 0 && request.idOption.length <= MAX_ID_BYTES) id = request.idOption.toString();
    if (request.headersOption !== undefined) readHeaders(request.headersOption, headers);
  }
  for (const query of request.queries) {
    const at = query.indexOf('=');
    const name = at === -1 ? query : query.slice(0, at);
    if (policy.query?.has(name) === true && !isReservedHeaderName(name)) headers[name] = at === -1 ? '' : query.slice(at + 1);
  }
  for (const name in request.params) headers[name] = request.params[name];
  // a trusted peer's own contentType (parameters and all) wins over the Content-Format it was mapped to
  if (typeof headers.contentType !== 'string' && request.contentFormat !== undefined) headers.contentType = request.contentFormat;
  const declared = typeof headers.contentType === 'string' ? headers.contentType : undefined;
  let body: unknown;
  if (declared === undefined) {
    const text = request.payload.toString();
    try {
      body = request.payload.length === 0 ? null : JSON.parse(text);
    } catch {
      body = request.payload;
    }
  } else if (isJson(declared)) {
    try {
      body = JSON.parse(request.payload.toString());
    } catch (cause) {
      throw new CoapDecodeError(`the payload is not valid JSON though its Content-Format is '${declared.slice(0, 64)}'`, { cause });
    }
  } else if (declared.startsWith('text/')) body = request.payload.toString();
  else body = request.payload;
  headers[PEER_HEADER] = request.peer;
  headers[PATH_HEADER] = request.path.join('/');
  headers.attempt = attempt;
  return { id: id ?? request.id, headers: headers as Headers, body };
}

function readHeaders(raw: Buffer, into: Record<string, HeaderValue | undefined>): void {
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw.toString());
  } catch (cause) {
    throw new CoapDecodeError('the headers option is not JSON', { cause });
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new CoapDecodeError('the headers option is not a JSON object');
  const table = parsed as Record<string, unknown>;
  for (const name in table) {
    if (name === 'attempt' || name === PEER_HEADER || name === PATH_HEADER || name === '__proto__') continue;
    const value = table[name];
    if (typeof value === 'string' || typeof value === 'boolean' || (typeof value === 'number' && Number.isFinite(value))) into[name] = value;
  }
}
