import { randomUUID } from 'node:crypto';
import type { IClientPublishOptions, IPublishPacket } from 'mqtt';
import type { HeaderValue, Headers, Message } from '../../src/core/index.ts';

/** User property carrying the message id. */
const ID = 'message-id';
/** User property listing the non-string headers and their types (`name:n`, `name:b`), so values round-trip typed. */
const TYPES = 'ic-types';
/** Marks a MQTT 3.1.1 envelope payload. */
const ENVELOPE = '$ic';

/** Headers mapped to MQTT 5 properties rather than user properties. */
const MAPPED = new Set(['contentType', 'replyTo', 'attempt']);
/** Well-known headers that are numbers by definition (`Headers`): typed by name, not listed in `ic-types`. */
const NUMERIC = new Set(['timestamp', 'expiresAt']);

export interface EncodedPublish {
  readonly payload: Buffer | string;
  readonly properties: NonNullable<IClientPublishOptions['properties']> | undefined;
}

/**
 * What a PUBLISH carries besides the payload (endpoint option `headers`):
 * - `all` (the default): the message id and every header, so that an Interchange consumer gets the
 *   message back whole (dedupe, the inbox and tracing need the id);
 * - `none`: the payload only, as a device or any plain MQTT client publishes it — no user properties,
 *   no MQTT 3.1.1 envelope; the message's MQTT 5 standard properties (content type, expiry, response
 *   topic, correlation data) are still set, being part of the protocol. A consumer gets a fresh id.
 */
export type HeaderMapping = 'all' | 'none';

/**
 * Message → MQTT PUBLISH (payload + MQTT 5 properties).
 *
 * MQTT 5: headers → user properties (non-strings typed through `ic-types`, but for `timestamp` and
 * `expiresAt`, numbers by definition), `contentType` → Content
 * Type, `expiresAt` → Message Expiry Interval (rounded up to a second, and kept exact as a user
 * property), `replyTo` → Response Topic, `correlationId` → Correlation Data (and a user property),
 * id → user property `message-id`. `attempt` is not sent (it counts deliveries at one destination).
 * MQTT 3.1.1 has no properties: the message travels as a JSON envelope `{"$ic":1,id,headers,body}`.
 * With `headers: 'none'` only the payload (and MQTT 5's standard properties) — see `HeaderMapping`.
 * Bodies: Buffer/Uint8Array raw; strings raw when contentType is `text/*`; anything else JSON.
 */
export function encodeMessage(message: Message, protocolVersion: 4 | 5, mapping: HeaderMapping = 'all'): EncodedPublish {
  const { headers } = message;
  if (mapping === 'none') return { payload: encodeBody(message.body, headers.contentType), properties: protocolVersion === 5 ? standardProperties(headers, undefined) : undefined };
  if (protocolVersion === 4) {
    const { attempt: _attempt, ...kept } = headers;
    return { payload: JSON.stringify({ [ENVELOPE]: 1, id: message.id, headers: kept, body: encodableBody(message.body) }), properties: undefined };
  }
  const user: Record<string, string> = { [ID]: message.id };
  let types = '';
  for (const name in headers) {
    const value = headers[name];
    if (value === undefined || MAPPED.has(name)) continue;
    if (typeof value === 'string') user[name] = value;
    else if (typeof value === 'number' && NUMERIC.has(name)) user[name] = String(value);
    else {
      user[name] = String(value);
      types += `${types === '' ? '' : ','}${name}:${typeof value === 'number' ? 'n' : 'b'}`;
    }
  }
  if (types !== '') user[TYPES] = types;
  return { payload: encodeBody(message.body, headers.contentType), properties: standardProperties(headers, user) };
}

type PublishProperties = NonNullable<IClientPublishOptions['properties']>;

/** The MQTT 5 properties that have a meaning of their own (content type, response topic, …), and the user properties if any. */
function standardProperties(headers: Headers, user: Record<string, string> | undefined): PublishProperties | undefined {
  const properties: PublishProperties = user === undefined ? {} : { userProperties: user };
  if (headers.contentType !== undefined) properties.contentType = headers.contentType;
  if (headers.replyTo !== undefined) properties.responseTopic = headers.replyTo;
  if (headers.correlationId !== undefined) properties.correlationData = Buffer.from(headers.correlationId);
  if (headers.expiresAt !== undefined) properties.messageExpiryInterval = Math.max(1, Math.ceil((headers.expiresAt - Date.now()) / 1000));
  return user === undefined && Object.keys(properties).length === 0 ? undefined : properties;
}

