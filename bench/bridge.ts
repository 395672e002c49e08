// Flagship bridge benchmark (issue #6): MQTT devices → RabbitMQ, three bridges in one run, doing the
// same work on the same messages — parse, validate against device.telemetry@1 (the very ajv function
// the schema registry compiles), check the topic's device id, translate to backend.reading@1 (the
// flagship's own `toBackendReading`), route by temperature to the topic exchange (persistent,
// confirmed), dead-letter the invalid ones to the fanout DLX with the original bytes and the reason:
//
//  - naive-safe:   mqtt.js + amqplib, PUBACK only after the confirm, the obvious way (mqtt.js'
//                  `handleMessage` callback after the confirm: one message at a time).
//  - fast-unsafe:  mqtt.js + amqplib, PUBACK at once, confirms awaited in batches (loses on a crash).
//  - interchange:  the flagship's own `telemetry` route (examples/mqtt-to-amqp), at-least-once:
//                  PUBACK only after the confirm, pipelined in arrival order, confirms batched.
//  - interchange-shared: the same with `consumers: 4` — four connections on one shared subscription,
//                  each with its own broker window (per-device order not kept).
//  - interchange-buffered: the flagship's bridge through its durable local buffer (`buffered: true`,
//                  issue 15): PUBACK once the reading is fsync'd in the buffer (a fresh temporary
//                  directory per child, removed after), a second route forwards it to RabbitMQ.
//
// `npx tsx bench/bridge.ts`. Each bridge runs in a child process of its own; the rounds interleave
// the bridges and the report gives medians. Throughput: BENCH_BRIDGE_MESSAGES (default 20,000)
// published as fast as the broker takes them (at most BENCH_BRIDGE_WINDOW, default 2,000, published
// and not yet out of RabbitMQ), from the first publish to the last message read from the output
// queues. Latency: BENCH_BRIDGE_LATENCY_MESSAGES (default 5,000) at fixed rates BENCH_BRIDGE_RATES
// (default 1000,2000 msgs/s), publish → read from the output queue, p50/p99.
// BENCH_BRIDGE_ROUNDS (default 3), BENCH_BRIDGE_ONLY=naive-safe,fast-unsafe,interchange,interchange-shared,interchange-buffered.
// Brokers: a Mosquitto of its own on 127.0.0.1:BENCH_BRIDGE_MQTT_PORT (default 18840; the packaged one
// drops beyond max_queued_messages 1,000 per subscriber; here that limit is off, max_inflight_messages
// keeps the packaged 20), RabbitMQ at AMQP_URL (default amqp://guest:guest@127.0.0.1:5672).
// 1 % of the messages are invalid; every payload is ~120 bytes of JSON.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, realpathSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { connect as amqpConnect, type ConfirmChannel, type Options } from 'amqplib';
import mqtt, { type IPublishPacket, type MqttClient } from 'mqtt';
import { createIntegration, silentLogger } from '../facade/index.ts';
import { JsonSchemaRegistry } from '../src/spi.ts';
import { flowModules, flowNames, flowRoutes, flowTopology, SCHEMAS_DIRECTORY, type FlowNames } from '../examples/mqtt-to-amqp/flow.ts';
import { routingKeyOf, toBackendReading } from '../examples/mqtt-to-amqp/telemetry.ts';
import type { DeviceTelemetryV1 } from '../schemas/types.generated.ts';
import { median, percentile } from './stats.ts';
import { startBenchMosquitto } from './bench-mosquitto.ts';

