import type { IPublishPacket, MqttClient, Packet } from 'mqtt';
import { PUBLISH_PROPERTIES, type PropertyType, type PublishProperty } from './publish-properties.ts';

/**
 * PUBLISH packets as one buffer each.
 *
 * mqtt-packet writes a PUBLISH as ~6 stream writes plus ~5 per property (the property id alone is a
 * fresh one-byte `Buffer.from([id])` each time), and formats debug messages for each even when
 * debugging is off. With an Interchange message's two user properties (id, timestamp) that is ~20
 * writes per message and, measured here, mqtt.js sending them loses 42 % of its throughput. This
 * encoder computes the packet's length once and writes it into a single buffer: the same bytes
 * (property order = the object's key order, as mqtt-packet), one `stream.write`.
 *
 * It encodes the PUBLISH packets an MqttTransport sends (MQTT 3.1.1 and 5; the MQTT 5 properties a
 * client may put on a PUBLISH) and returns `undefined` for anything else — an unknown property, a
 * value of the wrong type, a topic alias — which mqtt-packet then writes (and rejects) as before.
 */
export function encodePublish(packet: IPublishPacket, protocolVersion: number): Buffer | undefined {
  const { topic, qos } = packet;
  if (typeof topic !== 'string' || (qos !== 0 && qos !== 1 && qos !== 2)) return undefined;
  const payload = packet.payload;
  const payloadLength = typeof payload === 'string' ? utf8Length(payload) : Buffer.isBuffer(payload) ? payload.length : -1;
  if (payloadLength < 0) return undefined;
  const messageId = packet.messageId;
  if (qos > 0 && (typeof messageId !== 'number' || messageId < 1 || messageId > 0xffff)) return undefined;

  const topicLength = utf8Length(topic);
  if (topicLength > 0xffff) return undefined;
  let propertiesLength = 0;
  const properties = protocolVersion === 5 ? packet.properties : undefined;
  if (properties !== undefined && properties !== null) {
    propertiesLength = measureProperties(properties as Readonly<Record<string, unknown>>);
    if (propertiesLength < 0) return undefined;
  }
  const remaining =
    2 + topicLength + (qos > 0 ? 2 : 0) + (protocolVersion === 5 ? varIntSize(propertiesLength) + propertiesLength : 0) + payloadLength;
  if (remaining > MAX_VAR_INT) return undefined;

  const buffer = Buffer.allocUnsafe(1 + varIntSize(remaining) + remaining);
  buffer[0] = 0x30 | (packet.dup === true ? 0x08 : 0) | (qos << 1) | (packet.retain === true ? 0x01 : 0);
  let at = writeVarInt(buffer, 1, remaining);
  at = buffer.writeUInt16BE(topicLength, at);
  at += writeUtf8(buffer, at, topic);
  if (qos > 0) at = buffer.writeUInt16BE(messageId as number, at);
  if (protocolVersion === 5) {
    at = writeVarInt(buffer, at, propertiesLength);
    if (properties !== undefined && properties !== null) at = writeProperties(buffer, at, properties as Readonly<Record<string, unknown>>);
  }
  if (typeof payload === 'string') writeUtf8(buffer, at, payload);
  else payload.copy(buffer, at);
  return buffer;
}

/**
 * The size in bytes (fixed header included) of the PUBLISH `encodePublish` writes for these fields,
 * or -1 when it would decline them (a property it does not write, a value of the wrong type or over
 * its length limit). A size past MQTT's maximum is returned as computed: the caller refuses it.
 */
export function publishPacketSize(topic: string, payload: Buffer | string, qos: 0 | 1 | 2, properties: Readonly<Record<string, unknown>> | undefined, protocolVersion: 4 | 5): number {
  let propertiesLength = 0;
  if (protocolVersion === 5 && properties !== undefined) {
    propertiesLength = measureProperties(properties);
    if (propertiesLength < 0) return -1;
  }
  const payloadLength = typeof payload === 'string' ? utf8Length(payload) : payload.length;
  const remaining = 2 + utf8Length(topic) + (qos > 0 ? 2 : 0) + (protocolVersion === 5 ? varIntSize(propertiesLength) + propertiesLength : 0) + payloadLength;
  return 1 + varIntSize(remaining) + remaining;
}

