// Scale-out benchmark (issue 15): the flagship as shipped — `interchange run examples/mqtt-to-amqp/route.ts`
// with AMQP_URL and DATABASE_URL set, i.e. through its durable buffer, with the per-device summaries
// in PostgreSQL — as 1 process and as 3 processes on one MQTT shared subscription
// (`$share/<MQTT_SHARE_GROUP>/…`), each process its own MQTT_CLIENT_ID and STATE_DIR (its buffer),
// all of them one PostgreSQL.
//
// Per run: a fresh FLOW_PREFIX (its own topics, exchanges, queues and summaries rows), the processes
// started (the first alone: it creates the tables), ready once each printed `mqtt-to-amqp: MQTT_URL is
// set`, a probe reading through; then 50 devices × 400 readings (BENCH_SCALE_DEVICES,
// BENCH_SCALE_READINGS; ~120-byte JSON, all valid) published at QoS 1 as fast as the broker takes them
// (at most BENCH_SCALE_WINDOW, default 2,000, published and not yet out of RabbitMQ), from the first
// publish to the last distinct reading read from the readings and alerts queues. Every reading also
// goes through its device's summary in PostgreSQL (a transaction per reading) before its buffer entry
// is deleted; the summaries are not waited for.
// Rounds interleave 1 and 3 processes (BENCH_SCALE_ROUNDS, default 2); the report gives medians and
// the median of the per-round ratios. Afterwards the run's queues, exchanges and summaries rows
// (DELETE by the aggregator's name) are removed.
//
// `npx tsx --conditions=interchange-source bench/scale-out.ts`. Brokers: a Mosquitto of the benchmark's
// own on 127.0.0.1:BENCH_SCALE_MQTT_PORT (default 18841; queue limit off, the packaged 20 in flight
// per client), RabbitMQ at AMQP_URL, PostgreSQL at DATABASE_URL (default postgres://postgres@127.0.0.1:5432/test).
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { connect as amqpConnect } from 'amqplib';
import mqtt, { type MqttClient } from 'mqtt';
import pg from 'pg';
import { flowNames, flowTopology, type FlowNames } from '../examples/mqtt-to-amqp/flow.ts';
import { median } from './stats.ts';
import { startBenchMosquitto } from './bench-mosquitto.ts';

const AMQP_URL = process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const DATABASE_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const MQTT_PORT = Number(process.env.BENCH_SCALE_MQTT_PORT ?? '18841');
const MQTT_URL = `mqtt://127.0.0.1:${MQTT_PORT}`;
const DEVICES = Number(process.env.BENCH_SCALE_DEVICES ?? '50');
const READINGS = Number(process.env.BENCH_SCALE_READINGS ?? '400');
const WINDOW = Number(process.env.BENCH_SCALE_WINDOW ?? '2000');
const ROUNDS = Number(process.env.BENCH_SCALE_ROUNDS ?? '2');
/** Process counts compared, in the order each round runs them. */
const SCALES = (process.env.BENCH_SCALE_PROCESSES ?? '1,3').split(',').map(Number);
const PUBLISHERS = 4;
const INFLIGHT = 20;
const READY_LINE = 'mqtt-to-amqp: MQTT_URL is set';
const STARTUP_MS = 60_000;
const STALL_MS = 30_000;
const ROOT = fileURLToPath(new URL('..', import.meta.url));

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));


/** One instance of the flagship: the CLI as an operator runs it, with its own client id and state directory. */
interface Instance {
  readonly proc: ChildProcess;
  readonly stateDir: string;
}

/** Starts `interchange run examples/mqtt-to-amqp/route.ts`; resolves once it announced its MQTT subscription. Rejects (with its last lines) if it exits first. */
function startInstance(prefix: string, group: string, index: number): Promise<Instance> {
  const stateDir = mkdtempSync(join(tmpdir(), `bench-scale-${index}-`));
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    SIMULATE: '0',
    MQTT_URL,
    AMQP_URL,
    DATABASE_URL,
    FLOW_PREFIX: prefix,
    MQTT_SHARE_GROUP: group,
    MQTT_CLIENT_ID: `${group}-${index}`,
    STATE_DIR: stateDir,
  };
  delete env.BUFFER_DIR; // each its own: <STATE_DIR>/buffer
  delete env.BUFFER;
  const proc = spawn(process.execPath, ['--conditions=interchange-source', 'bin/interchange.js', 'run', 'examples/mqtt-to-amqp/route.ts'], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  const tail: string[] = [];
  const keep = (line: string): void => {
    tail.push(line);
    if (tail.length > 20) tail.shift();
  };
  createInterface({ input: proc.stderr as NodeJS.ReadableStream }).on('line', keep);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`bench: instance ${index} not ready after ${STARTUP_MS} ms:\n${tail.join('\n')}`)), STARTUP_MS);
    createInterface({ input: proc.stdout as NodeJS.ReadableStream }).on('line', (line) => {
      keep(line);
      if (line.startsWith(READY_LINE)) {
        clearTimeout(timer);
        resolve({ proc, stateDir });
      }
    });
    proc.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`bench: instance ${index} exited (${String(code ?? signal)}) before it was ready:\n${tail.join('\n')}`));
    });
  });
}

