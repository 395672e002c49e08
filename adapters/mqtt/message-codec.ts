import { randomUUID } from 'node:crypto';
import type { IClientPublishOptions, IPublishPacket } from 'mqtt';
import type { HeaderValue, Headers, Message } from '../../src/core/index.ts';
import { MqttUnencodableError } from './mqtt-errors.ts';
import { publishPacketSize } from './publish-encoder.ts';

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
 * What a PUBLISH carries besides the payload (publish endpoint option `headers`):
 * - `all` (the default): the message id and every header, so that an Interchange consumer gets the
 *   message back whole (dedupe, the inbox and tracing need the id);
 * - `none`: the payload only, as a device or any plain MQTT client publishes it — no user properties,
 *   no MQTT 3.1.1 envelope; the message's MQTT 5 standard properties (content type, expiry, response
 *   topic, correlation data) are still set, being part of the protocol. A consumer gets a fresh id.
 *   (`headers=standard` on a publish endpoint means `none`: the standard properties and the payload.)
 * - `trace`: as `none`, plus the W3C trace context — headers `traceparent` and `tracestate` as user
 *   properties of those names (MQTT 5): what a device or foreign consumer that traces needs, and
 *   nothing else of Interchange's.
 */
export type HeaderMapping = 'all' | 'none' | 'trace';

/**
 * What of an inbound PUBLISH besides its payload may become the message's id and headers (consume
 * endpoint option `headers`). A device must never control what reaches the back end:
 * - `standard` (the default): the MQTT 5 standard properties only — Content Type → `contentType`,
 *   Message Expiry Interval → `expiresAt` (a uint32 of seconds: bounded), Response Topic → `replyTo`
 *   — plus the user properties the endpoint allow-lists (`userProperties=site,firmware`), as strings.
 *   Not correlation data, not the other user properties (no `message-id`: the id is fresh; no
 *   `ic-types`), no MQTT 3.1.1 envelope: a `{"$ic":1,…}` payload is a body like any other.
 * - `none`: nothing from the publisher but the payload (its content type does not steer decoding).
 * - `trace`: as `none`, plus the publisher's W3C trace context, so a traced device's trace goes on
 *   through the back end: user property `traceparent` → header `traceparent` only when it is exactly
 *   well-formed (version `00`, lowercase hex, ids not all zero: `isTraceparent`), and `tracestate`
 *   only beside such a `traceparent` and when it is at most 512 characters of well-formed list
 *   members (`isTracestate`); a repeated property, or anything else, is dropped. Trace context steers
 *   no behaviour: at worst a device names a trace its messages then appear in.
 * - `all`: the publisher is a trusted Interchange peer (Interchange ↔ Interchange over MQTT): its id,
 *   every user property (typed through `ic-types`), correlation data → `correlationId`, the 3.1.1
 *   envelope — the inverse of `encodeMessage` with `HeaderMapping` `all`.
 * In every mode the adapter adds the topic parameters (over anything from properties), `mqttTopic`
 * and `attempt` (never from the publisher); outside `all` no header named `x-interchange-*` comes
 * from input.
 */
export type InboundHeaders = 'standard' | 'none' | 'all' | 'trace';

/** How a consumer decodes inbound PUBLISHes (endpoint options `headers` and `userProperties`). */
export interface InboundPolicy {
  readonly headers: InboundHeaders;
  /** With `standard`: user properties that become headers of the same name (strings). Reserved names (`isReservedHeaderName`) are never taken. */
  readonly userProperties?: ReadonlySet<string>;
}

/** The consumers' default: MQTT 5 standard properties only. */
export const STANDARD_INBOUND: InboundPolicy = Object.freeze({ headers: 'standard' });

/**
 * Header names no allow-listed user property may take (compared case-insensitively): Interchange's
 * own (`x-interchange-*`), the codec's (`message-id`, `ic-types`), the well-known headers of
 * `Headers` and those the adapter sets (`mqttTopic`, `attempt`), and RabbitMQ's `CC`/`BCC`, which
 * would route copies of a message forwarded to AMQP.
 */
