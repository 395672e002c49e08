import type { IClientOptions, IPublishPacket, MqttClient } from 'mqtt';
import mqttPacket from 'mqtt-packet';
import { limitPublishSize, type LimitedParser } from './oversize-publish.ts';
import { PUBLISH_PROPERTIES } from './publish-properties.ts';

/**
 * Incoming PUBLISH packets read from one contiguous buffer.
 *
 * mqtt-packet's parser reads every field through a `bl` buffer list (an offset search per read) and
 * formats a debug message per field even when debugging is off: ~6 µs per PUBLISH with two user
 * properties here, half of it the properties. mqtt.js creates one parser per connection through
 * `mqttPacket.parser(client.options)` and offers no option to change it, so this module wraps that
 * factory (once, on first use) and gives the parsers of the clients handed to `installPublishParser`
 * — and only those — a `_parsePublish` that takes the packet's bytes once and reads them with Buffer
 * methods: the same packet object (fields, property names, duplicate user properties as arrays,
 * prototype-less `userProperties`), unit-tested against mqtt-packet's own parser. Anything it does
 * not expect (a malformed length, an unknown property) goes to mqtt-packet's `_parsePublish`, which
 * reports it as before. Every other packet type is mqtt-packet's.
 *
 * With `maxMessageBytes` (consumer connections), a PUBLISH whose payload is larger never reaches
 * mqtt-packet whole: the parser gets it truncated and marked (see `limitPublishSize`, `oversizeOf`).
 */
export function installPublishParser(client: MqttClient, maxMessageBytes?: number): void {
  wrapParserFactory();
  fastClients.set(client.options, maxMessageBytes);
}

/** The clients' options (what mqtt.js hands the factory), with their size limit if any. */
const fastClients = new WeakMap<IClientOptions, number | undefined>();
let wrapped = false;

/** The fields of mqtt-packet 9's Parser that `_parsePublish` works with (internal, hence checked). */
interface ParserInternals {
  _parsePublish(): void;
  _list: { readonly length: number; slice(start: number, end: number): Buffer };
  _pos: number;
  packet: IPublishPacket & { length: number };
  settings: { protocolVersion?: number };
}

function wrapParserFactory(): void {
  if (wrapped) return;
  wrapped = true;
  const factory = mqttPacket.parser;
  mqttPacket.parser = function parser(options?: Parameters<typeof factory>[0]) {
    const created = factory(options);
    if (options !== undefined && fastClients.has(options as IClientOptions)) {
      installOn(created as unknown as ParserInternals);
      const limit = fastClients.get(options as IClientOptions);
      if (limit !== undefined && typeof created.parse === 'function') limitPublishSize(created as unknown as LimitedParser, limit);
    }
    return created;
  } as typeof factory;
}

function installOn(parser: ParserInternals): void {
  const original = parser._parsePublish;
  if (typeof original !== 'function' || typeof parser._list?.slice !== 'function') return;
  parser._parsePublish = function parsePublish(this: ParserInternals): void {
    if (!readPublish(this)) {
      this._pos = 0;
      original.call(this);
    }
  };
}

/** Fills `parser.packet` from the whole packet's bytes; false (nothing kept) on anything unexpected. */
function readPublish(parser: ParserInternals): boolean {
  const { packet } = parser;
  const length = packet.length;
  if (parser._list.length < length) return false;
  const bytes = parser._list.slice(0, length);
  if (length < 2) return false;
  const topicEnd = 2 + bytes.readUInt16BE(0);
  if (topicEnd > length) return false;
  let at = topicEnd;
  let messageId: number | undefined;
  if (packet.qos > 0) {
    if (at + 2 > length) return false;
    messageId = bytes.readUInt16BE(at);
    at += 2;
  }
  let properties: Record<string, unknown> | undefined;
  if (parser.settings.protocolVersion === 5) {
    const size = readVarInt(bytes, at, length);
    if (size === undefined) return false;
    at = size.next;
    const end = at + size.value;
    if (end > length) return false;
    if (end > at) {
      properties = readProperties(bytes, at, end);
      if (properties === undefined) return false;
    }
    at = end;
  }
  packet.topic = bytes.toString('utf8', 2, topicEnd);
  if (messageId !== undefined) packet.messageId = messageId;
  if (properties !== undefined) packet.properties = properties;
  packet.payload = bytes.subarray(at);
  parser._pos = length;
  return true;
}

/** The properties a PUBLISH can carry, by identifier. */
const BY_ID = new Map(PUBLISH_PROPERTIES.map((property) => [property.id, property]));

function readProperties(bytes: Buffer, start: number, end: number): Record<string, unknown> | undefined {
  const result: Record<string, unknown> = {};
  let at = start;
  while (at < end) {
    const spec = BY_ID.get(bytes[at] as number);
    if (spec === undefined) return undefined;
    at += 1;
    const { name, type } = spec;
    if (type === 'pair') {
      const key = readString(bytes, at, end);
      if (key === undefined) return undefined;
      const value = readString(bytes, key.next, end);
      if (value === undefined) return undefined;
      at = value.next;
      const pairs = (result.userProperties ??= Object.create(null)) as Record<string, string | string[]>;
      // As mqtt-packet: a repeated name collects its values in an array (after a non-empty first value).
      const existing = pairs[key.value];
      if (existing) {
        if (Array.isArray(existing)) existing.push(value.value);
        else pairs[key.value] = [existing, value.value];
      } else pairs[key.value] = value.value;
      continue;
    }
    let value: unknown;
    if (type === 'byte') {
      if (at + 1 > end) return undefined;
      value = bytes[at] !== 0;
      at += 1;
    } else if (type === 'int16') {
      if (at + 2 > end) return undefined;
      value = bytes.readUInt16BE(at);
      at += 2;
    } else if (type === 'int32') {
      if (at + 4 > end) return undefined;
      value = bytes.readUInt32BE(at);
      at += 4;
    } else if (type === 'var') {
      const number = readVarInt(bytes, at, end);
      if (number === undefined) return undefined;
      value = number.value;
      at = number.next;
    } else {
      if (at + 2 > end) return undefined;
      const next = at + 2 + bytes.readUInt16BE(at);
      if (next > end) return undefined;
      value = type === 'string' ? bytes.toString('utf8', at + 2, next) : bytes.subarray(at + 2, next);
      at = next;
    }
    // As mqtt-packet: a repeated property (several subscription identifiers) becomes an array.
    const existing = result[name];
    if (existing) result[name] = Array.isArray(existing) ? [...(existing as unknown[]), value] : [existing, value];
    else result[name] = value;
  }
  return result;
}

function readString(bytes: Buffer, at: number, end: number): { value: string; next: number } | undefined {
  if (at + 2 > end) return undefined;
  const next = at + 2 + bytes.readUInt16BE(at);
  return next > end ? undefined : { value: bytes.toString('utf8', at + 2, next), next };
}

function readVarInt(bytes: Buffer, start: number, end: number): { value: number; next: number } | undefined {
  let value = 0;
  let multiplier = 1;
  for (let at = start; at < end && at < start + 4; at += 1) {
    const byte = bytes[at] as number;
    value += (byte & 0x7f) * multiplier;
    if ((byte & 0x80) === 0) return { value, next: at + 1 };
    multiplier *= 0x80;
  }
  return undefined;
}