/** SIGTERM (the CLI drains: buffers forwarded, summaries confirmed), SIGKILL after 20 s; then its state directory goes. */
async function stopInstance({ proc, stateDir }: Instance): Promise<void> {
  if (proc.exitCode === null && proc.signalCode === null) {
    await new Promise<void>((resolve) => {
      const kill = setTimeout(() => proc.kill('SIGKILL'), 20_000);
      proc.once('exit', () => {
        clearTimeout(kill);
        resolve();
      });
      proc.kill('SIGTERM');
    });
  }
  rmSync(stateDir, { recursive: true, force: true });
}

/** The devices' readings: ~120-byte JSON telemetry, `DEVICES` devices × `READINGS` each, interleaved, all valid. */
function readings(topicPrefix: string): { topic: string; payload: Buffer }[] {
  return Array.from({ length: DEVICES * READINGS }, (_, n) => {
    const deviceId = `dev-${String(n % DEVICES).padStart(4, '0')}`;
    const reading = { deviceId, ts: new Date(Date.UTC(2026, 0, 1) + n).toISOString(), temperature: (n % 700) / 10, humidity: 40 + (n % 30), battery: 95 };
    return { topic: `${topicPrefix}/devices/${deviceId}/telemetry`, payload: Buffer.from(JSON.stringify(reading)) };
  });
}

interface Run {
  readonly processes: number;
  readonly throughput: number;
  /** Readings read more than once (at-least-once: a redelivery). */
  readonly duplicates: number;
}

/** Removes the run's summaries rows from the shared tables (the aggregator's name is `<exchange>.summaries`). */
async function deleteSummaries(database: pg.Client, names: FlowNames): Promise<number> {
  let deleted = 0;
  for (const table of ['interchange_aggregation_groups', 'interchange_aggregation_completed', 'interchange_aggregation_seen']) {
    try {
      const result = await database.query(`DELETE FROM public."${table}" WHERE name = $1`, [`${names.exchange}.summaries`]);
      deleted += result.rowCount ?? 0;
    } catch (error) {
      if ((error as { code?: string }).code !== '42P01') throw error; // no such table: nothing made
    }
  }
  return deleted;
}

async function measure(processes: number, publishers: readonly MqttClient[], database: pg.Client): Promise<Run> {
  const prefix = `bench-scale-${Date.now().toString(36)}-${randomBytes(2).toString('hex')}-`;
  const names = flowNames(prefix);
  const group = `bench-scale-${randomBytes(3).toString('hex')}`;
  const topicPrefix = names.telemetryTopic.split('/devices/')[0] as string;
  const topology = flowTopology(names);
  const admin = await amqpConnect(AMQP_URL);
  const channel = await admin.createChannel();
  const instances: Instance[] = [];
  try {
    for (const exchange of topology.exchanges ?? []) await channel.assertExchange(exchange.name, exchange.type, { durable: true });
    for (const queue of topology.queues ?? []) await channel.assertQueue(queue.name, { durable: true });
    for (const binding of topology.bindings ?? []) await channel.bindQueue(binding.queue as string, binding.exchange, binding.routingKey ?? '');

    const seen = new Set<string>();
    let duplicates = 0;
    let probed = false;
    let wake: (() => void) | undefined;
    await channel.prefetch(5_000);
    for (const queue of [names.readingsQueue, names.alertsQueue]) {
      await channel.consume(
        queue,
        (message) => {
          if (message === null) return;
          const reading = JSON.parse(message.content.toString('utf8')) as { deviceId: string; timestamp: number };
          if (reading.deviceId === 'probe') probed = true;
          else {
            const key = `${reading.deviceId}@${reading.timestamp}`;
            if (seen.has(key)) duplicates += 1;
            else seen.add(key);
          }
          wake?.();
        },
        { noAck: true },
      );
    }

    // the first instance alone (it creates the summaries' tables), then the others together
    instances.push(await startInstance(prefix, group, 1));
    const others = await Promise.allSettled(Array.from({ length: processes - 1 }, (_, index) => startInstance(prefix, group, index + 2)));
    for (const other of others) if (other.status === 'fulfilled') instances.push(other.value);
    const failed = others.find((other) => other.status === 'rejected');
    if (failed !== undefined) throw failed.reason;

    let turn = 0;
    const publish = (topic: string, payload: Buffer): Promise<unknown> => {
      turn = (turn + 1) % publishers.length;
      return (publishers[turn] as MqttClient).publishAsync(topic, payload, { qos: 1 });
    };
    for (let tries = 0; !probed; tries += 1) {
      if (tries > 400) throw new Error(`bench: ${processes} process(es) never bridged a probe`);
      const probe = { deviceId: 'probe', ts: new Date(Date.UTC(2025, 0, 1) + tries).toISOString(), temperature: 1 };
      void publish(`${topicPrefix}/devices/probe/telemetry`, Buffer.from(JSON.stringify(probe)));
      await sleep(25);
    }
    await sleep(300); // late probes out of the way

    const waitForArrival = (): Promise<void> =>
      new Promise<void>((resolve, reject) => {
        const before = seen.size;
        const timer = setTimeout(() => reject(new Error(`bench: ${processes} process(es) stalled at ${seen.size} readings (lost messages?)`)), STALL_MS);
        wake = () => {
          if (seen.size === before) return;
          clearTimeout(timer);
          wake = undefined;
          resolve();
        };
      });
    const messages = readings(topicPrefix);
    const started = performance.now();
    const pending: Promise<unknown>[] = [];
    for (let n = 0; n < messages.length; n += 1) {
      while (n - seen.size >= WINDOW) await waitForArrival();
      const { topic, payload } = messages[n] as { topic: string; payload: Buffer };
      pending.push(publish(topic, payload));
      if (pending.length >= 1_000) await Promise.all(pending.splice(0));
    }
    while (seen.size < messages.length) await waitForArrival();
    const throughput = messages.length / ((performance.now() - started) / 1000);
    await Promise.all(pending);
    return { processes, throughput, duplicates };
  } finally {
    await Promise.all(instances.map(stopInstance));
    for (const queue of topology.queues ?? []) await channel.deleteQueue(queue.name).catch(() => undefined);
    for (const exchange of topology.exchanges ?? []) await channel.deleteExchange(exchange.name).catch(() => undefined);
    await admin.close().catch(() => undefined);
    const rows = await deleteSummaries(database, names);
    console.log(`  ${processes} process${processes === 1 ? '' : 'es'}: removed ${prefix}* queues and exchanges, ${rows} summaries rows`);
  }
}