const AMQP_URL = process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const MQTT_PORT = Number(process.env.BENCH_BRIDGE_MQTT_PORT ?? '18840');
const MQTT_URL = `mqtt://127.0.0.1:${MQTT_PORT}`;
export const MESSAGES = Number(process.env.BENCH_BRIDGE_MESSAGES ?? '20000');
const WINDOW = Number(process.env.BENCH_BRIDGE_WINDOW ?? '2000');
export const LATENCY_MESSAGES = Number(process.env.BENCH_BRIDGE_LATENCY_MESSAGES ?? '5000');
export const RATES = (process.env.BENCH_BRIDGE_RATES ?? '1000,2000').split(',').map(Number);
export const ROUNDS = Number(process.env.BENCH_BRIDGE_ROUNDS ?? '3');
const BRIDGES = ['naive-safe', 'fast-unsafe', 'interchange', 'interchange-shared', 'interchange-buffered'] as const;
type Bridge = (typeof BRIDGES)[number];
/** A bridge a child can run: these, and issue 16's `interchange-observed` (bench/observability.ts runs it). */
export type BridgeKind = Bridge | 'interchange-observed';
const ONLY = process.env.BENCH_BRIDGE_ONLY?.split(',') as Bridge[] | undefined;
const STALL_MS = 20_000;
/** Device connections publishing (each has Mosquitto's 20 QoS 1 messages in flight at most). */
const PUBLISHERS = Number(process.env.BENCH_BRIDGE_PUBLISHERS ?? '4');
/** Mosquitto's max_inflight_messages: QoS 1 messages unacknowledged per client (the packaged default is 20). */
const INFLIGHT = Number(process.env.BENCH_BRIDGE_INFLIGHT ?? '20');

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

// ─── the raw bridges (child process) ──────────────────────────────────────────────────────────────

/** What a raw bridge publishes for one MQTT message: the reading, or the dead letter. */
interface Outgoing {
  readonly exchange: string;
  readonly routingKey: string;
  readonly content: Buffer;
  readonly options: Options.Publish;
}

/** The raw bridges' message logic: what the flagship does, by hand, with the same schema and translation. */
function rawLogic(names: FlowNames): (packet: IPublishPacket) => Outgoing {
  const validate = JsonSchemaRegistry.fromDirectory(SCHEMAS_DIRECTORY).validator('device.telemetry@1');
  const deadLetter = (packet: IPublishPacket, id: string, code: string, reason: string): Outgoing => ({
    exchange: names.deadLetterExchange,
    routingKey: '',
    content: packet.payload as Buffer,
    options: { persistent: true, mandatory: true, messageId: id, headers: { 'x-interchange-error-code': code, 'x-interchange-error': reason, 'x-mqtt-topic': packet.topic } },
  });
  return (packet) => {
    const user = packet.properties?.userProperties?.['message-id'];
    const id = typeof user === 'string' ? user : randomUUID();
    let body: unknown;
    try {
      body = JSON.parse((packet.payload as Buffer).toString('utf8'));
    } catch (error) {
      return deadLetter(packet, id, 'PAYLOAD_UNPARSEABLE', (error as Error).message);
    }
    if (!validate(body)) return deadLetter(packet, id, 'SCHEMA_INVALID', (validate.errors ?? []).map((e) => `${e.instancePath} ${e.message ?? e.keyword}`).join('; '));
    const telemetry = body as DeviceTelemetryV1;
    const levels = packet.topic.split('/');
    const topicDevice = levels[levels.length - 2];
    if (topicDevice !== telemetry.deviceId) return deadLetter(packet, id, 'DEVICE_MISMATCH', `topic device id '${topicDevice ?? ''}' does not match body deviceId '${telemetry.deviceId}'`);
    if (!(Date.parse(telemetry.ts) >= 0)) return deadLetter(packet, id, 'TIMESTAMP_UNUSABLE', `ts '${telemetry.ts}' unusable`);
    const reading = toBackendReading(telemetry);
    return {
      exchange: names.exchange,
      routingKey: routingKeyOf(reading),
      content: Buffer.from(JSON.stringify(reading)),
      options: { persistent: true, mandatory: true, contentType: 'application/json', messageId: id, correlationId: id, headers: { 'x-schema': 'backend.reading@1' } },
    };
  };
}

