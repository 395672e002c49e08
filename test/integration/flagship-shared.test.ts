import { randomBytes } from 'node:crypto';
import mqtt from 'mqtt';
import { afterAll, expect, it } from 'vitest';
import { AMQP_URL, BrokerAdmin, readUntilQuiet, sleep, until } from './amqp-support.ts';
import { MOSQUITTO_URL, requireBroker } from './mqtt-helpers.ts';
import { checkInvalid, checkReadings, e2eMessages, publishPaced, startFlow, uniquePrefix } from './flagship-support.ts';

// The flagship scaled out over a shared subscription (`consumers: 3`): every message once, whichever
// connection took it.
const admin = new BrokerAdmin();
afterAll(() => admin.close());

it('three consumer connections on one shared subscription: 1,000 readings and 20 dead letters, none lost, none twice', async () => {
  await requireBroker(MOSQUITTO_URL);
  const prefix = uniquePrefix('shared');
  const running = await startFlow(prefix, { mqttUrl: MOSQUITTO_URL, amqpUrl: AMQP_URL }, { consumers: 3, summaries: false });
  const { names, app } = running;
  admin.track({ queues: [names.readingsQueue, names.alertsQueue, names.summariesQueue, names.invalidQueue], exchanges: [names.exchange, names.deadLetterExchange] });
  const topicPrefix = names.telemetryTopic.split('/devices/')[0] as string;
  const sent = e2eMessages(topicPrefix, { devices: 10, perDevice: 100, invalid: 20 });
  const routes = ['telemetry-1', 'telemetry-2', 'telemetry-3'].map((id) => app.route(id).metrics);
  const taken = (): number => routes.reduce((sum, metrics) => sum + metrics.received, 0);
  try {
    // the group's members subscribe as they connect: wait until each has taken a probe
    const probe = await mqtt.connectAsync(MOSQUITTO_URL, { protocolVersion: 5, clean: true, clientId: `fl-probe-${randomBytes(3).toString('hex')}` });
    for (let n = 0; routes.some((metrics) => metrics.received === 0); n += 1) {
      if (n > 400) throw new Error(`the shared subscription never reached every member: ${JSON.stringify(app.metrics())}`);
      const reading = { deviceId: 'probe', ts: new Date(Date.UTC(2026, 0, 1) + n).toISOString(), temperature: 1 };
      await probe.publishAsync(`${topicPrefix}/devices/probe/telemetry`, JSON.stringify(reading), { qos: 1 });
      await sleep(25);
    }
    await probe.endAsync();
    const before = taken();
    await publishPaced(MOSQUITTO_URL, sent, () => taken() - before);
    await until(() => taken() - before >= sent.length && routes.every((metrics) => metrics.inFlight === 0), () => `flow: ${JSON.stringify(app.metrics())}`, 50_000);
  } finally {
    await running.stop();
  }
  const [readings, alerts, invalid] = await Promise.all([
    readUntilQuiet(names.readingsQueue, 1, 30_000),
    readUntilQuiet(names.alertsQueue, 1, 30_000),
    readUntilQuiet(names.invalidQueue, 20, 30_000),
  ]);
  const withoutProbes = (list: typeof readings) => list.filter((message) => (message.body as { deviceId?: string }).deviceId !== 'probe');
  expect(checkReadings(sent, { readings: withoutProbes(readings), alerts: withoutProbes(alerts) })).toEqual({ duplicates: 0, missing: [] });
  expect(checkInvalid(sent, invalid).size).toBe(20);
  expect(invalid).toHaveLength(20);
  expect(routes.every((metrics) => metrics.received > 1)).toBe(true); // the work was shared
});
