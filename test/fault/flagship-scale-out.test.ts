import { join } from 'node:path';
import { expect, it } from 'vitest';
import { AMQP_URL, readUntilQuiet, sleep, until } from '../integration/amqp-support.ts';
import { checkReadings, e2eMessages, uniquePrefix } from '../integration/flagship-support.ts';
import { flowNames } from '../../examples/mqtt-to-amqp/flow.ts';
import type { CliRun } from '../support/cli-process.ts';
import { bridgeStarted, checkSummaryTotals, collectUntil, foldedReadings, crashFixture, publishAtFixedRate, startBridge } from './flagship-durability-support.ts';

// Three processes of the bridge on the same brokers and the same PostgreSQL: one shared MQTT
// subscription group, each its own client id and buffer, one summary repository. One is SIGKILLed
// mid-stream and comes back on its own state (as a StatefulSet restarts a pod with its volume).
const DATABASE_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const { mqttUrl: mosquittoUrl, admin, directory } = crashFixture('scale');

it('three bridges share 50 devices × 200 readings; one SIGKILLed mid-stream and restarted: 0 lost, per-device summaries exact', async () => {
  const mqttUrl = mosquittoUrl();
  const prefix = uniquePrefix('scale');
  const names = flowNames(prefix);
  admin.track({ queues: [names.readingsQueue, names.alertsQueue, names.summariesQueue, names.invalidQueue], exchanges: [names.exchange, names.deadLetterExchange] });
  const envOf = (instance: number): Record<string, string> => ({
    MQTT_URL: mqttUrl,
    AMQP_URL,
    DATABASE_URL,
    FLOW_PREFIX: prefix,
    MQTT_SHARE_GROUP: `${prefix}bridge`,
    MQTT_CLIENT_ID: `${prefix}b${instance}`.slice(0, 48),
    STATE_DIR: join(directory, `instance-${instance}`),
  });
  const bridges: CliRun[] = [1, 2, 3].map((instance) => startBridge(envOf(instance)));
  await Promise.all(bridges.map(bridgeStarted));

  const sent = e2eMessages(names.telemetryTopic.split('/devices/')[0] as string, { devices: 50, perDevice: 200, invalid: 0 });
  const devices = publishAtFixedRate(mqttUrl, sent, 1_000);
  await until(() => devices.published() >= 4_000, () => `published ${devices.published()}`, 30_000);
  const victim = bridges[1] as CliRun;
  victim.signal('SIGKILL');
  await victim.exited;
  await sleep(1_000);
  const restarted = startBridge(envOf(2));
  await bridgeStarted(restarted);
  await devices.done;

  // every reading folded into a summary has been confirmed by RabbitMQ before: then the queues hold them all
  const summaries = await collectUntil(names.summariesQueue, (got) => foldedReadings(got) >= 10_000, 180_000);
  const [readings, alerts] = await Promise.all([readUntilQuiet(names.readingsQueue, 1, 180_000), readUntilQuiet(names.alertsQueue, 1, 180_000)]);
  const { duplicates, missing } = checkReadings(sent, { readings, alerts });
  const totals = checkSummaryTotals(summaries, { devices: 50, perDevice: 200, size: 10 });
  const survivors = [bridges[0] as CliRun, bridges[2] as CliRun, restarted];
  for (const bridge of survivors) bridge.signal('SIGTERM');
  expect(await Promise.all(survivors.map((bridge) => bridge.exited))).toEqual([0, 0, 0]);
  console.log(
    `3 instances, one SIGKILLed: ${readings.length + alerts.length} readings+alerts for 10000 sent (${duplicates} duplicates, ${missing.length} lost); ` +
      `${totals.distinct} distinct summaries (${totals.duplicates} published twice), every device's exact`,
  );
  expect(missing).toEqual([]);
});
