import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { readUntilQuiet, sleep, until } from '../integration/amqp-support.ts';
import { checkReadings, e2eMessages, uniquePrefix } from '../integration/flagship-support.ts';
import { flowNames } from '../../examples/mqtt-to-amqp/flow.ts';
import type { SummaryState } from '../../examples/mqtt-to-amqp/telemetry.ts';
import { openEmbeddedDatabase, PostgresAggregationRepository } from '../../adapters/postgres/index.ts';
import { LinkProxy } from '../support/link-proxy.ts';
import { bridgeStarted, checkSummaryTotals, collectUntil, crashFixture, depthsShown, foldedReadings, publishAtFixedRate, startBridge, stateDirectory } from './flagship-durability-support.ts';

// The bridge SIGKILLed while its durable buffer holds thousands of readings (RabbitMQ cut off through a
// proxy) and while per-device summaries are open in its embedded store; restarted on the same state.
const { mqttUrl: mosquittoUrl, admin } = crashFixture('crash');

it('SIGKILL with 5,000+ readings in the buffer and summaries open, restarted: 0 readings lost, every device summary exact', async () => {
  const mqttUrl = mosquittoUrl();
  const prefix = uniquePrefix('crash');
  const names = flowNames(prefix);
  admin.track({ queues: [names.readingsQueue, names.alertsQueue, names.summariesQueue, names.invalidQueue], exchanges: [names.exchange, names.deadLetterExchange] });
  const state = stateDirectory('crash');
  const proxy = new LinkProxy();
  await proxy.start();
  const env = { MQTT_URL: mqttUrl, AMQP_URL: `amqp://guest:guest@127.0.0.1:${proxy.port}`, FLOW_PREFIX: prefix, MQTT_CLIENT_ID: `${prefix}bridge`.slice(0, 48), STATE_DIR: state, SUMMARY_IDLE_MS: '20000' }; // groups stay open through the cut and the kill
  const buffer = `buffer:${names.exchange}`;
  try {
    const first = startBridge(env);
    await bridgeStarted(first);
    const sent = e2eMessages(names.telemetryTopic.split('/devices/')[0] as string, { devices: 50, perDevice: 200, invalid: 0 });
    const devices = publishAtFixedRate(mqttUrl, sent, 1_000);
    await until(() => devices.published() >= 1_750, () => `published ${devices.published()}`, 30_000);
    await proxy.cut(); // RabbitMQ unreachable for this bridge: readings pile up in its buffer
    await until(() => (depthsShown(first, buffer).at(-1) ?? 0) >= 5_000, () => `buffer depths: ${depthsShown(first, buffer).slice(-3).join(', ')}`, 60_000);
    const heldAtKill = depthsShown(first, buffer).at(-1) ?? 0;
    first.signal('SIGKILL');
    await first.exited;

    // what the killed bridge left: open summary groups in its embedded store
    const database = await openEmbeddedDatabase({ dataDir: join(state, 'summaries') });
    const repository = await PostgresAggregationRepository.open<SummaryState>(database, { name: `${names.exchange}.summaries` });
    const left = await repository.counts();
    await database.close();
    expect(left.open, 'summary groups were open when the bridge was killed').toBeGreaterThan(0);

    await proxy.start();
    const second = startBridge(env);
    await bridgeStarted(second);
    await devices.done;
    // every reading folded into a summary has been confirmed by RabbitMQ before: then the queues hold them all
    const summaries = await collectUntil(names.summariesQueue, (got) => foldedReadings(got) >= 10_000, 180_000);
    await until(() => depthsShown(second, buffer).at(-1) === 0, () => `buffer depths: ${depthsShown(second, buffer).slice(-3).join(', ')}`, 60_000);
    const [readings, alerts] = await Promise.all([readUntilQuiet(names.readingsQueue, 1, 180_000), readUntilQuiet(names.alertsQueue, 1, 180_000)]);
    const { duplicates, missing } = checkReadings(sent, { readings, alerts });
    const totals = checkSummaryTotals(summaries, { devices: 50, perDevice: 200, size: 10 });
    await sleep(500);
    second.signal('SIGTERM');
    expect(await second.exited).toBe(0);
    console.log(
      `bridge SIGKILLed holding ${heldAtKill} buffered readings and ${left.open} open summaries (+${left.completed} unconfirmed): ` +
        `${readings.length + alerts.length} readings+alerts for 10000 sent (${duplicates} duplicates, ${missing.length} lost); ` +
        `${totals.distinct} distinct summaries (${totals.duplicates} published twice), every device's exact`,
    );
    expect(missing).toEqual([]);
  } finally {
    await proxy.cut();
    rmSync(state, { recursive: true, force: true });
  }
});
