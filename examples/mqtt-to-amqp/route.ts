/**
 * The flagship: MQTT devices → RabbitMQ, at-least-once end to end.
 *
 *   npm start                         # zero setup: embedded MQTT broker, in-memory RabbitMQ stand-in, simulated devices
 *   MQTT_URL=mqtt://127.0.0.1:1883 AMQP_URL=amqp://guest:guest@127.0.0.1:5672 npm start
 *   npm run simulate -- --devices 50 --rate 1000 --count 10000 --invalid 0.02    # devices, for the real brokers
 *
 * (`npm start` = `node ./bin/interchange.js run examples/mqtt-to-amqp/route.ts`.) The routes are in
 * `flow.ts`; what the flow does to a message is in `telemetry.ts`. `SIMULATE=1` (default without
 * `MQTT_URL`) also runs a fleet of simulated devices in this process; `SIMULATE=0` does not.
 * `MQTT_CONSUMERS=<n>` consumes over n connections on one shared subscription.
 *
 * With `AMQP_URL`, the bridge is durable: readings go through a local buffer (`BUFFER_DIR`, default
 * `.interchange/buffer`) so RabbitMQ outages cost no device message, and open summaries live in
 * PostgreSQL (`DATABASE_URL`) or an embedded PGlite (`STATE_DIR`, default `.interchange`). Several
 * instances: the same `MQTT_SHARE_GROUP` and `DATABASE_URL`, each its own `MQTT_CLIENT_ID` and `BUFFER_DIR`
 * (docs/scale-out.md).
 */
import { defineIntegration, redactUrl, type RunningIntegration, type StopHook } from 'interchange-eip';
import { describeReport, simulate } from '../device-simulator/simulator.ts';
import { environmentOf, flowModules, flowNames, flowRoutes, openSummaryStore } from './flow.ts';
import type { MqttTransport } from 'interchange-eip/adapters/mqtt';

/** `FLOW_PREFIX`: every MQTT topic and RabbitMQ name of the flow under a prefix (one broker, several flows: tenants, tests). */
const names = flowNames(process.env.FLOW_PREFIX ?? '');
const environment = environmentOf();
const flow = flowModules(names, environment);
const summaryStore = await openSummaryStore(names, environment);
const simulateDevices = process.env.SIMULATE === undefined ? environment.mqttUrl === undefined : process.env.SIMULATE === '1';
/** `MQTT_CONSUMERS=4`: four connections on a shared subscription (more throughput, per-device order not kept). */
const consumers = Number(process.env.MQTT_CONSUMERS ?? '1');
if (!Number.isInteger(consumers) || consumers < 1) throw new RangeError(`MQTT_CONSUMERS must be a whole number ≥ 1, got '${process.env.MQTT_CONSUMERS ?? ''}'`);
/** `MQTT_SHARE_GROUP=bridge`: this process is one of several instances sharing the devices (`$share/bridge/…`; each with its own `MQTT_CLIENT_ID` and `BUFFER_DIR`, one `DATABASE_URL`). */
const shareGroup = process.env.MQTT_SHARE_GROUP || undefined;
/** `SUMMARY_IDLE_MS`: a device's open summary completes after this long without a reading (default 5,000). */
const summaryIdleMs = Number(process.env.SUMMARY_IDLE_MS || '5000');
if (!Number.isInteger(summaryIdleMs) || summaryIdleMs < 1) throw new RangeError(`SUMMARY_IDLE_MS must be a whole number of milliseconds ≥ 1, got '${process.env.SUMMARY_IDLE_MS ?? ''}'`);

function onStart(integration: RunningIntegration): StopHook {
  const mqtt = integration.transport<MqttTransport>('mqtt');
  for (const line of [...flow.announce(mqtt), summaryStore.announcement]) console.log(`mqtt-to-amqp: ${line}`);
  if (!simulateDevices) {
    console.log(`mqtt-to-amqp: waiting for devices on '${names.telemetryTopic.replace('+deviceId', '+')}' (npm run simulate -- --url <MQTT_URL>)`);
    return () => {};
  }
  console.log(`mqtt-to-amqp: simulating 20 devices at 200 msgs/s (2 % invalid) → ${redactUrl(mqtt.url)}; SIMULATE=0 to turn off`);
  const stop = new AbortController();
  // the flow's topic is `[<prefix>/]devices/+deviceId/telemetry`: the simulator publishes under the same prefix
  const topicPrefix = names.telemetryTopic.startsWith('devices/') ? '' : (names.telemetryTopic.split('/devices/')[0] ?? '');
  const simulation = simulate({ url: mqtt.url, devices: 20, rate: 200, count: 0, invalid: 0.02, topicPrefix, signal: stop.signal }).then(
    (report) => `mqtt-to-amqp: simulator ${describeReport(report)}`,
    (error: unknown) => `mqtt-to-amqp: simulator failed: ${error instanceof Error ? error.message : String(error)}`,
  );
  return async () => {
    stop.abort();
    console.log(await simulation);
  };
}

/**
 * After the drain. With the stand-in (no `AMQP_URL`) the summaries of groups still open at Ctrl-C are
 * sent by then, so its counts are final; with a durable store they stay open there for the next start.
 */
async function onStopped(): Promise<void> {
  await summaryStore.close();
  if (flow.standIn === undefined) return;
  const depths = Object.entries(flow.standIn.queueDepths()).map(([queue, depth]) => `${queue} ${depth.messages}${depth.dropped > 0 ? ` (+${depth.dropped} dropped)` : ''}`);
  console.log(`mqtt-to-amqp: in-memory stand-in queues: ${depths.join(', ')}`);
}

export default defineIntegration({ routes: flowRoutes({ names, consumers, summaryIdleMs, completeSummariesOnStop: environment.amqpUrl === undefined, buffered: environment.bufferDir !== undefined, summaryRepository: summaryStore.repository, ...(shareGroup === undefined ? {} : { shareGroup }) }), modules: flow.modules, onStart, onStopped });
