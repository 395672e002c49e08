import { afterAll, expect, it } from 'vitest';
import { AMQP_URL, BrokerAdmin, readUntilQuiet, until } from './amqp-support.ts';
import { MOSQUITTO_URL, requireBroker } from './mqtt-helpers.ts';
import { checkInvalid, checkReadings, checkSummaries, e2eMessages, publishPaced, startFlow, uniquePrefix } from './flagship-support.ts';

// The flagship against the machine's Mosquitto and RabbitMQ: 5,000 valid messages from 50 devices
// and 100 invalid ones, read back from the four queues.
const admin = new BrokerAdmin();
afterAll(() => admin.close());

it('MQTT → AMQP: 5,000 valid readings routed and translated, 100 invalid dead-lettered with their bytes and reasons, 500 summaries', async () => {
  await requireBroker(MOSQUITTO_URL);
  const prefix = uniquePrefix('e2e');
  // a long idle timeout: every summary here completes by size, whatever the machine's load
  const running = await startFlow(prefix, { mqttUrl: MOSQUITTO_URL, amqpUrl: AMQP_URL }, { summaryIdleMs: 60_000 });
  const { names, app } = running;
  admin.track({ queues: [names.readingsQueue, names.alertsQueue, names.summariesQueue, names.invalidQueue], exchanges: [names.exchange, names.deadLetterExchange] });
  const sent = e2eMessages(names.telemetryTopic.split('/devices/')[0] as string);
  const telemetry = app.route('telemetry').metrics;
  try {
    await publishPaced(MOSQUITTO_URL, sent, () => telemetry.received);
    await until(
      () => telemetry.received >= sent.length && telemetry.inFlight === 0 && telemetry.sent.summaries === 500,
      () => `flow: ${JSON.stringify(app.metrics())}`,
      50_000,
    );
  } finally {
    await running.stop();
  }
  expect(telemetry).toMatchObject({ rejected: 0, inFlight: 0 });
  expect(telemetry.sent).toMatchObject({ readings: expect.any(Number), alerts: expect.any(Number) });

  const [readings, alerts, summaries, invalid] = await Promise.all([
    readUntilQuiet(names.readingsQueue, 1, 30_000),
    readUntilQuiet(names.alertsQueue, 1, 30_000),
    readUntilQuiet(names.summariesQueue, 500, 30_000),
    readUntilQuiet(names.invalidQueue, 100, 30_000),
  ]);
  expect(readings.length + alerts.length).toBe(5_000);
  expect(alerts.length).toBe(sent.filter((message) => (message.reading?.temperatureC ?? 0) >= 50).length);
  expect(checkReadings(sent, { readings, alerts })).toEqual({ duplicates: 0, missing: [] });
  expect(invalid).toHaveLength(100);
  expect(checkInvalid(sent, invalid).size).toBe(100);
  expect(summaries).toHaveLength(500);
  checkSummaries(summaries);
  expect(summaries[0]?.headers.contentType).toBe('application/json');
});