const RESERVED = new Set(
  [ID, TYPES, 'id', 'attempt', 'mqttTopic', 'timestamp', 'expiresAt', 'correlationId', 'causationId', 'replyTo', 'contentType', 'schema', 'type', 'priority', 'traceparent', 'tracestate', 'CC', 'BCC', '__proto__'].map(
    (name) => name.toLowerCase(),
  ),
);

/** Whether a header name is one only Interchange sets (see `RESERVED`), so no publisher's user property may become it outside `all`. */
export function isReservedHeaderName(name: string): boolean {
  const lower = name.toLowerCase();
  return lower.startsWith('x-interchange-') || RESERVED.has(lower);
}

/**
 * Message → MQTT PUBLISH (payload + MQTT 5 properties).
 *
 * MQTT 5: headers → user properties (non-strings typed through `ic-types`, but for `timestamp` and
 * `expiresAt`, numbers by definition), `contentType` → Content
 * Type, `expiresAt` → Message Expiry Interval (rounded up to a second, and kept exact as a user
 * property), `replyTo` → Response Topic, `correlationId` → Correlation Data (and a user property),
 * id → user property `message-id`. `attempt` is not sent (it counts deliveries at one destination).
 * MQTT 3.1.1 has no properties: the message travels as a JSON envelope `{"$ic":1,id,headers,body}`.
 * With `headers: 'none'` only the payload (and MQTT 5's standard properties), with `trace` also the
 * W3C trace context as user properties (MQTT 5) — see `HeaderMapping`.
 * Bodies: Buffer/Uint8Array raw; strings raw when contentType is `text/*`; anything else JSON.
 *
 * Throws `MqttUnencodableError` for a body JSON cannot serialize (a cycle, a BigInt) and an
 * `expiresAt` that is not a finite number; the wire limits of the result are `assertPublishable`'s.
 */
