import mqtt from 'mqtt';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { MqttTransport } from '../../adapters/mqtt/index.ts';
import { createMessage, InterchangeError, parseEndpoint, TimeoutError, type Delivery, type Logger, type Message } from '../../src/core/index.ts';
import { MOSQUITTO_URL, requireBroker, runClientId, sleep, testTransport, waitFor } from './mqtt-helpers.ts';

// What an MQTT consumer does with a delivery its route rejects (issue 12: transient failures never end
// as loss; implicit dead letters are durable and visible), against the machine's Mosquitto.

const run = `it-redeliver-${process.pid}-${Date.now().toString(36)}`;
let open: MqttTransport[] = [];

beforeAll(async () => {
  await requireBroker(MOSQUITTO_URL);
});

afterEach(async () => {
  for (const transport of open) await transport.close();
  open = [];
});

/** Records WARN lines (the operator's view). */
function recordingLogger(): Logger & { readonly warnings: string[] } {
  const warnings: string[] = [];
  const ignore = (): void => {};
  return { warnings, debug: ignore, info: ignore, error: ignore, warn: (message: string, fields?: Record<string, unknown>) => void warnings.push(`${message} ${JSON.stringify(fields ?? {})}`) } as Logger & { readonly warnings: string[] };
}

describe('mqtt consumer: rejected deliveries', () => {
  it('a transient failure past maxDeliveries is never acknowledged: redelivered with backoff until it succeeds', async () => {
    const log = recordingLogger();
    const consumer = testTransport({ url: MOSQUITTO_URL, clientId: runClientId('transient'), maxDeliveries: 2, redelivery: { initialDelayMs: 50, maxDelayMs: 200 }, logger: log });
    const producer = testTransport({ url: MOSQUITTO_URL, clientId: runClientId('transient-pub') });
    open.push(consumer, producer);
    await Promise.all([consumer.connect(), producer.connect()]);
    const topic = `${run}/transient`;
    const attempts: number[] = [];
    const subscription = consumer.consume(parseEndpoint(`mqtt:${topic}?qos=1`)).subscribe((delivery: Delivery) => {
      attempts.push(delivery.message.headers.attempt ?? 1);
      // down for the first eight attempts, then the downstream is back
      if (attempts.length <= 8) delivery.nack(new TimeoutError('downstream not confirming'));
      else delivery.ack();
    });
    try {
      await sleep(300);
      await producer.publish(parseEndpoint(`mqtt:${topic}?qos=1`), [createMessage({ n: 1 })]);
      await waitFor(() => attempts.length >= 9, () => `attempts ${JSON.stringify(attempts)}`, 20_000);
    } finally {
      subscription.unsubscribe();
    }
    expect(attempts).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(log.warnings.filter((line) => line.includes('redelivered with backoff'))).toHaveLength(1);
    expect(log.warnings.some((line) => line.includes('dead-letter'))).toBe(false);
  });

  it('a message rejected for a transient reason and still failing when the consumer closes stays with the session', async () => {
    const clientId = runClientId('handback');
    const topic = `${run}/handback`;
    const first = testTransport({ url: MOSQUITTO_URL, clientId, maxDeliveries: 1, redelivery: { initialDelayMs: 20, maxDelayMs: 50 } });
    const producer = testTransport({ url: MOSQUITTO_URL, clientId: runClientId('handback-pub') });
    open.push(first, producer);
    await Promise.all([first.connect(), producer.connect()]);
    let failures = 0;
    const failing = first.consume(parseEndpoint(`mqtt:${topic}?qos=1`)).subscribe((delivery) => {
      failures += 1;
      delivery.nack(new TimeoutError('still down'));
    });
    await sleep(300);
    await producer.publish(parseEndpoint(`mqtt:${topic}?qos=1`), [createMessage({ n: 'kept' })]);
    await waitFor(() => failures >= 5, () => `failures ${failures}`, 10_000);
    failing.unsubscribe();
    await first.close();

    const second = testTransport({ url: MOSQUITTO_URL, clientId });
    open.push(second);
    await second.connect();
    const got: Message[] = [];
    const subscription = second.consume(parseEndpoint(`mqtt:${topic}?qos=1`)).subscribe((delivery) => {
      got.push(delivery.message);
      delivery.ack();
    });
    try {
      await waitFor(() => got.length >= 1, () => 'the broker did not redeliver the message to the session', 10_000);
    } finally {
      subscription.unsubscribe();
    }
    expect(got.map((message) => message.body)).toEqual([{ n: 'kept' }]);
  });

  it('a permanent failure goes to the dead-letter topic, kept by the broker for the dead-letter session, and is logged at WARN', async () => {
    const log = recordingLogger();
    const clientId = runClientId('permanent');
    const prefix = `${run}/dead`;
    const consumer = testTransport({ url: MOSQUITTO_URL, clientId, deadLetterPrefix: prefix, logger: log });
    const producer = testTransport({ url: MOSQUITTO_URL, clientId: runClientId('permanent-pub') });
    open.push(consumer, producer);
    await Promise.all([consumer.connect(), producer.connect()]);
    const topic = `${run}/permanent`;
    let seen = 0;
    const subscription = consumer.consume(parseEndpoint(`mqtt:${topic}?qos=1`)).subscribe((delivery) => {
      seen += 1;
      delivery.nack(new InterchangeError('SCHEMA_INVALID', 'not a reading', { permanent: true }));
    });
    try {
      await sleep(300);
      await producer.publish(parseEndpoint(`mqtt:${topic}?qos=1`), [createMessage({ bad: true })]);
      await waitFor(() => log.warnings.some((line) => line.includes('parked on the dead-letter topic')), () => `warnings: ${log.warnings.join('\n')}`, 10_000);
    } finally {
      subscription.unsubscribe();
    }
    expect(seen).toBe(1); // a permanent failure is not redelivered
    expect(log.warnings.find((line) => line.includes('parked'))).toContain(`${clientId}:dead-letters`);

    // nobody subscribed to the dead-letter topic: the broker kept it for the dead-letter session
    // (the handler is in place before CONNACK: queued messages follow it at once)
    const operator = mqtt.connect(MOSQUITTO_URL, { protocolVersion: 5, clean: false, clientId: `${clientId}:dead-letters`, properties: { sessionExpiryInterval: 60 } });
    try {
      const letters: { topic: string; properties: Record<string, unknown> | undefined; payload: string }[] = [];
      operator.on('message', (letterTopic, payload, packet) => letters.push({ topic: letterTopic, properties: packet.properties?.userProperties as Record<string, unknown> | undefined, payload: payload.toString() }));
      await waitFor(() => letters.length >= 1, () => 'no dead letter kept for the session', 10_000);
      expect(letters[0]?.topic).toBe(`${prefix}/${topic}`);
      expect(letters[0]?.payload).toBe('{"bad":true}');
      expect(letters[0]?.properties).toMatchObject({ 'x-interchange-error-code': 'SCHEMA_INVALID', 'x-interchange-error': 'not a reading' });
    } finally {
      await operator.endAsync();
      // the session is the operator's to clean up; this test's goes with it
      const cleaner = await mqtt.connectAsync(MOSQUITTO_URL, { protocolVersion: 5, clean: true, clientId: `${clientId}:dead-letters` });
      await cleaner.endAsync();
    }
  });
});
