import { firstValueFrom } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { MqttTransport } from '../../adapters/mqtt/index.ts';
import { createMessage, EndpointError, parseEndpoint } from '../../src/core/index.ts';

// Endpoint options are checked against mqttEndpointOptionsSchema before anything is sent or
// subscribed: a typo is an error naming the URI, never an option silently ignored.
const transport = (): MqttTransport => new MqttTransport({ url: 'mqtt://127.0.0.1:1', persistentSession: false });

describe('mqtt: endpoint options', () => {
  it.each([
    ['mqtt:t?qso=1', "unknown option 'qso' (did you mean 'qos'?)"],
    ['mqtt:t?qos=3', "qos must be one of 0, 1, 2, got '3'"],
    ['mqtt:t?headers=some', 'headers must be one of all, none, standard'],
    ['mqtt:t?retain=yes', 'retain must be one of true, false'],
  ])('publish to %s is refused: %s', async (uri, problem) => {
    const refused = transport().publish(parseEndpoint(uri), [createMessage({})]);
    await expect(refused).rejects.toBeInstanceOf(EndpointError);
    await expect(refused).rejects.toThrow(`invalid options in '${uri}': ${problem}`);
  });

  it.each([
    ['mqtt:t/+id?payload=bytes', 'payload must be one of decoded, raw'],
    ['mqtt:t/+id?group=a/b', 'group must match pattern'],
    ['mqtt:t/+id?maxDeliveries=0', "maxDeliveries must be a positive integer of at most 6 digits, got '0'"],
  ])('consuming %s fails the stream: %s', async (uri, problem) => {
    const consumed = firstValueFrom(transport().consume(parseEndpoint(uri)));
    await expect(consumed).rejects.toBeInstanceOf(EndpointError);
    await expect(consumed).rejects.toThrow(problem);
  });

  it('accepts every documented option', async () => {
    const publishing = transport().publish(parseEndpoint('mqtt:t?qos=2&retain=true&headers=none'), [createMessage({})]);
    await expect(publishing).rejects.toThrow(/not connected/); // past validation: only the connection is missing
    const tracing = transport().publish(parseEndpoint('mqtt:t?qos=1&headers=trace'), [createMessage({})]);
    await expect(tracing).rejects.toThrow(/not connected/);
  });
});