function encodeBody(body: unknown, contentType: string | undefined): Buffer | string {
  if (Buffer.isBuffer(body)) return body;
  if (body instanceof Uint8Array) return Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  if (typeof body === 'string' && contentType?.startsWith('text/') === true) return body;
  return JSON.stringify(body) ?? 'null';
}

function encodableBody(body: unknown): unknown {
  return body instanceof Uint8Array ? { $base64: Buffer.from(body).toString('base64') } : body;
}

/**
 * MQTT PUBLISH → Message: the inverse of `encodeMessage`, tolerant of foreign publishers (no id →
 * a fresh one; a payload that is not JSON → a UTF-8 string; `application/octet-stream` → Buffer).
 * `params` (named topic parameters) become headers of the same names, over user properties of those
 * names; `mqttTopic` holds the concrete topic. `attempt` is 2 for a broker redelivery (DUP).
 * `rawPayload` (endpoint option `payload=raw`): the body is the payload's bytes as sent, unparsed —
 * for routes that parse and validate themselves and dead-letter the original bytes.
 */
export function decodeMessage(packet: IPublishPacket, params: Record<string, string> | undefined, attempt: number, rawPayload = false): Message {
  const payload = packet.payload as Buffer;
  const properties = packet.properties;
  const headers: Record<string, HeaderValue | undefined> = {};
  let id: string | undefined;
  let body: unknown;
  const user = properties?.userProperties;
  if (properties !== undefined) {
    if (properties.contentType !== undefined) headers.contentType = properties.contentType;
    if (properties.responseTopic !== undefined) headers.replyTo = properties.responseTopic;
    if (properties.correlationData !== undefined) headers.correlationId = properties.correlationData.toString();
    if (properties.messageExpiryInterval !== undefined) headers.expiresAt = Date.now() + properties.messageExpiryInterval * 1000;
  }
  if (user !== undefined) {
    const types = typedNames(user[TYPES]);
    for (const name in user) {
      const raw = user[name];
      const value = Array.isArray(raw) ? raw[raw.length - 1] : raw;
      if (value === undefined || name === TYPES) continue;
      if (name === ID) id = value;
      else {
        const type = NUMERIC.has(name) ? 'n' : types?.get(name);
        headers[name] = type === 'n' ? numberOr(value) : type === 'b' ? value === 'true' : value;
      }
    }
  }
  const contentType = headers.contentType as string | undefined;
  if (rawPayload || contentType === 'application/octet-stream') body = payload;
  else if (contentType?.startsWith('text/') === true) body = payload.toString();
  else {
    const text = payload.toString();
    try {
      body = text === '' ? text : JSON.parse(text);
    } catch {
      body = text;
    }
    if (properties === undefined && isEnvelope(body)) {
      id = body.id;
      Object.assign(headers, body.headers);
      body = decodeEnvelopeBody(body.body);
    }
  }
  if (params !== undefined) Object.assign(headers, params);
  headers.mqttTopic = packet.topic;
  if (attempt > 1) headers.attempt = attempt;
  return { id: id ?? randomUUID(), headers: headers as Headers, body };
}

/** A header sent as a number (foreign publishers may send anything: a non-number stays a string). */
function numberOr(value: string): number | string {
  const number = Number(value);
  return value !== '' && Number.isFinite(number) ? number : value;
}

function typedNames(list: string | string[] | undefined): Map<string, string> | undefined {
  if (list === undefined) return undefined;
  const types = new Map<string, string>();
  for (const entry of (Array.isArray(list) ? list.join(',') : list).split(',')) {
    const colon = entry.lastIndexOf(':');
    types.set(entry.slice(0, colon), entry.slice(colon + 1));
  }
  return types;
}

interface Envelope {
  readonly [ENVELOPE]: 1;
  readonly id: string;
  readonly headers: Headers;
  readonly body: unknown;
}

function isEnvelope(value: unknown): value is Envelope {
  return typeof value === 'object' && value !== null && (value as Record<string, unknown>)[ENVELOPE] === 1 && typeof (value as Record<string, unknown>).id === 'string';
}

function decodeEnvelopeBody(body: unknown): unknown {
  if (typeof body === 'object' && body !== null && typeof (body as Record<string, unknown>).$base64 === 'string') return Buffer.from((body as { $base64: string }).$base64, 'base64');
  return body;
}

/** A fresh message id for messages from publishers that do not send one. */
export const newMessageId = randomUUID;
