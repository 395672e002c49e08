import { afterAll, expect, it } from 'vitest';
import { ensureRabbitRunning, rabbitmqctl } from './rabbitmq-control.ts';
import type { AmqpTransport } from '../../adapters/amqp/index.ts';
import { AMQP_URL, BrokerAdmin, readUntilQuiet, sleep, until } from '../integration/amqp-support.ts';
import { MOSQUITTO_URL, requireBroker } from '../integration/mqtt-helpers.ts';
import { checkInvalid, checkReadings, e2eMessages, publishPaced, startFlow, uniquePrefix } from '../integration/flagship-support.ts';

// The flagship with the RabbitMQ application restarted mid-stream (once). Always leaves RabbitMQ running.
const admin = new BrokerAdmin();
afterAll(async () => {
  ensureRabbitRunning();
  await admin.close();
});

it('RabbitMQ restarted while 5,000 valid + 100 invalid MQTT messages flow: 0 lost, duplicates counted and reported', async () => {
  await requireBroker(MOSQUITTO_URL);
  const prefix = uniquePrefix('restart');
  const running = await startFlow(prefix, { mqttUrl: MOSQUITTO_URL, amqpUrl: AMQP_URL }, { summaryIdleMs: 120_000 }, { amqp: { publishTimeoutMs: 120_000 } });
  const { names, app } = running;
  admin.track({ queues: [names.readingsQueue, names.alertsQueue, names.summariesQueue, names.invalidQueue], exchanges: [names.exchange, names.deadLetterExchange] });
  const sent = e2eMessages(names.telemetryTopic.split('/devices/')[0] as string);
  const telemetry = app.route('telemetry').metrics;
  const states: string[] = [];
  app.transport<AmqpTransport>('amqp').status$.subscribe((status) => states.push(status.state));
  let restarted = false;
  try {
    const publishing = publishPaced(MOSQUITTO_URL, sent, () => telemetry.received);
    await until(() => telemetry.received - telemetry.inFlight >= 1_500, () => `flow did not get going: ${JSON.stringify(telemetry)}`, 60_000);
    rabbitmqctl('stop_app');
    await sleep(2_000);
    ensureRabbitRunning();
    restarted = true;
    await publishing;
    // resumes by itself: every message taken is settled, none rejected back to MQTT for good
    await until(() => telemetry.received >= sent.length && telemetry.inFlight === 0, () => `flow: ${JSON.stringify(app.metrics())}`, 180_000);
  } finally {
    if (!restarted) ensureRabbitRunning();
    await running.stop();
  }
  expect(states).toContain('reconnecting');

  const [readings, alerts, summaries, invalid] = await Promise.all([
    readUntilQuiet(names.readingsQueue, 1, 60_000),
    readUntilQuiet(names.alertsQueue, 1, 60_000),
    readUntilQuiet(names.summariesQueue, 0, 60_000),
    readUntilQuiet(names.invalidQueue, 100, 60_000),
  ]);
  const { duplicates, missing } = checkReadings(sent, { readings, alerts });
  const invalidFound = checkInvalid(sent, invalid);
  console.log(
    `flagship restart: ${readings.length + alerts.length} readings+alerts for 5000 sent (${duplicates} duplicates, ${missing.length} lost), ` +
      `${invalid.length} dead letters for 100 invalid (${invalid.length - invalidFound.size} duplicates), ${summaries.length} summaries; route metrics ${JSON.stringify(telemetry)}`,
  );
  expect(missing).toEqual([]);
  expect(invalidFound.size).toBe(100);
  // duplicates come only from publishes unconfirmed when the broker went away: bounded by what was in flight
  expect(duplicates).toBeLessThanOrEqual(1_000);
});