async function rawBridge(kind: 'naive-safe' | 'fast-unsafe', names: FlowNames): Promise<() => Promise<void>> {
  const logic = rawLogic(names);
  const connection = await amqpConnect(AMQP_URL);
  const channel: ConfirmChannel = await connection.createConfirmChannel();
  const client: MqttClient = await mqtt.connectAsync(MQTT_URL, { protocolVersion: 5, clean: true, clientId: `bench-${kind}-${randomBytes(3).toString('hex')}`, reconnectPeriod: 0 });
  (client.stream as unknown as { setNoDelay?: (on: boolean) => void }).setNoDelay?.(true);
  if (kind === 'naive-safe') {
    // the obvious safe way: mqtt.js sends the PUBACK when this callback runs, i.e. after the confirm
    client.handleMessage = (packet, done) => {
      const out = logic(packet);
      channel.publish(out.exchange, out.routingKey, out.content, out.options, (error: unknown) => done(error === null || error === undefined ? undefined : (error as Error)));
    };
  } else {
    // fast and unsafe: mqtt.js acknowledges at once; confirms are awaited in batches, nothing waits on them
    let unconfirmed = 0;
    client.on('message', (_topic, _payload, packet) => {
      const out = logic(packet);
      channel.publish(out.exchange, out.routingKey, out.content, out.options);
      unconfirmed += 1;
      if (unconfirmed >= 500) {
        unconfirmed = 0;
        channel.waitForConfirms().catch((error: unknown) => console.error('fast-unsafe: confirms failed (messages lost)', error));
      }
    });
    const flush = setInterval(() => {
      if (unconfirmed > 0) {
        unconfirmed = 0;
        channel.waitForConfirms().catch(() => undefined);
      }
    }, 5);
    client.once('close', () => clearInterval(flush));
  }
  await client.subscribeAsync(names.telemetryTopic.replace('+deviceId', '+'), { qos: 1 });
  return async () => {
    await client.endAsync();
    await channel.close().catch(() => undefined);
    await connection.close().catch(() => undefined);
  };
}

/**
 * The flagship's bare bridge (no summaries); `buffered`: through the durable buffer in a fresh temporary directory, removed at stop;
 * `observed` (issue 16): with Prometheus metrics and the tracing observer (no OpenTelemetry SDK registered).
 */
async function interchangeBridge(names: FlowNames, consumers: number, buffered = false, observed = false): Promise<() => Promise<void>> {
  const bufferDir = buffered ? mkdtempSync(join(tmpdir(), 'bench-bridge-buffer-')) : undefined;
  const environment = { mqttUrl: MQTT_URL, amqpUrl: AMQP_URL, mqttClientId: `bench-ic-${randomBytes(3).toString('hex')}`, ...(bufferDir === undefined ? {} : { bufferDir }) };
  const flow = flowModules(names, environment, { mqtt: { persistentSession: false } });
  const app = createIntegration({ logger: silentLogger, modules: flow.modules, routes: flowRoutes({ names, summaries: false, consumers, buffered }) });
  if (observed) {
    const { createPrometheusMetrics, tracingObserver } = await import('../facade/observability/index.ts');
    createPrometheusMetrics(app);
    app.observe(tracingObserver());
  }
  await app.start();
  return async () => {
    try {
      await app.stop({ drainTimeoutMs: 5_000 });
    } finally {
      if (bufferDir !== undefined) rmSync(bufferDir, { recursive: true, force: true });
    }
  };
}

async function child(kind: BridgeKind, prefix: string): Promise<void> {
  const names = flowNames(prefix);
  const stop =
    kind === 'naive-safe' || kind === 'fast-unsafe'
      ? await rawBridge(kind, names)
      : await interchangeBridge(names, kind === 'interchange-shared' ? 4 : 1, kind === 'interchange-buffered', kind === 'interchange-observed');
  console.log('ready');
  await new Promise<void>((resolve) => process.once('SIGTERM', resolve));
  await stop();
  process.exit(0);
}

// ─── the orchestrator ─────────────────────────────────────────────────────────────────────────────


