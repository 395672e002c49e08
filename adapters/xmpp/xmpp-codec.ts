import { randomUUID } from 'node:crypto';
import type { HeaderValue, Headers, Message } from '../../src/core/index.ts';
import { xml, type XmlElement } from './xmpp-client.ts';
import { XmppDecodeError, XmppUnencodableError } from './xmpp-errors.ts';

/** The namespace of Interchange's envelope element: `<interchange xmlns="urn:interchange:0" id=… body=…>{headers JSON}</interchange>`. */
export const ENVELOPE_NS = 'urn:interchange:0';

/** Headers that describe one delivery at one destination (the adapter's): never sent by `encodeStanza`. */
const DELIVERY_HEADERS = new Set(['attempt', 'xmppFrom']);
/** Text XML 1.0 cannot carry: C0 controls but TAB/LF/CR, U+FFFE/U+FFFF, lone surrogates. */
// eslint-disable-next-line no-control-regex -- the control characters are what it finds
const NOT_XML = /[\x00-\x08\x0B\x0C\x0E-\x1F\uFFFE\uFFFF]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const MAX_ID_CHARS = 1024;
const MAX_HEADERS = 256;
const MAX_HEADER_NAME_CHARS = 256;

/** How the `<body>` text holds the message body: JSON (default), the string itself, base64 bytes. */
type BodyEncoding = 'json' | 'text' | 'base64';

export interface EncodeSettings {
  /** `interchange`: id and headers in the envelope; `none`: a plain chat message, body only. */
  readonly envelope: 'interchange' | 'none';
  readonly maxStanzaBytes: number;
  /** Set only on a message the adapter sends to its own account (nack, hand-back): the attempt it will count. */
  readonly attempt?: number;
}

/**
 * Message → `<message type="chat" to=…>`. Body: bytes → base64 (envelope `body="base64"`), a string
 * with a `text/*` content type → itself, anything else → JSON. With the envelope: the id and every
 * header but `attempt`/`xmppFrom` as a JSON object (values keep their types). Throws
 * `XmppUnencodableError` for text XML cannot carry, a body JSON cannot serialize, an id over 1,024
 * characters, a stanza over `maxStanzaBytes`.
 */
export function encodeStanza(message: Message, to: string, settings: EncodeSettings): XmlElement {
  const { text, encoding } = encodeBody(message);
  if (NOT_XML.test(text)) throw new XmppUnencodableError(`message ${message.id}: the body holds characters XML 1.0 cannot carry`);
  const children: XmlElement[] = [xml('body', {}, text)];
  if (settings.envelope === 'interchange') {
    if (message.id.length > MAX_ID_CHARS || NOT_XML.test(message.id)) throw new XmppUnencodableError(`message id '${message.id.slice(0, 64)}…' is over ${MAX_ID_CHARS} characters or not XML text`);
    const headers: Record<string, HeaderValue> = {};
    for (const name in message.headers) {
      const value = message.headers[name];
      if (value !== undefined && !DELIVERY_HEADERS.has(name)) headers[name] = value;
    }
    const json = JSON.stringify(headers);
    // JSON.stringify escapes C0 controls and lone surrogates; U+FFFE/U+FFFF it leaves
    if (NOT_XML.test(json)) throw new XmppUnencodableError(`message ${message.id}: a header holds characters XML 1.0 cannot carry`);
    const attrs: Record<string, string> = { xmlns: ENVELOPE_NS, id: message.id, body: encoding };
    if (settings.attempt !== undefined) attrs.attempt = String(settings.attempt);
    children.push(xml('interchange', attrs, json));
  }
  const stanza = xml('message', { type: 'chat', to, id: randomUUID() }, ...children);
  const size = Buffer.byteLength(stanza.toString());
  if (size > settings.maxStanzaBytes) throw new XmppUnencodableError(`message ${message.id} is a ${size}-byte stanza; the server takes at most ${settings.maxStanzaBytes} (maxStanzaBytes)`);
  return stanza;
}

function encodeBody(message: Message): { text: string; encoding: BodyEncoding } {
  const { body } = message;
  if (body instanceof Uint8Array) return { text: Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('base64'), encoding: 'base64' };
  if (typeof body === 'string' && message.headers.contentType?.startsWith('text/') === true) return { text: body, encoding: 'text' };
  try {
    return { text: JSON.stringify(body) ?? 'null', encoding: 'json' };
  } catch (error) {
    throw new XmppUnencodableError(`message ${message.id}: the body cannot be serialized as JSON: ${(error as Error).message}`, { cause: error });
  }
}

