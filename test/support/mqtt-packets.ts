import type { IPublishPacket, MqttClient, Packet } from 'mqtt';
import mqttPacket from 'mqtt-packet';
import { installPublishParser } from '../../adapters/mqtt/publish-parser.ts';

/** A PUBLISH packet as mqtt.js hands it to the writer: a small telemetry reading unless `fields` say otherwise. */
export const publishPacket = (fields: Partial<Omit<IPublishPacket, 'cmd'>>): IPublishPacket => ({
  cmd: 'publish',
  topic: 'devices/d1/telemetry',
  payload: Buffer.from('{"t":21.5}'),
  qos: 0,
  dup: false,
  retain: false,
  ...fields,
});

export interface ParseOutcome {
  packets: Packet[];
  errors: string[];
}

/**
 * Feeds `chunks` to a parser made as mqtt.js makes one for a client (`mqttPacket.parser(client.options)`):
 * with `fast`, the client's options are first handed to `installPublishParser`, so the adapter's
 * PUBLISH reader is used; without, mqtt-packet's own. Collects the packets and the error messages.
 */
export function parsePackets(chunks: readonly Buffer[], protocolVersion: 4 | 5, fast: boolean): ParseOutcome {
  const options = { protocolVersion };
  if (fast) installPublishParser({ options } as MqttClient);
  const parser = mqttPacket.parser(options);
  const outcome: ParseOutcome = { packets: [], errors: [] };
  parser.on('packet', (packet: Packet) => outcome.packets.push(packet));
  parser.on('error', (error: Error) => outcome.errors.push(error.message));
  for (const chunk of chunks) parser.parse(chunk);
  return outcome;
}

/** Packets compared as plain data: Buffers as byte arrays, prototype-less objects as objects. */
export const plainData = (value: unknown): unknown => JSON.parse(JSON.stringify(value, (_key, item: unknown) => (item instanceof Uint8Array ? [...item] : item))) as unknown;