async function main(): Promise<void> {
  const total = DEVICES * READINGS;
  console.log(
    `flagship scale-out benchmark: ${DEVICES} devices × ${READINGS} readings (${total.toLocaleString('en')}) through the CLI's route (durable buffer + summaries in PostgreSQL), ` +
      `${SCALES.join(' vs ')} processes, ${ROUNDS} interleaved rounds, Node ${process.version}, ${cpus().length} × ${cpus()[0]?.model ?? 'CPU'}, load ${loadavg().map((l) => l.toFixed(1)).join(' ')}`,
  );
  console.log(
    `note: this machine has ${cpus().length} cores, shared by every instance, Mosquitto, RabbitMQ, PostgreSQL and the publisher: ` +
      'more processes than cores measure contention on one host, not what instances on their own hosts would add.',
  );
  const database = new pg.Client({ connectionString: DATABASE_URL });
  await database.connect(); // loudly: PostgreSQL must be up
  const mosquitto = await startBenchMosquitto(MQTT_PORT, INFLIGHT, 'bench-scale');
  const publishers: MqttClient[] = [];
  const runs = new Map<number, Run[]>(SCALES.map((scale) => [scale, []]));
  try {
    for (let index = 0; index < PUBLISHERS; index += 1) {
      const publisher = await mqtt.connectAsync(MQTT_URL, { protocolVersion: 5, clean: true, clientId: `bench-scale-devices-${index}-${randomBytes(3).toString('hex')}` });
      (publisher.stream as unknown as { setNoDelay?: (on: boolean) => void }).setNoDelay?.(true);
      publishers.push(publisher);
    }
    for (let round = 1; round <= ROUNDS; round += 1) {
      for (const processes of SCALES) {
        const run = await measure(processes, publishers, database);
        runs.get(processes)?.push(run);
        console.log(`round ${round} ${String(processes)} process${processes === 1 ? ' ' : 'es'} ${run.throughput.toFixed(0).padStart(6)} msgs/s${run.duplicates > 0 ? ` (${run.duplicates} readings read twice)` : ''}; load ${loadavg()[0]?.toFixed(1) ?? '?'}`);
      }
    }
  } finally {
    await Promise.all(publishers.map((publisher) => publisher.endAsync()));
    await mosquitto.stop();
    await database.end();
  }

  console.log('\n| processes | msgs/s (median) | per round |');
  console.log('|---:|---:|---|');
  for (const [processes, list] of runs) console.log(`| ${processes} | ${median(list.map((r) => r.throughput)).toFixed(0)} | ${list.map((r) => r.throughput.toFixed(0)).join(' ')} |`);
  const [one, many] = SCALES.map((scale) => runs.get(scale) ?? []);
  if (one !== undefined && many !== undefined && SCALES.length >= 2) {
    const ratios = many.map((r, index) => r.throughput / (one[index]?.throughput ?? Number.NaN));
    console.log(
      `\n${SCALES[1]} processes / ${SCALES[0]} process, per round: ${ratios.map((r) => r.toFixed(2)).join(' ')} → median ${median(ratios).toFixed(2)} ` +
        `(information: on ${cpus().length} cores shared with the brokers and the database)`,
    );
  }
}

await main();
