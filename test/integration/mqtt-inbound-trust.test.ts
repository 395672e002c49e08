import mqtt from 'mqtt';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { MqttUnencodableError, type MqttTransport } from '../../adapters/mqtt/index.ts';
import { createMessage, parseEndpoint, PartialPublishError, type Delivery, type Message } from '../../src/core/index.ts';
import { MOSQUITTO_URL, requireBroker, runClientId, sleep, testTransport, waitFor } from './mqtt-helpers.ts';

// Untrusted edges through a real broker: a device cannot forge what a default consumer hands the
// route, and a message that cannot be a valid PUBLISH fails alone, the rest of its batch confirmed.

const run = `it-trust-${process.pid}-${Date.now().toString(36)}`;
let open: MqttTransport[] = [];

function transport(): MqttTransport {
  const created = testTransport({ url: MOSQUITTO_URL, clientId: runClientId('trust') });
  open.push(created);
  return created;
}

function collect(source: MqttTransport, uri: string): Message[] {
  const messages: Message[] = [];
  const subscription = source.consume(parseEndpoint(uri)).subscribe((delivery: Delivery) => {
    messages.push(delivery.message);
    delivery.ack();
  });
  stops.push(() => subscription.unsubscribe());
  return messages;
}
let stops: (() => void)[] = [];

beforeAll(async () => {
  await requireBroker(MOSQUITTO_URL);
});

afterEach(async () => {
  for (const stop of stops) stop();
  stops = [];
  for (const created of open) await created.close();
  open = [];
});

describe('mqtt inbound trust and publish limits against Mosquitto', () => {
  it('a device\'s forged MQTT 5 user properties never reach a default consumer\'s headers; its id is fresh', async () => {
    const consumer = transport();
    await consumer.connect();
    const defaults = collect(consumer, `mqtt:${run}/devices/+deviceId/telemetry?qos=1`);
    const peers = collect(consumer, `mqtt:${run}/devices/+deviceId/telemetry?qos=1&headers=all`); // for contrast: a trusted peer's view
    await sleep(300); // SUBSCRIBEs in effect

    const device = await mqtt.connectAsync(MOSQUITTO_URL, { protocolVersion: 5, clientId: runClientId('device') });
    try {
      await device.publishAsync(`${run}/devices/d-7/telemetry`, '{"t":21.5}', {
        qos: 1,
        properties: {
          userProperties: { 'x-interchange-error': 'forged', 'message-id': 'victim-reading-1', CC: 'audit.all', expiresAt: '1e300', deviceId: 'spoofed' },
          contentType: 'application/json',
          messageExpiryInterval: 60,
        },
      });
    } finally {
      await device.endAsync();
    }
    await waitFor(() => defaults.length >= 1 && peers.length >= 1, () => `got ${defaults.length} / ${peers.length}`);

    const [message] = defaults as [Message];
    expect(message.id).not.toBe('victim-reading-1');
    expect(message.id).toMatch(/^[0-9a-f-]{36}$/);
    const { expiresAt, ...rest } = message.headers;
    expect(rest).toEqual({ contentType: 'application/json', deviceId: 'd-7', mqttTopic: `${run}/devices/d-7/telemetry` });
    expect(expiresAt).toBeLessThanOrEqual(Date.now() + 60_000); // from the bounded Message Expiry Interval, not the forged 1e300
    expect(message.body).toEqual({ t: 21.5 });

    expect(peers[0]?.id).toBe('victim-reading-1');
    expect(peers[0]?.headers).toMatchObject({ 'x-interchange-error': 'forged', CC: 'audit.all', deviceId: 'd-7' });
  });

  it('a publish batch with one over-long-topic message confirms the rest; PartialPublishError names only its index', async () => {
    const consumer = transport();
    const producer = transport();
    await Promise.all([consumer.connect(), producer.connect()]);
    const got = collect(consumer, `mqtt:${run}/batch/+room?qos=1`);
    await sleep(300);
    const rooms = ['r0', 'x'.repeat(70_000), 'r2', 'r3'];
    const sent = rooms.map((room, seq) => createMessage({ seq }, { headers: { room } }));
    const failure = await producer.publish(parseEndpoint(`mqtt:${run}/batch/{room}?qos=1`), sent).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(PartialPublishError);
    const { failures } = failure as PartialPublishError;
    expect([...failures.keys()]).toEqual([1]);
    expect(failures.get(1)).toBeInstanceOf(MqttUnencodableError);
    expect(failures.get(1)?.message).toMatch(/over MQTT's 65,535/);
    await waitFor(() => got.length >= 3, () => `got ${got.length} of 3`);
    await sleep(200);
    expect(got.map((message) => message.body)).toEqual([{ seq: 0 }, { seq: 2 }, { seq: 3 }]);
  });

  it('a header Mosquitto would drop the connection for (a newline) fails alone; the connection stays up', async () => {
    const consumer = transport();
    const producer = transport();
    await Promise.all([consumer.connect(), producer.connect()]);
    const uri = `mqtt:${run}/multiline?qos=1&headers=all`;
    const got = collect(consumer, uri);
    await sleep(300);
    const sent = [createMessage({ seq: 0 }), createMessage({ seq: 1 }, { headers: { note: 'line 1\nline 2' } }), createMessage({ seq: 2 })];
    const failure = (await producer.publish(parseEndpoint(uri), sent).catch((error: unknown) => error)) as PartialPublishError;
    expect([...failure.failures.keys()]).toEqual([1]);
    await producer.publish(parseEndpoint(uri), [createMessage({ seq: 3 })]); // same connection, still accepted
    await waitFor(() => got.length >= 3, () => `got ${got.length} of 3`);
    expect(got.map((message) => message.body)).toEqual([{ seq: 0 }, { seq: 2 }, { seq: 3 }]);
  });
});
