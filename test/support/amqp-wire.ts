import { createRequire } from 'node:module';
import type { Encoded } from '../../adapters/amqp/amqp-codec.ts';

// amqplib's own frame codec (internal modules, the code `channel.publish` runs): what encodeMessage
// produces is checked against it, not against a copy of its rules.

interface AmqplibDefs {
  readonly BasicPublish: number;
  readonly BasicProperties: number;
  encodeMethod(id: number, channel: number, fields: unknown): Buffer;
  encodeProperties(id: number, channel: number, size: number, fields: unknown): Buffer;
  decode(id: number, buffer: Buffer): Record<string, unknown>;
}

const require = createRequire(import.meta.url);
const defs = require('amqplib/lib/defs') as AmqplibDefs;
const args = require('amqplib/lib/api_args') as { publish(exchange: string, routingKey: string, options: unknown): unknown };

/**
 * Encodes `encoded` exactly as amqplib's `channel.publish` does (basic.publish method frame and
 * content header frame; throws where amqplib throws) and returns the properties amqplib's own
 * decoder reads back from the header frame.
 */
export function amqplibRoundTrip(encoded: Encoded, exchange = 'ex', routingKey = 'rk'): Record<string, unknown> {
  const fields = args.publish(exchange, routingKey, encoded.properties);
  defs.encodeMethod(defs.BasicPublish, 1, fields);
  const frame = defs.encodeProperties(defs.BasicProperties, 1, encoded.content.length, fields);
  // frame: type(1) channel(2) size(4) class(2) weight(2) body size(8) | flags(2) properties… | end(1)
  if (frame.readUInt32BE(3) !== frame.length - 8) throw new Error('amqplib wrote a header frame whose size field does not match its length');
  return defs.decode(defs.BasicProperties, frame.subarray(19, frame.length - 1));
}
