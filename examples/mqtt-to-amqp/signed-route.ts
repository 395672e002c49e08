/**
 * The flagship with signed devices: every reading must carry its device's signature, checked by the
 * bridge with the device's own key, before anything else happens to it (`signed-flow.ts`).
 *
 *   MQTT_URL=mqtt://127.0.0.1:1883 SIMULATE=1 npm run example:signed-bridge     # in-memory RabbitMQ stand-in, signing devices in process (2 % forged)
 *   export DEVICE_MASTER_SECRET=$(openssl rand -base64 32)
 *   MQTT_URL=mqtt://127.0.0.1:1883 AMQP_URL=amqp://guest:guest@127.0.0.1:5672 npm run example:signed-bridge
 *   npm run simulate -- --sign --forge 0.05      # devices, in another terminal (same DEVICE_MASTER_SECRET)
 *
 * An MQTT 5 broker is needed (`MQTT_URL`): the signature is an MQTT 5 user property, and the embedded
 * broker (aedes) speaks MQTT 3.1.1 only. Every other variable of `route.ts` applies. `DEVICE_MASTER_SECRET` (or `DEVICE_MASTER_SECRET_FILE`): the
 * secret each device's HS256 key is derived from (`signed-devices.ts`; production provisions a key per
 * device instead and looks it up: `signedFlowRoutes({ deviceKeys })`). Unset with in-process devices, a
 * random one serves this process alone. `FORGE` (default 0.02): the in-process devices' share of
 * forgeries. Rejected readings go to `telemetry.invalid` with `x-interchange-signature-rejected`.
 */
import { randomBytes } from 'node:crypto';
import { defineIntegration, redactUrl, type RunningIntegration, type StopHook } from 'interchange-eip';
import type { MqttTransport } from 'interchange-eip/adapters/mqtt';
import { describeReport, simulate } from '../device-simulator/simulator.ts';
import { environmentOf, flowModules, flowNames, openSummaryStore } from './flow.ts';
import { derivedDeviceKeys, masterSecretFromEnvironment } from './signed-devices.ts';
import { signedFlowRoutes, VERIFY_STEP_ID } from './signed-flow.ts';

const names = flowNames(process.env.FLOW_PREFIX ?? '');
const environment = environmentOf();
if (environment.mqttUrl === undefined) throw new Error('the signed bridge needs an MQTT 5 broker (the signature is a user property; the embedded broker speaks MQTT 3.1.1): set MQTT_URL, e.g. MQTT_URL=mqtt://127.0.0.1:1883');
const simulateDevices = process.env.SIMULATE === '1';
const configuredSecret = masterSecretFromEnvironment();
if (configuredSecret === undefined && !simulateDevices) throw new Error('the signed bridge needs the devices\' master secret: set DEVICE_MASTER_SECRET (at least 32 bytes, e.g. openssl rand -base64 32) or DEVICE_MASTER_SECRET_FILE (or SIMULATE=1: devices in process, a random secret)');
const masterSecret = configuredSecret ?? randomBytes(32);
const forge = Number(process.env.FORGE ?? '0.02');
if (!(forge >= 0 && forge <= 1)) throw new RangeError(`FORGE must be a share within [0, 1], got '${process.env.FORGE ?? ''}'`);
const consumers = Number(process.env.MQTT_CONSUMERS ?? '1');
if (!Number.isInteger(consumers) || consumers < 1) throw new RangeError(`MQTT_CONSUMERS must be a whole number ≥ 1, got '${process.env.MQTT_CONSUMERS ?? ''}'`);
const shareGroup = process.env.MQTT_SHARE_GROUP || undefined;
const summaryIdleMs = Number(process.env.SUMMARY_IDLE_MS || '5000');
if (!Number.isInteger(summaryIdleMs) || summaryIdleMs < 1) throw new RangeError(`SUMMARY_IDLE_MS must be a whole number of milliseconds ≥ 1, got '${process.env.SUMMARY_IDLE_MS ?? ''}'`);

const flow = flowModules(names, environment);
const summaryStore = await openSummaryStore(names, environment);

function onStart(integration: RunningIntegration): StopHook {
  const mqtt = integration.transport<MqttTransport>('mqtt');
  for (const line of [...flow.announce(mqtt), summaryStore.announcement]) console.log(`mqtt-to-amqp (signed): ${line}`);
  console.log(
    `mqtt-to-amqp (signed): every reading must be signed by its device (MQTT 5 user property 'signature', key 'device-<deviceId>' ` +
      `${configuredSecret === undefined ? 'derived from a RANDOM master secret of this process: devices outside it cannot sign — set DEVICE_MASTER_SECRET' : 'derived from DEVICE_MASTER_SECRET'}); ` +
      `rejected → ${names.invalidQueue} with x-interchange-signature-rejected`,
  );
  if (!simulateDevices) {
    console.log(`mqtt-to-amqp (signed): waiting for devices (DEVICE_MASTER_SECRET=… npm run simulate -- --sign --url <MQTT_URL>)`);
    return () => {};
  }
  console.log(`mqtt-to-amqp (signed): SIMULATE=1: simulating 20 signing devices at 200 msgs/s (2 % invalid, ${(forge * 100).toFixed(1)} % of valid readings forged) → ${redactUrl(mqtt.url)}`);
  const stop = new AbortController();
  const topicPrefix = names.telemetryTopic.startsWith('devices/') ? '' : (names.telemetryTopic.split('/devices/')[0] ?? '');
  const simulation = simulate({ url: mqtt.url, devices: 20, rate: 200, count: 0, invalid: 0.02, topicPrefix, signingSecret: masterSecret, forge, signal: stop.signal }).then(
    (report) => `mqtt-to-amqp (signed): simulator ${describeReport(report)}`,
    (error: unknown) => `mqtt-to-amqp (signed): simulator failed: ${error instanceof Error ? error.message : String(error)}`,
  );
  return async () => {
    stop.abort();
    console.log(await simulation);
  };
}

async function onStopped(integration: RunningIntegration): Promise<void> {
  await summaryStore.close();
  const verdicts: Record<string, number> = {};
  for (const route of Object.values(integration.metrics())) {
    for (const [name, count] of Object.entries(route.steps[VERIFY_STEP_ID]?.counts ?? {})) verdicts[name] = (verdicts[name] ?? 0) + count;
  }
  console.log(`mqtt-to-amqp (signed): refused signatures: ${Object.entries(verdicts).map(([name, count]) => `${name.replace(/^rejected-/, '')} ${count}`).join(', ') || 'none'}`);
  if (flow.standIn === undefined) return;
  const depths = Object.entries(flow.standIn.queueDepths()).map(([queue, depth]) => `${queue} ${depth.messages}${depth.dropped > 0 ? ` (+${depth.dropped} dropped)` : ''}`);
  console.log(`mqtt-to-amqp (signed): in-memory stand-in queues: ${depths.join(', ')}`);
}

export default defineIntegration({
  routes: signedFlowRoutes({
    names,
    deviceKeys: derivedDeviceKeys(masterSecret),
    consumers,
    summaryIdleMs,
    completeSummariesOnStop: environment.amqpUrl === undefined,
    buffered: environment.bufferDir !== undefined,
    summaryRepository: summaryStore.repository,
    ...(shareGroup === undefined ? {} : { shareGroup }),
  }),
  modules: flow.modules,
  onStart,
  onStopped,
});
