import fc from 'fast-check';
import type { IPublishPacket } from 'mqtt';
import mqttPacket from 'mqtt-packet';
import { describe, expect, it } from 'vitest';
import { encodePublish } from '../../adapters/mqtt/publish-encoder.ts';
import { parsePackets, plainData } from '../support/mqtt-packets.ts';

// Property tests: for any PUBLISH a client may send, the adapter's encoder writes mqtt-packet's bytes,
// and the adapter's reader gets mqtt-packet's packets from them, however the stream is split.

const text = fc.string({ unit: 'binary', maxLength: 40 });
const userProperties = fc.dictionary(text, fc.oneof(text, fc.array(text, { minLength: 1, maxLength: 3 })), { minKeys: 1, maxKeys: 4 });
const properties = fc.record(
  {
    payloadFormatIndicator: fc.boolean(),
    messageExpiryInterval: fc.integer({ min: 0, max: 0xffffffff }),
    contentType: text,
    responseTopic: text,
    correlationData: fc.uint8Array({ maxLength: 40 }).map((bytes) => Buffer.from(bytes)),
    userProperties,
  },
  { requiredKeys: [] },
);
const publish = fc
  .record({
    topic: fc.string({ unit: 'binary', minLength: 1, maxLength: 60 }),
    qos: fc.constantFrom(0, 1, 2),
    messageId: fc.integer({ min: 1, max: 0xffff }),
    retain: fc.boolean(),
    dup: fc.boolean(),
    payload: fc.oneof(fc.uint8Array({ maxLength: 3_000 }).map((bytes) => Buffer.from(bytes)), fc.string({ unit: 'binary', maxLength: 300 })),
    properties: fc.option(properties, { nil: undefined }),
  })
  .map(({ messageId, properties: props, ...fields }): IPublishPacket => ({ cmd: 'publish', ...fields, ...(fields.qos > 0 ? { messageId } : {}), ...(props === undefined ? {} : { properties: props }) }) as IPublishPacket);
const version = fc.constantFrom(4 as const, 5 as const);

/** `bytes` cut at the given offsets (sorted, deduplicated). */
function cut(bytes: Buffer, offsets: readonly number[]): Buffer[] {
  const points = [...new Set(offsets.map((offset) => offset % (bytes.length + 1)))].sort((a, b) => a - b);
  const chunks: Buffer[] = [];
  let start = 0;
  for (const point of [...points, bytes.length]) {
    if (point > start) chunks.push(bytes.subarray(start, point));
    start = Math.max(start, point);
  }
  return chunks;
}

describe('MQTT PUBLISH encoder and reader (property tests against mqtt-packet)', () => {
  it('the encoder writes the bytes mqtt-packet writes', () => {
    fc.assert(
      fc.property(publish, version, (packet, protocolVersion) => {
        const encoded = encodePublish(packet, protocolVersion);
        expect(encoded).toBeDefined();
        expect([...(encoded as Buffer)]).toEqual([...mqttPacket.generate(packet, { protocolVersion })]);
      }),
      { numRuns: 400 },
    );
  });

  it('the reader gets the packets mqtt-packet gets from the same stream, split anywhere', () => {
    fc.assert(
      fc.property(fc.array(publish, { minLength: 1, maxLength: 4 }), version, fc.array(fc.nat(), { maxLength: 6 }), (packets, protocolVersion, offsets) => {
        const bytes = Buffer.concat(packets.map((packet) => mqttPacket.generate(packet, { protocolVersion })));
        const chunks = cut(bytes, offsets);
        const fast = parsePackets(chunks, protocolVersion, true);
        expect(fast.errors).toEqual([]);
        expect(fast.packets).toHaveLength(packets.length);
        expect(plainData(fast)).toEqual(plainData(parsePackets(chunks, protocolVersion, false)));
      }),
      { numRuns: 300 },
    );
  });
});
