import { createHash, randomBytes } from 'node:crypto';
import fc from 'fast-check';
import type { IPublishPacket, MqttClient, Packet } from 'mqtt';
import mqttPacket from 'mqtt-packet';
import { describe, expect, it } from 'vitest';
import { oversizeOf, TRUNCATED_BYTES } from '../../adapters/mqtt/oversize-publish.ts';
import { installPublishParser } from '../../adapters/mqtt/publish-parser.ts';
import { parsePackets, plainData, publishPacket, type ParseOutcome } from '../support/mqtt-packets.ts';

// The size limit in front of a consumer connection's parser (limitPublishSize): packets within the
// limit reach mqtt-packet byte for byte — checked against mqtt-packet's own parser on the same stream,
// however it is split — and a PUBLISH over it comes out truncated to 4 KiB with its size and SHA-256,
// the packets after it intact.

/** Like `parsePackets`, for a consumer connection with a `maxMessageBytes` of `limit`. */
function parseLimited(chunks: readonly Buffer[], protocolVersion: 4 | 5, limit: number): ParseOutcome & { parser: { _list: { length: number } } } {
  const options = { protocolVersion };
  installPublishParser({ options } as MqttClient, limit);
  const parser = mqttPacket.parser(options);
  const outcome: ParseOutcome = { packets: [], errors: [] };
  parser.on('packet', (packet: Packet) => outcome.packets.push(packet));
  parser.on('error', (error: Error) => outcome.errors.push(error.message));
  for (const chunk of chunks) parser.parse(chunk);
  return { ...outcome, parser: parser as unknown as { _list: { length: number } } };
}

const encode = (packets: readonly Packet[], protocolVersion: 4 | 5): Buffer => Buffer.concat(packets.map((packet) => mqttPacket.generate(packet, { protocolVersion })));

/** The same bytes split every way that matters: whole, byte by byte, and in uneven chunks. */
function splits(bytes: Buffer, { single = true } = {}): Buffer[][] {
  const uneven: Buffer[] = [];
  for (let at = 0, size = 1; at < bytes.length; at += size, size = (size * 7 + 3) % 9_973 || 1) uneven.push(bytes.subarray(at, at + size));
  const odd: Buffer[] = [];
  for (let at = 0, size = 3; at < bytes.length; at += size, size = size === 3 ? 65_536 : size === 65_536 ? 1 : 3) odd.push(bytes.subarray(at, at + size));
  return single ? [[bytes], uneven, odd, [...bytes].map((byte) => Buffer.from([byte]))] : [[bytes], uneven, odd];
}

const sha256 = (bytes: Buffer): string => createHash('sha256').update(bytes).digest('hex');

const small: Packet[] = [
  publishPacket({}),
  publishPacket({ qos: 1, messageId: 1, properties: { userProperties: { 'message-id': 'a', repeated: ['x', 'y'] } } }),
  { cmd: 'pingresp' } as Packet,
  publishPacket({ qos: 2, messageId: 2, retain: true, dup: true, topic: 'ünïcode', payload: Buffer.alloc(900, 7), properties: { contentType: 'text/plain', correlationData: Buffer.from([1, 2]) } }),
  { cmd: 'puback', messageId: 3 } as Packet,
  publishPacket({ qos: 1, messageId: 4, payload: Buffer.alloc(1_000, 1) }), // exactly at the limit below
];
const smallV4: Packet[] = [publishPacket({}), publishPacket({ qos: 1, messageId: 9, retain: true }), { cmd: 'pingresp' } as Packet, publishPacket({ qos: 2, messageId: 10, payload: Buffer.alloc(1_000, 1) })];