/**
 * Lets `client` write its PUBLISH packets with `encodePublish` (everything else, and any PUBLISH the
 * encoder declines, still goes through mqtt-packet). Keeps what mqtt.js's own `_writePacket` does
 * around the write: the `packetsend` event and the callback, at once or on `drain` when the socket
 * buffer is full. `_writePacket` is mqtt.js's (private) single exit to the stream; if a release
 * renames it, this does nothing and mqtt-packet writes every packet, as before.
 */
export function installPublishEncoder(client: MqttClient): void {
  const internals = client as unknown as WritePacketInternals;
  const original = internals._writePacket;
  if (typeof original !== 'function') return;
  const protocolVersion = client.options.protocolVersion ?? 4;
  internals._writePacket = function writePacket(this: MqttClient, packet, callback) {
    const buffer = packet.cmd === 'publish' ? encodePublish(packet, protocolVersion) : undefined;
    if (buffer === undefined) {
      original.call(this, packet, callback);
      return;
    }
    this.emit('packetsend', packet);
    const flushed = this.stream.write(buffer);
    if (callback === undefined) return;
    if (!flushed && callback !== this.noop) this.stream.once('drain', callback);
    else callback();
  };
}

interface WritePacketInternals {
  _writePacket: (this: MqttClient, packet: Packet, callback?: () => void) => void;
}

const MAX_VAR_INT = 268_435_455;

/**
 * The properties this encoder writes, by name. Not the topic alias: mqtt.js rewrites topics for it
 * (and keeps its alias table), so a PUBLISH with one goes to mqtt-packet.
 */
const ENCODED = new Map(PUBLISH_PROPERTIES.filter(({ name }) => name !== 'topicAlias').map((property) => [property.name, property]));

/** Byte length of the properties, or -1 when one of them is not for this encoder (mqtt-packet decides). */
function measureProperties(properties: Readonly<Record<string, unknown>>): number {
  let length = 0;
  for (const name in properties) {
    const value = properties[name];
    if (value === undefined || value === null) continue;
    const spec = ENCODED.get(name);
    if (spec === undefined) return -1;
    if (Array.isArray(value)) {
      if (spec.type !== 'var') return -1;
      for (const item of value) {
        const size = measureProperty(spec.type, item);
        if (size < 0) return -1;
        length += size;
      }
      continue;
    }
    const size = measureProperty(spec.type, value);
    if (size < 0) return -1;
    length += size;
  }
  return length;
}

function measureProperty(type: PropertyType, value: unknown): number {
  switch (type) {
    case 'byte':
      return typeof value === 'boolean' ? 2 : -1;
    case 'int16':
      return typeof value === 'number' && Number.isInteger(value) && value >= 0 && value <= 0xffff ? 3 : -1;
    case 'int32':
      return typeof value === 'number' && Number.isInteger(value) && value >= 0 && value <= 0xffffffff ? 5 : -1;
    case 'var':
      return typeof value === 'number' && Number.isInteger(value) && value >= 0 && value <= MAX_VAR_INT ? 1 + varIntSize(value) : -1;
    case 'string':
      return typeof value === 'string' ? stringSize(value) : -1;
    case 'binary':
      return Buffer.isBuffer(value) && value.length <= 0xffff ? 3 + value.length : -1;
    case 'pair':
      return measurePairs(value);
    default:
      return -1;
  }
}

/** User properties: `{ name: value | value[] }`, one pair per value. */
function measurePairs(pairs: unknown): number {
  if (typeof pairs !== 'object' || pairs === null || Array.isArray(pairs)) return -1;
  let length = 0;
  for (const name in pairs) {
    const value = (pairs as Record<string, unknown>)[name];
    const nameLength = utf8Length(name);
    if (nameLength > 0xffff) return -1;
    if (!Array.isArray(value)) {
      const size = pairSize(nameLength, value);
      if (size < 0) return -1;
      length += size;
      continue;
    }
    for (const item of value as unknown[]) {
      const size = pairSize(nameLength, item);
      if (size < 0) return -1;
      length += size;
    }
  }
  return length;
}

