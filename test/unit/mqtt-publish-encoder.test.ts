import { EventEmitter } from 'node:events';
import type { IPublishPacket, MqttClient, Packet } from 'mqtt';
import mqttPacket from 'mqtt-packet';
import { describe, expect, it } from 'vitest';
import { encodePublish, installPublishEncoder } from '../../adapters/mqtt/publish-encoder.ts';
import { parsePackets, publishPacket } from '../support/mqtt-packets.ts';

// The encoder is checked against mqtt-packet, the library mqtt.js itself encodes and parses with:
// the same bytes as mqtt-packet's `generate`, and what mqtt-packet's parser reads back is the packet.

/** The one packet mqtt-packet's own parser reads from `buffer`, without errors. */
function parse(buffer: Buffer, protocolVersion: 4 | 5): Packet {
  const { packets, errors } = parsePackets([buffer], protocolVersion, false);
  expect(errors).toEqual([]);
  expect(packets).toHaveLength(1);
  return packets[0] as Packet;
}

const cases: readonly [string, IPublishPacket, 4 | 5][] = [
  ['QoS 0, MQTT 3.1.1', publishPacket({}), 4],
  ['QoS 1 with retain and dup, MQTT 3.1.1', publishPacket({ qos: 1, messageId: 42, retain: true, dup: true }), 4],
  ['QoS 2, string payload', publishPacket({ qos: 2, messageId: 65_535, payload: 'héllo — ünïcode' }), 4],
  ['MQTT 5 without properties', publishPacket({ qos: 1, messageId: 7 }), 5],
  ['MQTT 5, an Interchange message (id and timestamp)', publishPacket({ qos: 1, messageId: 1, properties: { userProperties: { 'message-id': '0b9c6f6e-5b1e-4a53-9f39-4d3f1f3a1c2e', timestamp: '1795000000000' } } }), 5],
  [
    'MQTT 5, every property a client puts on a PUBLISH',
    publishPacket({
      qos: 2,
      messageId: 300,
      retain: true,
      properties: {
        payloadFormatIndicator: true,
        messageExpiryInterval: 4_294_967_295,
        contentType: 'application/json; charset=utf-8',
        responseTopic: 'replies/ü',
        correlationData: Buffer.from([0, 1, 2, 255]),
        userProperties: { 'message-id': 'x', repeated: ['a', 'b', 'ç'], empty: '' },
      },
    }),
    5,
  ],
  ['MQTT 5, empty topic, empty payload', publishPacket({ topic: '', payload: Buffer.alloc(0), properties: { payloadFormatIndicator: false } }), 5],
  ['MQTT 5, a payload past the 2-, 3-byte length boundaries', publishPacket({ qos: 1, messageId: 9, payload: Buffer.alloc(200_000, 7), properties: { userProperties: { k: 'v' } } }), 5],
];

describe('MQTT PUBLISH encoder', () => {
  it.each(cases)('%s: the same bytes as mqtt-packet, parsed back to the same packet', (_name, packet, protocolVersion) => {
    const encoded = encodePublish(packet, protocolVersion);
    expect(encoded).toBeDefined();
    expect(encoded?.equals(mqttPacket.generate(packet, { protocolVersion }))).toBe(true);
    const parsed = parse(encoded as Buffer, protocolVersion) as IPublishPacket;
    expect(parsed).toMatchObject({ cmd: 'publish', topic: packet.topic, qos: packet.qos, retain: packet.retain, dup: packet.dup });
    expect(Buffer.from(parsed.payload).equals(Buffer.from(packet.payload))).toBe(true);
    if (packet.qos > 0) expect(parsed.messageId).toBe(packet.messageId);
    if (protocolVersion === 5 && packet.properties !== undefined) expect(parsed.properties).toEqual(packet.properties);
  });

  it.each([
    ['a topic alias (mqtt.js rewrites topics for it)', publishPacket({ properties: { topicAlias: 3 } })],
    ['a property a PUBLISH cannot carry', publishPacket({ properties: { sessionExpiryInterval: 10 } as IPublishPacket['properties'] })],
    ['a user property that is not a string', publishPacket({ properties: { userProperties: { n: 1 as unknown as string } } })],
    ['a message expiry past 32 bits', publishPacket({ properties: { messageExpiryInterval: 2 ** 32 } })],
    ['QoS 1 without a message id', publishPacket({ qos: 1 })],
    ['a payload that is neither bytes nor string', publishPacket({ payload: 42 as unknown as Buffer })],
    ['a topic that is not a string', publishPacket({ topic: Buffer.from('t') as unknown as string })],
  ])('declines %s: mqtt-packet writes (or rejects) it', (_name, packet) => {
    expect(encodePublish(packet, 5)).toBeUndefined();
  });
});

/** The part of an MqttClient `installPublishEncoder` touches: `_writePacket`, `emit`, `stream`, `noop`, `options`. */
class FakeClient extends EventEmitter {
  readonly options = { protocolVersion: 5 as const };
  readonly noop = (): void => undefined;
  readonly written: Buffer[] = [];
  readonly fallback: Packet[] = [];
  full = false;
  readonly stream = Object.assign(new EventEmitter(), {
    write: (buffer: Buffer): boolean => {
      this.written.push(buffer);
      return !this.full;
    },
  });

  _writePacket(packet: Packet, callback?: () => void): void {
    this.fallback.push(packet);
    callback?.();
  }
}

describe('installPublishEncoder', () => {
  const install = (): FakeClient => {
    const client = new FakeClient();
    installPublishEncoder(client as unknown as MqttClient);
    return client;
  };
  const write = (client: FakeClient, packet: Packet, callback?: () => void): void => (client as unknown as { _writePacket(p: Packet, c?: () => void): void })._writePacket(packet, callback);

  it('writes a PUBLISH as one buffer, emits packetsend and calls back; other packets go to mqtt.js', () => {
    const client = install();
    const sent: Packet[] = [];
    client.on('packetsend', (packet: Packet) => sent.push(packet));
    const packet = publishPacket({ qos: 1, messageId: 5, properties: { userProperties: { 'message-id': 'a' } } });
    let called = 0;
    write(client, packet, () => (called += 1));
    write(client, { cmd: 'puback', messageId: 5 });
    write(client, publishPacket({ properties: { topicAlias: 1 } }));
    expect(client.written).toHaveLength(1);
    expect(client.written[0]?.equals(mqttPacket.generate(packet, { protocolVersion: 5 }))).toBe(true);
    expect(sent).toEqual([packet]);
    expect(called).toBe(1);
    expect(client.fallback.map((p) => p.cmd)).toEqual(['puback', 'publish']);
  });

  it('calls back on drain when the socket buffer is full, as mqtt.js does', () => {
    const client = install();
    client.full = true;
    let called = 0;
    write(client, publishPacket({}), () => (called += 1));
    expect(called).toBe(0);
    client.stream.emit('drain');
    expect(called).toBe(1);
  });
});
