import { rmSync } from 'node:fs';
import { afterAll, afterEach, expect, it } from 'vitest';
import { ensureRabbitRunning, ensureRabbitRunningAsync, rabbitmqctlAsync } from './rabbitmq-control.ts';
import { AMQP_URL, BrokerAdmin, readUntilQuiet, sleep, until } from '../integration/amqp-support.ts';
import { MOSQUITTO_URL, requireBroker } from '../integration/mqtt-helpers.ts';
import { checkInvalid, checkReadings, e2eMessages, uniquePrefix } from '../integration/flagship-support.ts';
import { flowNames } from '../../examples/mqtt-to-amqp/flow.ts';
import { killCliProcesses } from '../support/cli-process.ts';
import { bridgeStarted, depthsShown, mosquittoLogOffset, mosquittoLogSince, publishAtFixedRate, startBridge, stateDirectory } from './flagship-durability-support.ts';

// The operator's experiment of issue 15, as a test: the packaged Mosquitto (max_queued_messages 1,000),
// devices at a fixed rate that does not slow down for the bridge, RabbitMQ's application stopped for
// more than 10 s mid-stream. Always leaves RabbitMQ running.
const DATABASE_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const admin = new BrokerAdmin();
const directories: string[] = [];
afterEach(() => killCliProcesses());
afterAll(async () => {
  ensureRabbitRunning();
  await admin.close();
  for (const directory of directories) rmSync(directory, { recursive: true, force: true });
});

it('RabbitMQ stopped for 10+ s while devices publish 20,000 readings at 1,000/s into the packaged Mosquitto: every reading arrives, the buffer rises and drains, Mosquitto drops nothing', async () => {
  await requireBroker(MOSQUITTO_URL);
  const prefix = uniquePrefix('outage');
  const names = flowNames(prefix);
  admin.track({ queues: [names.readingsQueue, names.alertsQueue, names.summariesQueue, names.invalidQueue], exchanges: [names.exchange, names.deadLetterExchange] });
  const state = stateDirectory('outage');
  directories.push(state);
  const clientId = `${prefix}bridge`.slice(0, 48);
  const logFrom = mosquittoLogOffset();
  // summaries in PostgreSQL, the production configuration (docs/scale-out.md): the embedded PGlite runs in
  // the bridge's thread, and its syncs to disk have paused the intake for seconds at this rate
  const bridge = startBridge({ MQTT_URL: MOSQUITTO_URL, AMQP_URL, DATABASE_URL, FLOW_PREFIX: prefix, MQTT_CLIENT_ID: clientId, STATE_DIR: state });
  await bridgeStarted(bridge);
  expect(bridge.stdout()).toContain(`durable buffer in ${state}/buffer`);

  const sent = e2eMessages(names.telemetryTopic.split('/devices/')[0] as string, { devices: 100, perDevice: 200, invalid: 100 });
  const valid = sent.filter((message) => message.reading !== undefined).length;
  expect(valid).toBe(20_000);
  const devices = publishAtFixedRate(MOSQUITTO_URL, sent, 1_000);
  let stopped = false;
  try {
    await until(() => devices.published() >= 3_000, () => `published ${devices.published()}`, 30_000);
    // asynchronously: the devices publish from this process, and must not pause while rabbitmqctl runs
    await rabbitmqctlAsync('stop_app');
    stopped = true;
    const stoppedAt = Date.now();
    await sleep(10_500);
    await ensureRabbitRunningAsync();
    stopped = false;
    const outageMs = Date.now() - stoppedAt;
    expect(outageMs).toBeGreaterThanOrEqual(10_000);
    expect(devices.published(), 'the devices were still publishing when RabbitMQ came back').toBeLessThan(sent.length);
    await devices.done;
    // the devices kept their clock (no pause of this process followed by a burst the broker would have to queue)
    expect(devices.largestBurst()).toBeLessThan(200);
  } finally {
    if (stopped) ensureRabbitRunning();
  }

  // the buffer drains once RabbitMQ is back (the bridge reconnects with backoff): then everything is in the queues
  const buffer = `buffer:${names.exchange}`;
  await until(() => depthsShown(bridge, buffer).at(-1) === 0, () => `buffer depths shown: ${depthsShown(bridge, buffer).slice(-5).join(', ')}`, 180_000);
  const depths = depthsShown(bridge, buffer);
  const [readings, alerts, invalid] = await Promise.all([
    readUntilQuiet(names.readingsQueue, 1, 180_000),
    readUntilQuiet(names.alertsQueue, 1, 180_000),
    readUntilQuiet(names.invalidQueue, 100, 180_000),
  ]);
  const { duplicates, missing } = checkReadings(sent, { readings, alerts });
  const invalidFound = checkInvalid(sent, invalid);
  const dropped = mosquittoLogSince(logFrom)
    .split('\n')
    .filter((line) => line.includes('dropped') && line.includes(clientId));
  bridge.signal('SIGTERM');
  expect(await bridge.exited).toBe(0);
  console.log(
    `RabbitMQ outage: ${readings.length + alerts.length} readings+alerts for ${valid} sent (${duplicates} duplicates, ${missing.length} lost), ` +
      `${invalid.length} dead letters for 100 invalid; buffer depth peaked at ${Math.max(...depths)}, ended at ${depths.at(-1)}; Mosquitto drop lines: ${dropped.length}`,
  );
  expect(missing).toEqual([]);
  expect(invalidFound.size).toBe(100);
  expect(Math.max(...depths), 'the buffer took what RabbitMQ could not').toBeGreaterThanOrEqual(5_000);
  expect(depths.at(-1)).toBe(0);
  expect(dropped).toEqual([]);
});
