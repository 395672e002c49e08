import { createRequire } from 'node:module';
import type { IPublishPacket, MqttClient, Packet } from 'mqtt';
import mqttPacket from 'mqtt-packet';
import { describe, expect, it, vi } from 'vitest';
import { installPublishParser } from '../../adapters/mqtt/publish-parser.ts';
import { parsePackets, plainData, publishPacket } from '../support/mqtt-packets.ts';

// The fast PUBLISH reader is checked against mqtt-packet's parser: the same byte stream, split the
// same ways, must give the same packets (and the same errors) from both.

const v5Packets: IPublishPacket[] = [
  publishPacket({}),
  publishPacket({ qos: 1, messageId: 1, properties: { userProperties: { 'message-id': '0b9c6f6e-5b1e-4a53-9f39-4d3f1f3a1c2e', timestamp: '1795000000000' } } }),
  publishPacket({
    qos: 2,
    messageId: 65_535,
    retain: true,
    dup: true,
    topic: 'ünïcode/topic',
    payload: 'text ✓',
    properties: {
      payloadFormatIndicator: true,
      messageExpiryInterval: 4_294_967_295,
      contentType: 'text/plain',
      responseTopic: 'replies/1',
      correlationData: Buffer.from([0, 1, 2, 255]),
      userProperties: { repeated: ['a', 'b', 'c'], single: 'x' },
    },
  }),
  publishPacket({ topic: '', properties: { topicAlias: 7 } }),
  publishPacket({ qos: 1, messageId: 2, properties: { subscriptionIdentifier: [1, 200, 268_435_455] as unknown as number } }),
  publishPacket({ payload: Buffer.alloc(0), properties: { payloadFormatIndicator: false } }),
  publishPacket({ qos: 1, messageId: 3, payload: Buffer.alloc(17_000, 9), properties: { userProperties: { k: 'v' } } }),
];
const v4Packets: IPublishPacket[] = [publishPacket({}), publishPacket({ qos: 1, messageId: 9, retain: true }), publishPacket({ qos: 2, messageId: 10, payload: Buffer.alloc(20_000, 1) })];

const stream = (packets: readonly IPublishPacket[], protocolVersion: 4 | 5): Buffer => Buffer.concat([...packets, { cmd: 'pingresp' } as Packet].map((packet) => mqttPacket.generate(packet, { protocolVersion })));

/** The same bytes split every way that matters: whole, byte by byte, and in uneven chunks. */
function splits(bytes: Buffer): Buffer[][] {
  const uneven: Buffer[] = [];
  for (let at = 0, size = 1; at < bytes.length; at += size, size = (size * 7 + 3) % 97 || 1) uneven.push(bytes.subarray(at, at + size));
  const single = [...bytes].map((byte) => Buffer.from([byte]));
  return [[bytes], uneven, single];
}

describe('MQTT PUBLISH parser', () => {
  it.each([
    [5, v5Packets],
    [4, v4Packets],
  ] as const)('MQTT %d: the same packets as mqtt-packet from the same stream, however it is split', (protocolVersion, packets) => {
    const bytes = stream(packets, protocolVersion);
    for (const chunks of splits(bytes)) {
      const fast = parsePackets(chunks, protocolVersion, true);
      expect(fast.errors).toEqual([]);
      expect(fast.packets).toHaveLength(packets.length + 1);
      expect(plainData(fast)).toEqual(plainData(parsePackets(chunks, protocolVersion, false)));
    }
  });

  it('reads what the sender wrote: topic, id, flags, properties, payload', () => {
    const packet = v5Packets[2] as IPublishPacket;
    const [read] = parsePackets([stream([packet], 5)], 5, true).packets as [IPublishPacket];
    expect(read).toMatchObject({ cmd: 'publish', topic: 'ünïcode/topic', qos: 2, messageId: 65_535, retain: true, dup: true });
    expect(read.payload.toString()).toBe('text ✓');
    expect(read.properties?.userProperties).toEqual({ repeated: ['a', 'b', 'c'], single: 'x' });
    expect(Object.getPrototypeOf(read.properties?.userProperties)).toBeNull();
    expect(read.properties?.correlationData).toEqual(Buffer.from([0, 1, 2, 255]));
  });

  it.each([
    ['an unknown property', (bytes: Buffer) => replaceFirst(bytes, 0x26, 0x7f)],
    ['a topic longer than the packet', (bytes: Buffer) => bytes.fill(0xff, 2, 4)],
    ['a property length past the packet', (bytes: Buffer) => withPropertyLength(bytes, 0x7f)],
  ])('reports %s as mqtt-packet does', (_name, corrupt) => {
    const packet = publishPacket({ properties: { userProperties: { a: 'b' } } });
    const bytes = corrupt(Buffer.from(mqttPacket.generate(packet, { protocolVersion: 5 })));
    const fast = parsePackets([bytes], 5, true);
    expect(plainData(fast)).toEqual(plainData(parsePackets([bytes], 5, false)));
  });

  it('reads valid PUBLISH packets itself and hands only the malformed ones to mqtt-packet', () => {
    const prototype = Object.getPrototypeOf(mqttPacket.parser({})) as { _parsePublish(): void };
    const original = vi.spyOn(prototype, '_parsePublish');
    try {
      expect(parsePackets(splits(stream(v5Packets, 5))[1] as Buffer[], 5, true).packets).toHaveLength(v5Packets.length + 1);
      expect(original).not.toHaveBeenCalled();
      parsePackets([replaceFirst(Buffer.from(mqttPacket.generate(publishPacket({ properties: { userProperties: { a: 'b' } } }), { protocolVersion: 5 })), 0x26, 0x7f)], 5, true);
      expect(original).toHaveBeenCalledTimes(1);
    } finally {
      original.mockRestore();
    }
  });

  it('leaves the parsers of other clients (and of aedes, mqtt-packet users in general) to mqtt-packet', () => {
    installPublishParser({ options: { protocolVersion: 5 } } as MqttClient);
    const parser = mqttPacket.parser({ protocolVersion: 5 });
    const own = (parser as unknown as Record<string, unknown>)._parsePublish;
    expect(Object.hasOwn(parser, '_parsePublish')).toBe(false);
    expect(own).toBe(Object.getPrototypeOf(parser)._parsePublish);
  });

  it('patches the mqtt-packet that mqtt.js itself loads (one copy in node_modules)', () => {
    const fromMqtt = createRequire(createRequire(import.meta.url).resolve('mqtt')).resolve('mqtt-packet');
    expect(fromMqtt).toBe(createRequire(import.meta.url).resolve('mqtt-packet'));
  });
});

/** The fixed header is 2 bytes here (short packets): the topic length follows, then topic, then the property length. */
function withPropertyLength(bytes: Buffer, length: number): Buffer {
  const topicLength = bytes.readUInt16BE(2);
  bytes[4 + topicLength] = length;
  return bytes;
}

function replaceFirst(bytes: Buffer, from: number, to: number): Buffer {
  const topicLength = bytes.readUInt16BE(2);
  const at = bytes.indexOf(from, 4 + topicLength);
  bytes[at] = to;
  return bytes;
}