describe('MQTT consumer parser with maxMessageBytes', () => {
  it.each([
    [5, small],
    [4, smallV4],
  ] as const)('MQTT %d: packets within the limit parse as mqtt-packet parses them, however the stream is split', (protocolVersion, packets) => {
    const bytes = encode(packets, protocolVersion);
    for (const chunks of splits(bytes)) {
      const limited = parseLimited(chunks, protocolVersion, 1_000);
      expect(limited.errors).toEqual([]);
      expect(limited.packets).toHaveLength(packets.length);
      expect(plainData({ packets: limited.packets, errors: limited.errors })).toEqual(plainData(parsePackets(chunks, protocolVersion, false)));
      expect(limited.packets.some((packet) => oversizeOf(packet) !== undefined)).toBe(false);
    }
  });

  it('a PUBLISH longer than the limit for its topic and properties, not its payload, is not oversized and parses unchanged', () => {
    const packets = [publishPacket({ topic: 't/'.repeat(400), qos: 1, messageId: 5, payload: Buffer.alloc(100, 3), properties: { userProperties: { big: 'v'.repeat(2_000) } } }), { cmd: 'pingresp' } as Packet];
    for (const chunks of splits(encode(packets, 5))) {
      const limited = parseLimited(chunks, 5, 100);
      expect(plainData({ packets: limited.packets, errors: limited.errors })).toEqual(plainData(parsePackets(chunks, 5, false)));
      expect(oversizeOf(limited.packets[0] as Packet)).toBeUndefined();
    }
  });

  const big = randomBytes(100_000);
  it.each([
    ['MQTT 5, QoS 0', 5, { qos: 0 }],
    ['MQTT 5, QoS 1, with properties', 5, { qos: 1, messageId: 77, properties: { contentType: 'application/octet-stream', userProperties: { 'message-id': 'id-1', k: ['a', 'b'] }, correlationData: Buffer.from([9]) } }],
    ['MQTT 5, QoS 2, retained duplicate', 5, { qos: 2, messageId: 65_535, retain: true, dup: true, properties: { messageExpiryInterval: 60 } }],
    ['MQTT 3.1.1, QoS 1', 4, { qos: 1, messageId: 12 }],
    ['MQTT 3.1.1, QoS 2', 4, { qos: 2, messageId: 13, dup: true }],
  ] as const)('%s: an oversized PUBLISH mid-stream comes out as its first 4 KiB, its size and SHA-256; the packets after it are intact', (_name, protocolVersion, fields) => {
    const oversized = publishPacket({ topic: 'devices/d-9/blob', payload: big, ...fields } as Partial<IPublishPacket>);
    const before = protocolVersion === 5 ? small.slice(0, 3) : smallV4.slice(0, 2);
    const after = protocolVersion === 5 ? small.slice(2) : smallV4.slice(1);
    const reference = parsePackets([encode([...before, oversized, ...after], protocolVersion)], protocolVersion, false).packets;
    for (const chunks of splits(encode([...before, oversized, ...after], protocolVersion))) {
      const limited = parseLimited(chunks, protocolVersion, 10_000);
      expect(limited.errors).toEqual([]);
      expect(limited.packets).toHaveLength(reference.length);
      const at = before.length;
      const read = limited.packets[at] as IPublishPacket & { length: number };
      const whole = reference[at] as IPublishPacket & { length: number };
      expect(oversizeOf(read)).toEqual({ size: big.length, sha256: sha256(big) });
      expect(read.payload).toEqual(big.subarray(0, TRUNCATED_BYTES));
      // everything but the payload (and the packet's length, now that of the truncated packet) as sent
      expect(plainData({ ...read, payload: undefined, length: undefined })).toEqual(plainData({ ...whole, payload: undefined, length: undefined }));
      expect(read.length).toBe(whole.length - big.length + TRUNCATED_BYTES);
      expect(plainData(limited.packets.filter((_packet, index) => index !== at))).toEqual(plainData(reference.filter((_packet, index) => index !== at)));
    }
  });

  it('streams the payload: mqtt-packet never holds more of it than the fixed and variable headers', () => {
    const payloadSize = 50 * 1024 * 1024 + 3;
    const block = randomBytes(65_536);
    const header = mqttPacket.generate(publishPacket({ qos: 1, messageId: 3, payload: Buffer.alloc(0), properties: { userProperties: { a: 'b' } } }), { protocolVersion: 5 });
    // the same PUBLISH with a 50 MiB payload: its remaining length rewritten, the payload streamed in 64 KiB chunks
    const bodyLength = header.length - 2 + payloadSize;
    const fixed = Buffer.from([header[0] as number, (bodyLength & 0x7f) | 0x80, ((bodyLength >> 7) & 0x7f) | 0x80, ((bodyLength >> 14) & 0x7f) | 0x80, bodyLength >> 21]);
    const options = { protocolVersion: 5 as const };
    installPublishParser({ options } as MqttClient, 1_048_576);
    const parser = mqttPacket.parser(options);
    const packets: IPublishPacket[] = [];
    parser.on('packet', (packet: Packet) => {
      packets.push(packet as IPublishPacket);
    });
    parser.parse(Buffer.concat([fixed, header.subarray(2)]));
    const hash = createHash('sha256');
    let held = 0;
    for (let sent = 0; sent < payloadSize; sent += block.length) {
      const chunk = block.subarray(0, Math.min(block.length, payloadSize - sent));
      hash.update(chunk);
      parser.parse(chunk);
      held = Math.max(held, (parser as unknown as { _list: { length: number } })._list.length);
    }
    parser.parse(mqttPacket.generate({ cmd: 'pingresp' }, { protocolVersion: 5 }));
    expect(held).toBe(0);
    expect(packets.map((packet) => packet.cmd)).toEqual(['publish', 'pingresp']);
    expect(oversizeOf(packets[0] as IPublishPacket)).toEqual({ size: payloadSize, sha256: hash.digest('hex') });
    expect(packets[0]?.properties?.userProperties).toEqual({ a: 'b' });
  });

  it('an oversized PUBLISH with properties over 64 KiB keeps none of them; the packets after it are intact', () => {
    const packets = [publishPacket({ qos: 1, messageId: 8, payload: big, properties: { userProperties: { huge: 'h'.repeat(40_000), large: 'l'.repeat(40_000) } } }), ...small];
    for (const chunks of splits(encode(packets, 5), { single: false })) {
      const limited = parseLimited(chunks, 5, 10_000);
      const [read, ...rest] = limited.packets as [IPublishPacket, ...Packet[]];
      expect(read).toMatchObject({ cmd: 'publish', qos: 1, messageId: 8, topic: 'devices/d1/telemetry' });
      expect(read.properties).toBeUndefined();
      expect(oversizeOf(read)).toEqual({ size: big.length, sha256: sha256(big) });
      expect(plainData(rest)).toEqual(plainData(parsePackets([encode(small, 5)], 5, false).packets));
    }
  });

  it('a malformed oversized PUBLISH is dropped whole and reported; the packets after it are intact', () => {
    const bytes = Buffer.from(mqttPacket.generate(publishPacket({ topic: 'abc', payload: big }), { protocolVersion: 5 }));
    // fixed header 4 bytes (remaining length 100,008), topic length 2, topic 3: the property length follows
    bytes.set([0xff, 0xff, 0xff, 0x7f], 4 + 2 + 3);
    for (const chunks of splits(Buffer.concat([bytes, encode(small, 5)]), { single: false })) {
      const limited = parseLimited(chunks, 5, 10_000);
      expect(limited.errors).toEqual(['PUBLISH variable header longer than the packet']);
      expect(plainData(limited.packets)).toEqual(plainData(parsePackets([encode(small, 5)], 5, false).packets));
    }
  });

  it('a fixed header split inside its remaining length, then another PUBLISH in the same chunk, parses as mqtt-packet parses it', () => {
    // fast-check counterexample (seed 915289012): the PUBLISH's remaining length 128 (0x80 0x01) is cut after
    // 0x80; the limiter handed mqtt-packet a view of its fixed-header buffer, which mqtt-packet kept while the
    // length was incomplete, and the next PUBLISH of that chunk overwrote it ('Cannot parse topic').
    const packets = [
      { cmd: 'puback', messageId: 5 },
      publishPacket({ topic: '\u0000', payload: Buffer.from([0]), properties: { contentType: '𐀀𐀀𐀀𐀀𐀀', userProperties: { '𐀀': '𐀀𐀀𐀀𐀀𐀀𐀀𐀀', '': 'ࠀ𐀀𐀀', '𐀀𐀀𐀀ࠀ𐀀𐀀𐀀𐀀𐀀ࠀ': '𐀀' } } }),
      publishPacket({ topic: '\u0000', payload: Buffer.from([]) }),
      { cmd: 'pingresp' },
    ] as Packet[];
    const bytes = encode(packets, 5);
    expect([...bytes.subarray(6, 9)]).toEqual([0x30, 0x80, 0x01]);
    for (const chunks of [[bytes.subarray(0, 8), bytes.subarray(8)], [bytes.subarray(0, 7), bytes.subarray(7, 8), bytes.subarray(8)], ...splits(bytes)]) {
      const limited = parseLimited(chunks, 5, 128);
      const reference = parsePackets(chunks, 5, false);
      expect(reference.errors).toEqual([]);
      expect(limited.errors).toEqual([]);
      expect(plainData(limited.packets)).toEqual(plainData(reference.packets));
      expect(limited.packets.some((packet) => oversizeOf(packet) !== undefined)).toBe(false);
    }
  });

  it('property: for any packets and any split, mqtt-packet\'s packets, those over the limit truncated and marked', () => {
    const text = fc.string({ unit: 'binary', maxLength: 30 });
    const publish = fc
      .record({
        topic: fc.string({ unit: 'binary', minLength: 1, maxLength: 40 }),
        qos: fc.constantFrom(0, 1, 2),
        messageId: fc.integer({ min: 1, max: 0xffff }),
        retain: fc.boolean(),
        dup: fc.boolean(),
        size: fc.integer({ min: 0, max: 6_000 }),
        seed: fc.integer({ min: 0, max: 255 }),
        properties: fc.option(fc.record({ contentType: text, userProperties: fc.dictionary(text, text, { minKeys: 1, maxKeys: 3 }) }, { requiredKeys: [] }), { nil: undefined }),
      })
      .map(({ messageId, size, seed, properties, ...fields }): Packet => ({ cmd: 'publish', ...fields, payload: Buffer.alloc(size, seed), ...(fields.qos > 0 ? { messageId } : {}), ...(properties === undefined ? {} : { properties }) }) as Packet);
    const other = fc.constantFrom<Packet>({ cmd: 'pingresp' } as Packet, { cmd: 'puback', messageId: 5 } as Packet);
    fc.assert(
      fc.property(fc.array(fc.oneof(publish, other), { minLength: 1, maxLength: 6 }), fc.constantFrom(4 as const, 5 as const), fc.integer({ min: 1, max: 7_000 }), fc.array(fc.nat(), { maxLength: 8 }), (packets, protocolVersion, limit, cuts) => {
        const sent = protocolVersion === 4 ? packets.map((packet) => ({ ...packet, properties: undefined }) as Packet) : packets;
        const bytes = encode(sent, protocolVersion);
        const points = [...new Set(cuts.map((cut) => cut % (bytes.length + 1)))].sort((a, b) => a - b);
        const chunks = [0, ...points].map((start, index) => bytes.subarray(start, [...points, bytes.length][index])).filter((chunk) => chunk.length > 0);
        const limited = parseLimited(chunks, protocolVersion, limit);
        const reference = parsePackets(chunks, protocolVersion, false);
        expect(limited.errors).toEqual(reference.errors);
        const expected = reference.packets.map((packet) => {
          if (packet.cmd !== 'publish' || (packet.payload as Buffer).length <= limit) return { packet, mark: undefined };
          const payload = packet.payload as Buffer;
          const kept = Math.min(TRUNCATED_BYTES, limit);
          return { packet: { ...packet, payload: payload.subarray(0, kept), length: (packet as { length: number }).length - payload.length + kept }, mark: { size: payload.length, sha256: sha256(payload) } };
        });
        expect(plainData(limited.packets.map((packet) => ({ packet, mark: oversizeOf(packet) })))).toEqual(plainData(expected));
      }),
      { numRuns: 300 },
    );
  }, 30_000);
});