function pairSize(nameLength: number, value: unknown): number {
  if (typeof value !== 'string') return -1;
  const valueLength = utf8Length(value);
  return valueLength > 0xffff ? -1 : 5 + nameLength + valueLength;
}

/** A string property's size (id, length, bytes), or -1 past the 65,535 bytes an MQTT string may have. */
function stringSize(value: string): number {
  const length = utf8Length(value);
  return length > 0xffff ? -1 : 3 + length;
}

function writeProperties(buffer: Buffer, start: number, properties: Readonly<Record<string, unknown>>): number {
  let at = start;
  for (const name in properties) {
    const value = properties[name];
    if (value === undefined || value === null) continue;
    const { id, type } = ENCODED.get(name) as PublishProperty;
    if (type === 'pair') {
      const pairs = value as Readonly<Record<string, string | readonly string[]>>;
      for (const key in pairs) {
        const entry = pairs[key] as string | readonly string[];
        if (typeof entry === 'string') at = writePair(buffer, at, id, key, entry);
        else for (const item of entry) at = writePair(buffer, at, id, key, item);
      }
    } else if (Array.isArray(value)) {
      for (const item of value as unknown[]) at = writeProperty(buffer, at, id, type, item);
    } else at = writeProperty(buffer, at, id, type, value);
  }
  return at;
}

function writePair(buffer: Buffer, at: number, id: number, key: string, value: string): number {
  buffer[at] = id;
  return writeString(buffer, writeString(buffer, at + 1, key), value);
}

function writeProperty(buffer: Buffer, start: number, id: number, type: PropertyType, value: unknown): number {
  buffer[start] = id;
  const at = start + 1;
  switch (type) {
    case 'byte':
      buffer[at] = value === true ? 1 : 0;
      return at + 1;
    case 'int16':
      return buffer.writeUInt16BE(value as number, at);
    case 'int32':
      return buffer.writeUInt32BE(value as number, at);
    case 'var':
      return writeVarInt(buffer, at, value as number);
    case 'string':
      return writeString(buffer, at, value as string);
    default: {
      const bytes = value as Buffer;
      buffer.writeUInt16BE(bytes.length, at);
      return at + 2 + bytes.copy(buffer, at + 2);
    }
  }
}

function writeString(buffer: Buffer, at: number, value: string): number {
  const length = writeUtf8(buffer, at + 2, value);
  buffer.writeUInt16BE(length, at);
  return at + 2 + length;
}

/**
 * Short strings (topics, header names and values, small JSON bodies) are mostly ASCII: counted and
 * copied in JS, which costs less than the call into the native UTF-8 codec; anything else goes native.
 */
const SHORT = 128;

function utf8Length(value: string): number {
  const length = value.length;
  if (length > SHORT) return Buffer.byteLength(value);
  for (let i = 0; i < length; i += 1) if (value.charCodeAt(i) >= 0x80) return Buffer.byteLength(value);
  return length;
}

/** Writes `value` as UTF-8 at `at`; returns the number of bytes written. */
function writeUtf8(buffer: Buffer, at: number, value: string): number {
  const length = value.length;
  if (length <= SHORT) {
    let i = 0;
    for (; i < length; i += 1) {
      const code = value.charCodeAt(i);
      if (code >= 0x80) break;
      buffer[at + i] = code;
    }
    if (i === length) return length;
  }
  return buffer.write(value, at, 'utf8');
}

function varIntSize(value: number): number {
  return value < 0x80 ? 1 : value < 0x4000 ? 2 : value < 0x200000 ? 3 : 4;
}

function writeVarInt(buffer: Buffer, start: number, value: number): number {
  let at = start;
  let rest = value;
  do {
    let byte = rest % 0x80;
    rest = Math.floor(rest / 0x80);
    if (rest > 0) byte |= 0x80;
    buffer[at++] = byte;
  } while (rest > 0);
  return at;
}