/** What the consumer knows of one inbound stanza. */
export interface InboundContext {
  /** The sender's full JID as the server stamped it (`from`). */
  readonly from: string;
  /** Its envelope is taken: the account itself or a `trust=` peer. */
  readonly trusted: boolean;
  /** The account itself sent it (a nack or a hand-back of this adapter): its `attempt` is taken too. */
  readonly own: boolean;
}

export interface Decoded {
  readonly message: Message;
  /** The envelope of a trusted sender was malformed: the message is refused at intake. */
  readonly intakeError?: XmppDecodeError;
}

/**
 * Stanza → Message, or undefined for a stanza that carries no message (no `<body>`: chat states,
 * receipts). A trusted sender's envelope gives the id, headers and body encoding (never
 * `xmppFrom`, and `attempt` only from the account itself); anyone else's message is its body alone —
 * JSON when it parses, else the text — with a fresh id. `xmppFrom` is always the server-stamped sender.
 */
export function decodeStanza(stanza: XmlElement, context: InboundContext): Decoded | undefined {
  const bodyText = stanza.getChildText('body');
  if (bodyText === null) return undefined;
  const envelope = context.trusted ? stanza.getChild('interchange', ENVELOPE_NS) : undefined;
  if (envelope === undefined) {
    return { message: { id: randomUUID(), headers: { xmppFrom: context.from }, body: parseLoose(bodyText) } };
  }
  const id = envelope.attrs.id;
  const fallback = (reason: string): Decoded => ({
    message: { id: randomUUID(), headers: { xmppFrom: context.from }, body: bodyText },
    intakeError: new XmppDecodeError(`message from ${context.from.slice(0, 200)}: ${reason}`),
  });
  if (id === undefined || id === '' || id.length > MAX_ID_CHARS) return fallback('its envelope has no valid id');
  const headers = parseHeaders(envelope.getText());
  if (headers === undefined) return fallback('its envelope headers are not a JSON object of at most 256 scalar values');
  let body: unknown;
  const encoding = envelope.attrs.body ?? 'json';
  if (encoding === 'base64') body = Buffer.from(bodyText, 'base64');
  else if (encoding === 'text') body = bodyText;
  else {
    try {
      body = JSON.parse(bodyText);
    } catch {
      return fallback('its body is not the JSON its envelope says');
    }
  }
  headers.xmppFrom = context.from;
  const attempt = context.own ? Number(envelope.attrs.attempt) : Number.NaN;
  if (Number.isInteger(attempt) && attempt > 1) headers.attempt = attempt;
  return { message: { id, headers: headers as Headers, body } };
}

function parseHeaders(text: string): Record<string, HeaderValue> | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text === '' ? '{}' : text);
  } catch {
    return undefined;
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return undefined;
  const headers: Record<string, HeaderValue> = Object.create(null) as Record<string, HeaderValue>;
  let count = 0;
  for (const [name, value] of Object.entries(parsed)) {
    if ((count += 1) > MAX_HEADERS || name.length > MAX_HEADER_NAME_CHARS) return undefined;
    if (typeof value !== 'string' && typeof value !== 'boolean' && !(typeof value === 'number' && Number.isFinite(value))) return undefined;
    if (DELIVERY_HEADERS.has(name) || name === '__proto__') continue;
    headers[name] = value;
  }
  return { ...headers };
}

function parseLoose(text: string): unknown {
  if (text === '') return text;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/**
 * Whether an element nests deeper than `maxDepth` (the element itself is depth 1). Iterative: ltx's
 * own `toString` recurses, and a hostile 140 KB stanza nested 20,000 deep overflows the stack.
 */
export function nestedDeeperThan(stanza: XmlElement, maxDepth: number): boolean {
  const stack: [XmlElement, number][] = [[stanza, 1]];
  for (let item = stack.pop(); item !== undefined; item = stack.pop()) {
    const [element, depth] = item;
    if (depth > maxDepth) return true;
    for (const child of element.children) if (typeof child !== 'string') stack.push([child, depth + 1]);
  }
  return false;
}