export function encodeMessage(message: Message, protocolVersion: 4 | 5, mapping: HeaderMapping = 'all'): EncodedPublish {
  const { headers } = message;
  if (mapping !== 'all') return { payload: encodeBody(message.body, headers.contentType), properties: protocolVersion === 5 ? standardProperties(headers, mapping === 'trace' ? traceProperties(headers) : undefined) : undefined };
  if (protocolVersion === 4) {
    const { attempt: _attempt, ...kept } = headers;
    return { payload: toJson({ [ENVELOPE]: 1, id: message.id, headers: kept, body: encodableBody(message.body) }), properties: undefined };
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

/** What a PUBLISH must fit. */
export interface PublishLimits {
  readonly protocolVersion: 4 | 5;
  readonly qos: 0 | 1 | 2;
  /** The largest packet, fixed header included: the lesser of the transport's `maxPacketBytes` and the broker's Maximum Packet Size (CONNACK). */
  readonly maxPacketBytes: number;
}

/**
 * Throws `MqttUnencodableError` unless `topic` (as `publishTopic` returns it) and `encoded` make a
 * PUBLISH a broker takes: every user property name and value, the content type and the response
 * topic a UTF-8 string of at most 65,535 bytes without control characters (NUL included) or Unicode
 * non-characters — brokers treat those as a malformed packet (Mosquitto drops the connection, and
 * mqtt.js would resend the packet after each reconnect); a response topic not empty and without
 * wildcards; correlation data of at most 65,535 bytes; the whole packet at most
 * `limits.maxPacketBytes`. A lone surrogate in a property is sent as U+FFFD, as Node.js writes any
 * string as UTF-8 (the packet stays valid).
 */
export function assertPublishable(topic: string, encoded: EncodedPublish, limits: PublishLimits): void {
  const properties = limits.protocolVersion === 5 ? encoded.properties : undefined;
  if (properties !== undefined) {
    const user = properties.userProperties;
    if (user !== undefined) {
      for (const name in user) {
        checkString(name, 'user property name', name);
        const value = user[name];
        if (Array.isArray(value)) for (const item of value) checkString(item, 'user property', name);
        else checkString(value, 'user property', name);
      }
    }
    if (properties.contentType !== undefined) checkString(properties.contentType, 'the content type (header contentType)');
    const responseTopic = properties.responseTopic;
    if (responseTopic !== undefined) {
      checkString(responseTopic, 'the response topic (header replyTo)');
      if (responseTopic === '' || responseTopic.includes('+') || responseTopic.includes('#')) throw new MqttUnencodableError(`the response topic (header replyTo) '${clip(responseTopic)}' must be a topic name: not empty, no wildcards`);
    }
    const correlation = properties.correlationData;
    if (correlation !== undefined && correlation.length > 0xffff) throw new MqttUnencodableError(`the correlation data (header correlationId) is ${correlation.length} bytes, over MQTT's 65,535`);
  }
  const size = publishPacketSize(topic, encoded.payload, limits.qos, properties as Readonly<Record<string, unknown>> | undefined, limits.protocolVersion);
  if (size < 0) throw new MqttUnencodableError('the message\'s MQTT 5 properties cannot be written as a PUBLISH');
  if (size > limits.maxPacketBytes) throw new MqttUnencodableError(`the PUBLISH would be ${size} bytes, over the maximum packet size of ${limits.maxPacketBytes} (the transport's maxPacketBytes, or the broker's Maximum Packet Size)`);
}

/** Characters brokers refuse in an MQTT string (MQTT 5 §1.5.4): C0 and C1 controls, NUL included, and Unicode non-characters. */
const REFUSED_IN_STRING = /[\p{Cc}\p{NChar}]/u;

/** Throws unless `value` is an MQTT UTF-8 string brokers take; `what` (and the property's `name`) say which in the message. */
function checkString(value: unknown, what: string, name?: string): void {
  if (typeof value === 'string') {
    // ≤ 21,845 UTF-16 units are ≤ 65,535 bytes of UTF-8 (at most 3 bytes per unit)
    if ((value.length <= 21_845 || Buffer.byteLength(value) <= 0xffff) && !REFUSED_IN_STRING.test(value)) return;
  }
  const subject = name === undefined ? what : `${what} '${clip(name)}'`;
  if (typeof value !== 'string') throw new MqttUnencodableError(`${subject} must be a string`);
  if (REFUSED_IN_STRING.test(value)) throw new MqttUnencodableError(`${subject} contains a control character or a Unicode non-character, which brokers refuse`);
  throw new MqttUnencodableError(`${subject} is ${Buffer.byteLength(value)} bytes of UTF-8, over MQTT's 65,535`);
}

/** A name or value as an error message may quote it (the publisher chose its length). */
function clip(text: string): string {
  const quoted = JSON.stringify(text.length <= 80 ? text : text.slice(0, 80)).slice(1, -1);
  return text.length <= 80 ? quoted : `${quoted}… (${text.length} chars)`;
}

/** The MQTT 5 properties that have a meaning of their own (content type, response topic, …), and the user properties if any. */
function standardProperties(headers: Headers, user: Record<string, string> | undefined): PublishProperties | undefined {
  const properties: PublishProperties = user === undefined ? {} : { userProperties: user };
  if (headers.contentType !== undefined) properties.contentType = headers.contentType;
  if (headers.replyTo !== undefined) properties.responseTopic = headers.replyTo;
  if (headers.correlationId !== undefined) properties.correlationData = Buffer.from(headers.correlationId);
  if (headers.expiresAt !== undefined) properties.messageExpiryInterval = expiryInterval(headers.expiresAt);
  return user === undefined && Object.keys(properties).length === 0 ? undefined : properties;
}

/** `expiresAt` (epoch ms) as MQTT 5's Message Expiry Interval: whole seconds, at least 1, at most the uint32 maximum (~136 years). */
function expiryInterval(expiresAt: unknown): number {
  if (typeof expiresAt !== 'number' || !Number.isFinite(expiresAt)) throw new MqttUnencodableError(`header expiresAt must be a finite number (epoch ms), got ${typeof expiresAt === 'string' ? `'${expiresAt.slice(0, 40)}'` : String(expiresAt)}`);
  return Math.min(0xffffffff, Math.max(1, Math.ceil((expiresAt - Date.now()) / 1000)));
}

function encodeBody(body: unknown, contentType: string | undefined): Buffer | string {
  if (Buffer.isBuffer(body)) return body;
  if (body instanceof Uint8Array) return Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  if (typeof body === 'string' && contentType?.startsWith('text/') === true) return body;
  return toJson(body);
}

function toJson(value: unknown): string {
  try {
    return JSON.stringify(value) ?? 'null';
  } catch (error) {
    throw new MqttUnencodableError(`the body cannot be serialized as JSON: ${(error as Error).message}`, { cause: error });
  }
}

function encodableBody(body: unknown): unknown {
  return body instanceof Uint8Array ? { $base64: Buffer.from(body).toString('base64') } : body;
}

/**
 * MQTT PUBLISH → Message, tolerant of foreign publishers (a payload that is not JSON → a UTF-8
 * string; content type `application/octet-stream` → Buffer, `text/*` → string).
 *
 * `inbound` (consume endpoint options `headers`, `userProperties`; see `InboundHeaders`) says what
 * of the PUBLISH besides its payload is taken: by default (`standard`) the MQTT 5 standard
 * properties only and a fresh id — a device controls neither the id nor any header a back end acts
 * on; `all` makes it the inverse of `encodeMessage` (id, typed user properties, correlation data,
 * 3.1.1 envelope), for a trusted Interchange peer.
 *
 * Always, whatever the mode: `params` (named topic parameters) become headers of the same names,
 * over anything from properties; `mqttTopic` holds the concrete topic; `attempt` is the adapter's
 * (set when > 1: 2 for a broker redelivery, DUP). `rawPayload` (endpoint option `payload=raw`):
 * the body is the payload's bytes as sent, unparsed — for routes that parse and validate themselves
 * and dead-letter the original bytes.
 */
export function decodeMessage(packet: IPublishPacket, params: Record<string, string> | undefined, attempt: number, rawPayload = false, inbound: InboundPolicy = STANDARD_INBOUND): Message {
  const payload = packet.payload as Buffer;
  const trust = inbound.headers;
  const properties = trust === 'none' || trust === 'trace' ? undefined : packet.properties;
  const headers: Record<string, HeaderValue | undefined> = {};
  let id: string | undefined;
  let body: unknown;
  if (properties !== undefined) {
    if (typeof properties.contentType === 'string') headers.contentType = properties.contentType;
    if (typeof properties.responseTopic === 'string') headers.replyTo = properties.responseTopic;
    const expiry = properties.messageExpiryInterval;
    if (typeof expiry === 'number' && Number.isInteger(expiry) && expiry >= 0 && expiry <= 0xffffffff) headers.expiresAt = Date.now() + expiry * 1000;
    const user = properties.userProperties;
    if (trust === 'all') {
      if (properties.correlationData !== undefined) headers.correlationId = properties.correlationData.toString();
      if (user !== undefined) id = readPeerProperties(user, headers);
    } else if (user !== undefined && inbound.userProperties !== undefined) {
      for (const name of inbound.userProperties) {
        const value = Object.hasOwn(user, name) ? lastValue(user[name]) : undefined;
        if (typeof value === 'string' && !isReservedHeaderName(name)) headers[name] = value;
      }
    }
  }
  if (trust === 'trace' && packet.properties?.userProperties !== undefined) readTraceContext(packet.properties.userProperties, headers);
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
    if (trust === 'all' && packet.properties === undefined && isEnvelope(body)) {
      id = body.id;
      for (const name in body.headers) if (name !== '__proto__' && name !== 'attempt') headers[name] = body.headers[name];
      body = decodeEnvelopeBody(body.body);
    }
  }
  if (params !== undefined) Object.assign(headers, params);
  headers.mqttTopic = packet.topic;
  if (attempt > 1) headers.attempt = attempt; // the adapter's count: never the publisher's
  return { id: id ?? randomUUID(), headers: headers as Headers, body };
}

/** A trusted peer's user properties into `headers` (typed through `ic-types`); returns its `message-id`. */
function readPeerProperties(user: Readonly<Record<string, string | string[]>>, headers: Record<string, HeaderValue | undefined>): string | undefined {
  let id: string | undefined;
  const types = typedNames(user[TYPES]);
  for (const name in user) {
    const value = lastValue(user[name]);
    if (value === undefined || name === TYPES || name === '__proto__' || name === 'attempt') continue;
    if (name === ID) id = value;
    else {
      const type = NUMERIC.has(name) ? 'n' : types?.get(name);
      headers[name] = type === 'n' ? numberOr(value) : type === 'b' ? value === 'true' : value;
    }
  }
  return id;
}

/**
 * An untrusted publisher's W3C trace context into `headers` (`headers=trace`): `traceparent` when
 * `isTraceparent`, then `tracestate` when `isTracestate`; a repeated property is ambiguous and dropped.
 */
function readTraceContext(user: Readonly<Record<string, string | string[]>>, headers: Record<string, HeaderValue | undefined>): void {
  const traceparent = Object.hasOwn(user, 'traceparent') ? user.traceparent : undefined;
  if (!isTraceparent(traceparent)) return;
  headers.traceparent = traceparent;
  const tracestate = Object.hasOwn(user, 'tracestate') ? user.tracestate : undefined;
  if (isTracestate(tracestate) && tracestate !== '') headers.tracestate = tracestate;
}

/** The W3C trace context headers as user properties (`HeaderMapping` `trace`), or undefined without a `traceparent`. */
function traceProperties(headers: Headers): Record<string, string> | undefined {
  const { traceparent, tracestate } = headers;
  if (typeof traceparent !== 'string') return undefined;
  return typeof tracestate === 'string' ? { traceparent, tracestate } : { traceparent };
}

/*
 * W3C Trace Context, read strictly. The same rules as `facade/observability/trace-context.ts`
 * (`parseTraceparent`, `isValidTracestate`), which an adapter may not import; the trace-context unit
 * test checks that both agree.
 */
const TRACEPARENT = /^00-(?!0{32})[0-9a-f]{32}-(?!0{16})[0-9a-f]{16}-[0-9a-f]{2}$/;
const TRACESTATE_MEMBER = /^(?:[a-z][_0-9a-z\-*/]{0,255}|[a-z0-9][_0-9a-z\-*/]{0,240}@[a-z][_0-9a-z\-*/]{0,13})=[\x20-\x2b\x2d-\x3c\x3e-\x7e]{0,255}[\x21-\x2b\x2d-\x3c\x3e-\x7e]$/;

/** Whether a value is a W3C `traceparent` Interchange takes from an untrusted publisher: exactly version `00`, lowercase hex, trace and span ids not all zero. */
export function isTraceparent(value: unknown): value is string {
  return typeof value === 'string' && value.length === 55 && TRACEPARENT.test(value);
}

/** Whether a value is a W3C `tracestate` Interchange passes on: at most 512 characters, at most 32 list members, each well-formed. */
export function isTracestate(value: unknown): value is string {
  if (typeof value !== 'string' || value.length > 512) return false;
  const members = value.split(',');
  return members.length <= 32 && members.every((member) => {
    const trimmed = member.replace(/^[ \t]+|[ \t]+$/g, '');
    return trimmed === '' || TRACESTATE_MEMBER.test(trimmed);
  });
}

/** A user property may repeat (MQTT 5): the last value counts. */
function lastValue(raw: string | string[] | undefined): string | undefined {
  return Array.isArray(raw) ? raw[raw.length - 1] : raw;
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
  if (typeof value !== 'object' || value === null) return false;
  const { [ENVELOPE]: mark, id, headers } = value as Record<string, unknown>;
  return mark === 1 && typeof id === 'string' && typeof headers === 'object' && headers !== null && !Array.isArray(headers);
}

function decodeEnvelopeBody(body: unknown): unknown {
  if (typeof body === 'object' && body !== null && typeof (body as Record<string, unknown>).$base64 === 'string') return Buffer.from((body as { $base64: string }).$base64, 'base64');
  return body;
}

/** A fresh message id for messages from publishers that do not send one. */
export const newMessageId = randomUUID;
