import { createRequire } from 'node:module';
import type { Options } from 'amqplib';
import { describe, expect, it } from 'vitest';
import { publishFields } from '../../adapters/amqp/amqp-publisher.ts';

// amqplib's own argument builder and frame encoders: the publisher's fields must encode to the same bytes.
const require = createRequire(import.meta.url);
const Args = require('amqplib/lib/api_args.js') as { publish(exchange: string, routingKey: string, options: Options.Publish): object };
const defs = require('amqplib/lib/defs.js') as {
  BasicPublish: number;
  BasicProperties: number;
  encodeMethod(method: number, channel: number, fields: object): Buffer;
  encodeProperties(properties: number, channel: number, size: number, fields: object): Buffer;
};

const frames = (fields: object): Buffer => Buffer.concat([defs.encodeMethod(defs.BasicPublish, 3, fields), defs.encodeProperties(defs.BasicProperties, 3, 42, fields)]);

const cases: Record<string, Options.Publish> = {
  'a bridge message (id, content type, one header)': { messageId: 'b3f1c2d4-0000-4000-8000-000000000001', contentType: 'application/octet-stream', persistent: true, mandatory: true, headers: { mqttTopic: 'perf/bridge/in' } },
  'no headers at all (amqplib still sends an empty table)': { persistent: false },
  'every property': {
    messageId: 'm-1',
    contentType: 'application/json',
    contentEncoding: 'gzip',
    persistent: true,
    mandatory: false,
    headers: { a: 'x', n: 42, f: 1.5, big: 2 ** 40, yes: true, CC: ['k.1', 'k.2'] },
    priority: 7,
    correlationId: 'c-1',
    replyTo: 'amq.rabbitmq.reply-to',
    expiration: '60000',
    timestamp: 1_796_000_000,
    type: 'reading',
    userId: 'guest',
    appId: 'interchange',
  },
  'deliveryMode instead of persistent': { deliveryMode: 2 },
  'numeric expiration': { expiration: 1500 },
};

describe('publishFields: what amqplib Args.publish builds, in one fixed shape', () => {
  for (const [name, options] of Object.entries(cases)) {
    it(`encodes to the same frames as amqplib's own: ${name}`, () => {
      const ours = publishFields('telemetry', 'reading.d-1', options);
      expect(frames(ours).equals(frames(Args.publish('telemetry', 'reading.d-1', options)))).toBe(true);
    });
  }

  it('puts the headers table itself in the fields, not an object inheriting from it', () => {
    const headers = { mqttTopic: 'devices/d-1/telemetry' };
    const ours = publishFields('', 'q', { headers });
    expect(ours.headers).toBe(headers);
    // amqplib's own: an empty object whose prototype is the table (a for…in over the prototype chain per message)
    const theirs = Args.publish('', 'q', { headers }) as { headers: object };
    expect(Object.keys(theirs.headers)).toEqual([]);
    expect(Object.getPrototypeOf(theirs.headers)).toBe(headers);
  });
});