function startChild(kind: BridgeKind, prefix: string): Promise<ChildProcess> {
  const profile = process.env.BENCH_BRIDGE_PROFILE; // a directory: each child writes a .cpuprofile there
  const flags = profile === undefined ? [] : ['--cpu-prof', '--cpu-prof-dir', profile];
  const proc = spawn(process.execPath, [...flags, '--conditions=interchange-source', '--import', 'tsx', fileURLToPath(import.meta.url), '--child', kind, prefix], {
    cwd: fileURLToPath(new URL('..', import.meta.url)), // where tsx resolves
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return new Promise((resolve, reject) => {
    const lines = createInterface({ input: proc.stdout as NodeJS.ReadableStream });
    lines.on('line', (line) => {
      if (line === 'ready') resolve(proc);
      else console.log(`  [${kind}] ${line}`);
    });
    proc.once('exit', (code) => reject(new Error(`bench: ${kind} bridge exited with ${String(code)} before it was ready`)));
  });
}

async function stopChild(proc: ChildProcess): Promise<void> {
  if (proc.exitCode !== null) return;
  await new Promise<void>((resolve) => {
    proc.once('exit', () => resolve());
    proc.kill('SIGTERM');
  });
}

/** The devices' messages: ~120-byte JSON telemetry, 50 devices, 1 % invalid (bad JSON, schema, device id mismatch in turn). */
function payloads(topicPrefix: string, count: number): { topic: string; payload: Buffer; key?: string }[] {
  return Array.from({ length: count }, (_, n) => {
    const deviceId = `dev-${String(n % 50).padStart(4, '0')}`;
    const topic = `${topicPrefix}/devices/${deviceId}/telemetry`;
    const timestamp = Date.UTC(2026, 0, 1) + n;
    const reading = { deviceId, ts: new Date(timestamp).toISOString(), temperature: (n % 700) / 10, humidity: 40 + (n % 30), battery: 95 };
    if (n % 100 !== 99) return { topic, payload: Buffer.from(JSON.stringify(reading)), key: `${deviceId}@${timestamp}` };
    const kind = ((n - 99) / 100) % 3;
    const bad = kind === 0 ? JSON.stringify(reading).slice(0, 40) : kind === 1 ? JSON.stringify({ ...reading, temperature: 'hot' }) : JSON.stringify({ ...reading, deviceId: 'dev-9999' });
    return { topic, payload: Buffer.from(bad) };
  });
}

/**
 * Reads the output queues (readings, alerts, invalid) and reports each arrival: a reading by its
 * device and timestamp (the flagship gives readings ids of its own, not the device's), a dead letter
 * without a key.
 */
async function outputReader(names: FlowNames, onArrival: (key: string | undefined) => void): Promise<() => Promise<void>> {
  const connection = await amqpConnect(AMQP_URL);
  const channel = await connection.createChannel();
  await channel.prefetch(5_000);
  for (const queue of [names.readingsQueue, names.alertsQueue, names.invalidQueue]) {
    await channel.consume(queue, (message) => {
      if (message === null) return;
      if (queue === names.invalidQueue) return onArrival(undefined);
      const reading = JSON.parse(message.content.toString('utf8')) as { deviceId: string; timestamp: number };
      onArrival(`${reading.deviceId}@${reading.timestamp}`);
    }, { noAck: true });
  }
  return async () => {
    await connection.close();
  };
}

export interface Measurement {
  readonly throughput: number;
  readonly latency: Record<number, { readonly p50: number; readonly p99: number }>;
}

/**
 * `ROUNDS` interleaved rounds of `kinds` against one rig (each kind once per round, in order), a line per
 * run (with `suffix()` appended, e.g. the load average); the measurements by kind, in round order.
 */
export async function measureRounds<K extends BridgeKind>(kinds: readonly K[], prefix: string, suffix: () => string = () => ''): Promise<Map<K, Measurement[]>> {
  const { publishers, close } = await openRig(prefix);
  const results = new Map<K, Measurement[]>(kinds.map((kind) => [kind, []]));
  try {
    for (let round = 1; round <= ROUNDS; round += 1) {
      for (const kind of kinds) {
        const result = await measure(kind, prefix, publishers);
        results.get(kind)?.push(result);
        const latency = RATES.map((rate) => `${rate}/s p50 ${result.latency[rate]?.p50.toFixed(1)} p99 ${result.latency[rate]?.p99.toFixed(1)} ms`).join(', ');
        console.log(`round ${round} ${kind.padEnd(20)} ${result.throughput.toFixed(0).padStart(6)} msgs/s; ${latency}${suffix()}`);
      }
    }
  } finally {
    await close();
  }
  return results;
}

/** One bridge's throughput and latency at the fixed rates, in a child process of its own, against a rig (`openRig`). */
export async function measure(kind: BridgeKind, prefix: string, publishers: readonly MqttClient[]): Promise<Measurement> {
  const names = flowNames(prefix);
  const topicPrefix = names.telemetryTopic.split('/devices/')[0] as string;
  const sentAt = new Map<string, number>();
  const latencies: number[] = [];
  let arrived = 0;
  let probed = false;
  let wake: (() => void) | undefined;
  const stopReader = await outputReader(names, (key) => {
    if (key?.startsWith('probe@') === true) probed = true;
    else {
      arrived += 1;
      const at = key === undefined ? undefined : sentAt.get(key);
      if (at !== undefined) latencies.push(performance.now() - at);
    }
    wake?.();
  });
  const proc = await startChild(kind, prefix);
  try {
    let turn = 0;
    const publish = (topic: string, payload: Buffer, id: string): Promise<unknown> => {
      turn = (turn + 1) % publishers.length;
      return (publishers[turn] as MqttClient).publishAsync(topic, payload, { qos: 1, properties: { userProperties: { 'message-id': id } } });
    };
    const probe = { topic: `${topicPrefix}/devices/probe/telemetry`, payload: Buffer.from(JSON.stringify({ deviceId: 'probe', ts: '2026-01-01T00:00:00Z', temperature: 1 })) };
    for (let tries = 0; !probed; tries += 1) {
      if (tries > 400) throw new Error(`bench: ${kind} never bridged a probe`);
      void publish(probe.topic, probe.payload, `probe-${tries}`);
      await sleep(25);
    }
    await sleep(300); // late probes out of the way
    const waitForArrival = (): Promise<void> =>
      new Promise<void>((resolve, reject) => {
        const before = arrived;
        const timer = setTimeout(() => reject(new Error(`bench: ${kind} stalled at ${arrived} arrivals (lost messages?)`)), STALL_MS);
        wake = () => {
          if (arrived === before) return;
          clearTimeout(timer);
          wake = undefined;
          resolve();
        };
      });

    // throughput: as fast as allowed, at most WINDOW ahead of the output
    const messages = payloads(topicPrefix, MESSAGES);
    arrived = 0;
    const started = performance.now();
    const pending: Promise<unknown>[] = [];
    for (let n = 0; n < messages.length; n += 1) {
      while (n - arrived >= WINDOW) await waitForArrival();
      const { topic, payload } = messages[n] as { topic: string; payload: Buffer };
      pending.push(publish(topic, payload, `t-${n}`));
      if (pending.length >= 1_000) await Promise.all(pending.splice(0));
    }
    while (arrived < messages.length) await waitForArrival();
    const throughput = messages.length / ((performance.now() - started) / 1000);
    await Promise.all(pending);

    // latency at fixed rates
    const latency: Record<number, { p50: number; p99: number }> = {};
    for (const rate of RATES) {
      const paced = payloads(topicPrefix, LATENCY_MESSAGES);
      arrived = 0;
      latencies.length = 0;
      const begin = performance.now();
      for (let n = 0; n < paced.length; n += 1) {
        const due = begin + (n * 1000) / rate;
        const ahead = due - performance.now();
        if (ahead > 1) await sleep(ahead);
        const { topic, payload, key } = paced[n] as { topic: string; payload: Buffer; key?: string };
        const id = `l${rate}-${n}`;
        if (key !== undefined) sentAt.set(key, performance.now());
        void publish(topic, payload, id);
      }
      while (arrived < paced.length) await waitForArrival();
      const sorted = [...latencies].sort((a, b) => a - b);
      latency[rate] = { p50: percentile(sorted, 0.5), p99: percentile(sorted, 0.99) };
      sentAt.clear();
    }
    return { throughput, latency };
  } finally {
    await stopChild(proc);
    await stopReader();
  }
}

/**
 * What `measure` runs against: the benchmark's own Mosquitto, the flow's topology under `prefix` in
 * RabbitMQ, the device connections; `close` removes the topology and stops the broker.
 */
export async function openRig(prefix: string): Promise<{ publishers: MqttClient[]; close(): Promise<void> }> {
  const names = flowNames(prefix);
  const mosquitto = await startBenchMosquitto(MQTT_PORT, INFLIGHT, 'bench');
  const admin = await amqpConnect(AMQP_URL);
  const adminChannel = await admin.createChannel();
  const topology = flowTopology(names);
  for (const exchange of topology.exchanges ?? []) await adminChannel.assertExchange(exchange.name, exchange.type, { durable: true });
  for (const queue of topology.queues ?? []) await adminChannel.assertQueue(queue.name, { durable: true });
  for (const binding of topology.bindings ?? []) await adminChannel.bindQueue(binding.queue as string, binding.exchange, binding.routingKey ?? '');
  const publishers = await Promise.all(
    Array.from({ length: PUBLISHERS }, async (_, index) => {
      const publisher = await mqtt.connectAsync(MQTT_URL, { protocolVersion: 5, clean: true, clientId: `bench-devices-${index}-${randomBytes(3).toString('hex')}` });
      (publisher.stream as unknown as { setNoDelay?: (on: boolean) => void }).setNoDelay?.(true);
      return publisher;
    }),
  );
  return {
    publishers,
    async close(): Promise<void> {
      await Promise.all(publishers.map((publisher) => publisher.endAsync()));
      for (const queue of topology.queues ?? []) await adminChannel.deleteQueue(queue.name).catch(() => undefined);
      for (const exchange of topology.exchanges ?? []) await adminChannel.deleteExchange(exchange.name).catch(() => undefined);
      await admin.close();
      await mosquitto.stop();
    },
  };
}

async function orchestrate(): Promise<void> {
  const bridges = BRIDGES.filter((bridge) => ONLY === undefined || ONLY.includes(bridge));
  const prefix = `bench-${Date.now().toString(36)}-`;
  console.log(
    `flagship bridge benchmark: ${MESSAGES.toLocaleString('en')} messages for throughput, ${LATENCY_MESSAGES.toLocaleString('en')} at ${RATES.join(' and ')} msgs/s for latency, ` +
      `${ROUNDS} interleaved rounds, Node ${process.version}, ${cpus().length} × ${cpus()[0]?.model ?? 'CPU'}, load ${loadavg().map((l) => l.toFixed(1)).join(' ')}`,
  );
  const results = await measureRounds(bridges, prefix);

  console.log('\n| bridge | msgs/s (median) | per round | ' + RATES.map((rate) => `p50 / p99 at ${rate}/s`).join(' | ') + ' |');
  console.log('|---|---:|---|' + RATES.map(() => '---:').join('|') + '|');
  for (const [bridge, list] of results) {
    const cells = RATES.map((rate) => `${median(list.map((r) => r.latency[rate]?.p50 ?? Number.NaN)).toFixed(1)} / ${median(list.map((r) => r.latency[rate]?.p99 ?? Number.NaN)).toFixed(1)} ms`);
    console.log(`| ${bridge} | ${median(list.map((r) => r.throughput)).toFixed(0)} | ${list.map((r) => r.throughput.toFixed(0)).join(' ')} | ${cells.join(' | ')} |`);
  }
  const unsafe = results.get('fast-unsafe');
  for (const variant of ['interchange', 'interchange-shared'] as const) {
    const ours = results.get(variant);
    if (unsafe === undefined || ours === undefined || unsafe.length !== ours.length) continue;
    const ratios = ours.map((r, index) => r.throughput / (unsafe[index]?.throughput ?? Number.NaN));
    const ratio = median(ratios);
    console.log(`\n${variant} / fast-unsafe throughput, per round: ${ratios.map((r) => r.toFixed(2)).join(' ')} → median ${ratio.toFixed(2)} (goal ≥ 0.90: ${ratio >= 0.9 ? 'met' : 'not met'})`);
  }
  // issue 15: what the durable buffer (an fsync per group commit, a second route) costs the bridge
  const ratioLine = (numerator: Bridge, denominator: Bridge, goal?: number): void => {
    const ours = results.get(numerator);
    const theirs = results.get(denominator);
    if (ours === undefined || theirs === undefined || ours.length !== theirs.length) return;
    const ratios = ours.map((r, index) => r.throughput / (theirs[index]?.throughput ?? Number.NaN));
    const ratio = median(ratios);
    const verdict = goal === undefined ? '(information)' : `(goal ≥ ${goal.toFixed(2)}: ${ratio >= goal ? 'met' : 'not met'})`;
    console.log(`\n${numerator} / ${denominator} throughput, per round: ${ratios.map((r) => r.toFixed(2)).join(' ')} → median ${ratio.toFixed(2)} ${verdict}`);
  };
  ratioLine('interchange-buffered', 'interchange', 0.7);
  ratioLine('interchange-buffered', 'fast-unsafe');
}

// run as a script (not when bench/observability.ts imports `measureRounds`)
const [mode, kind, prefix] = process.argv.slice(2);
const script = process.argv[1] === undefined ? undefined : realpathSync(process.argv[1]);
if (script === fileURLToPath(import.meta.url)) {
  if (mode === '--child') await child(kind as BridgeKind, prefix as string);
  else await orchestrate();
}
