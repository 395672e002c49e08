// Issue 17: the bare Interchange bridge against the independent bench-peers harness's raw early-ack
// bridge, under the harness's own load (`perfbase/bridge-load.mjs`: MQTT QoS 1 in, RabbitMQ queue out,
// at most 500 in flight, 20,000 prewarm messages, the system Mosquitto on 1883 and RabbitMQ on 5672).
//
// Bridges, each spawned by bridge-load:
//  - raw-early:      the harness's `perfbase/bridge.mjs --ack=early` (PUBACK before RabbitMQ confirms: unsafe).
//  - interchange:    the harness's `peers/interchange/bridge.route.ts`, compiled to .mjs here (TypeScript's
//                    transpileModule), run by `node bin/interchange.js run … --quiet` on compiled JavaScript:
//                    no TypeScript loader in the bridge process. The project is compiled at every run
//                    (`tsc -p tsconfig.build.json`, as `npm run build`) into a snapshot in the temporary
//                    directory, not into the repository's dist/, which a concurrent `npm run build` in the
//                    shared checkout removes and rewrites (bench/peers-setup.ts).
//  - interchange-ts: the harness's own `peers/interchange-bridge.sh` (the .ts route through tsx, the same
//                    compiled snapshot as INTERCHANGE_DIR), for information.
//
// Every round runs, variant after variant: throughput (BENCH_PEER_MESSAGES, default 50,000), latency at a
// fixed 2,000 msg/s for 10 s (`--mode=lat`), and a startup-only run (`--n=1 --prewarm=0`). CPU per message
// is the bridge's utime+stime from /proc/<pid>/stat, last read just before it exits (sampled every 50 ms,
// as the harness's cpu-rounds.sh does every 200 ms), minus the median startup-only CPU of that variant,
// divided by the messages it forwarded (prewarm + timed). RSS is bridge-load's `bridge_rss_mib` (the
// bridge's process tree just before SIGTERM) at the end of the throughput run. Ratios are taken within a
// round (the order of the variants rotates from round to round); the goals use the median of the per-round ratios.
//
// `npx tsx --conditions=interchange-source bench/peers-bridge.ts`. BENCH_PEERS_DIR (default ../shared/bench-peers
// from the repository root; copied to a temporary directory, `npm ci` in its perfbase/), BENCH_PEER_ROUNDS
// (default 3), BENCH_PEER_MESSAGES (default 50,000), MQTT_URL, AMQP_URL. The topic and queue carry a
// per-run suffix, so a concurrent run of the harness elsewhere does not mix with this one; the queue is
// deleted at the end. Exits non-zero when a service is down, a bridge fails, or a throughput run loses messages.
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { connect as amqpConnect } from 'amqplib';
import mqtt from 'mqtt';
import { redactUrl } from '../facade/index.ts';
import { median } from './stats.ts';
import { sampleChildCpu } from './peers-proc.ts';
import { PEER_VARIANTS, preparePeers, type PeersCopy, type PeerVariant } from './peers-setup.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const SOURCE = resolve(ROOT, process.env.BENCH_PEERS_DIR ?? '../shared/bench-peers');
const ROUNDS = Number(process.env.BENCH_PEER_ROUNDS ?? '3');
const MESSAGES = Number(process.env.BENCH_PEER_MESSAGES ?? '50000');
/** bridge-load's default prewarm, passed explicitly so the CPU per message can count it. */
const PREWARM = 20_000;
const RATE = 2_000;
const DURATION_S = 10;
const RUN_TIMEOUT_MS = 300_000;
const MQTT_URL = process.env.MQTT_URL ?? 'mqtt://127.0.0.1:1883';
const AMQP_URL = process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const RUN_ID = randomBytes(4).toString('hex');
const TOPIC = `perf/bridge/in-${RUN_ID}`;
const QUEUE = `perf.bridge.r${RUN_ID}`;

type Mode = 'tput' | 'lat' | 'startup';
const MODE_ARGS: Record<Mode, string[]> = {
  tput: ['--mode=tput', `--n=${MESSAGES}`, `--prewarm=${PREWARM}`],
  lat: ['--mode=lat', `--rate=${RATE}`, `--duration=${DURATION_S}`, `--prewarm=${PREWARM}`],
  startup: ['--mode=tput', '--n=1', '--prewarm=0'],
};

/** bridge-load's RESULT line, the fields read here. */
interface LoadResult {
  readonly received: number;
  readonly n?: number;
  readonly complete?: boolean;
  readonly sent?: number;
  readonly msgs_per_s?: number;
  readonly lat_ms_p50?: number;
  readonly lat_ms_p99?: number;
  readonly bridge_rss_mib?: number | null;
}

/** One bridge-load run: its result, the bridge's CPU seconds, the load averages around it. */
interface Run {
  readonly result: LoadResult;
  readonly cpuSeconds: number;
  readonly loadBefore: readonly number[];
  readonly loadAfter: readonly number[];
}

/** One round of one variant. */
interface RoundFigures {
  tput?: Run;
  lat?: Run;
  startup?: Run;
}

const sleep = (ms: number): Promise<void> => new Promise((done) => setTimeout(done, ms));
const loads = (): number[] => loadavg().map((load) => Number(load.toFixed(2)));
const fixed = (values: readonly number[], digits = 2): string => values.map((value) => value.toFixed(digits)).join(' ');

/** Throws a clear error when RabbitMQ or Mosquitto is not reachable. */
async function checkServices(): Promise<void> {
  try {
    const connection = await amqpConnect(AMQP_URL);
    await connection.close();
  } catch (error) {
    throw new Error(`peers bench: RabbitMQ at ${redactUrl(AMQP_URL)} is down or refuses guest: ${(error as Error).message}`);
  }
  try {
    const client = await mqtt.connectAsync(MQTT_URL, { connectTimeout: 5_000, reconnectPeriod: 0, clientId: `peers-bench-check-${RUN_ID}` });
    await client.endAsync();
  } catch (error) {
    throw new Error(`peers bench: Mosquitto at ${redactUrl(MQTT_URL)} is down: ${(error as Error).message}`);
  }
}

/** Runs bridge-load once for `variant` in `mode`, sampling the bridge's CPU; throws (with bridge-load's last output) if it fails. */
function runLoad(copy: PeersCopy, variant: PeerVariant, mode: Mode): Promise<Run> {
  const args = ['bridge-load.mjs', ...MODE_ARGS[mode], `--bridge=${copy.commands[variant]}`, `--label=${variant}`, `--mqtt=${MQTT_URL}`, `--amqp=${AMQP_URL}`, `--topic=${TOPIC}`, `--queue=${QUEUE}`];
  const env = { ...process.env, MQTT_URL, AMQP_URL, BRIDGE_TOPIC: TOPIC, BRIDGE_QUEUE: QUEUE, INTERCHANGE_DIR: copy.interchange };
  const loadBefore = loads();
  const proc = spawn(process.execPath, args, { cwd: copy.perfbase, env, stdio: ['ignore', 'pipe', 'pipe'] });
  const cpu = sampleChildCpu(proc.pid as number);
  let out = '';
  let err = '';
  proc.stdout.on('data', (chunk: Buffer) => (out += chunk.toString('utf8')));
  proc.stderr.on('data', (chunk: Buffer) => (err = (err + chunk.toString('utf8')).slice(-4000)));
  return new Promise((resolveRun, reject) => {
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      cpu.kill();
      proc.kill('SIGKILL');
    }, RUN_TIMEOUT_MS);
    proc.once('exit', (code, signal) => {
      clearTimeout(timer);
      const cpuSeconds = cpu.stop();
      const line = out.split('\n').find((l) => l.startsWith('RESULT '));
      if (code !== 0 || line === undefined) {
        const how = timedOut ? `was killed after ${RUN_TIMEOUT_MS / 1000} s` : signal === null ? `exited with ${String(code)}` : `was killed by ${signal} from outside this benchmark`;
        reject(new Error(`peers bench: bridge-load (${variant}, ${mode}) ${how} without a result; its last output:\n${err.trim()}`));
        return;
      }
      resolveRun({ result: JSON.parse(line.slice('RESULT '.length)) as LoadResult, cpuSeconds, loadBefore, loadAfter: loads() });
    });
  });
}

/** Throws when a throughput (or startup-only) run did not get every message it sent. */
function checkComplete(variant: PeerVariant, mode: Mode, round: number, { result }: Run): void {
  if (result.complete !== true || result.received !== result.n) {
    throw new Error(`peers bench: ${variant} lost messages in the ${mode} run of round ${round}: received ${result.received} of ${String(result.n)} sent`);
  }
}

function describe(variant: PeerVariant, mode: Mode, round: number, run: Run): string {
  const { result } = run;
  const load = `load avg ${run.loadBefore.join(' ')} → ${run.loadAfter.join(' ')}`;
  const head = `round ${round} ${mode.padEnd(7)} ${variant.padEnd(15)}`;
  if (mode === 'tput') return `${head} ${String(result.msgs_per_s).padStart(6)} msg/s  RSS ${String(result.bridge_rss_mib)} MiB  CPU ${run.cpuSeconds.toFixed(2)} s  ${load}`;
  if (mode === 'lat') {
    const lost = result.received < (result.sent ?? 0) ? `  LOST ${(result.sent ?? 0) - result.received}` : '';
    return `${head} p50 ${String(result.lat_ms_p50)} ms  p99 ${String(result.lat_ms_p99)} ms  received ${result.received}/${String(result.sent)}${lost}  RSS ${String(result.bridge_rss_mib)} MiB  CPU ${run.cpuSeconds.toFixed(2)} s  ${load}`;
  }
  return `${head} CPU ${run.cpuSeconds.toFixed(2)} s (start, probe, 1 message, stop)  ${load}`;
}

/** Deletes this run's queue (the sink declared it durable). */
async function deleteQueue(): Promise<void> {
  const connection = await amqpConnect(AMQP_URL);
  try {
    const channel = await connection.createChannel();
    await channel.deleteQueue(QUEUE);
  } finally {
    await connection.close();
  }
}

function report(rounds: ReadonlyMap<PeerVariant, RoundFigures[]>): void {
  const series = (variant: PeerVariant): RoundFigures[] => rounds.get(variant) ?? [];
  const startupCpu = (variant: PeerVariant): number => median(series(variant).map((r) => r.startup?.cpuSeconds ?? Number.NaN));
  const figures = {
    tput: (r: RoundFigures): number => r.tput?.result.msgs_per_s ?? Number.NaN,
    rss: (r: RoundFigures): number => r.tput?.result.bridge_rss_mib ?? Number.NaN,
    p50: (r: RoundFigures): number => r.lat?.result.lat_ms_p50 ?? Number.NaN,
    p99: (r: RoundFigures): number => r.lat?.result.lat_ms_p99 ?? Number.NaN,
  };
  const cpuPerMessage = (variant: PeerVariant, mode: 'tput' | 'lat') => (r: RoundFigures): number => {
    const run = r[mode];
    if (run === undefined) return Number.NaN;
    const forwarded = PREWARM + (mode === 'tput' ? (run.result.n ?? Number.NaN) : run.result.received);
    return ((run.cpuSeconds - startupCpu(variant)) * 1e6) / forwarded;
  };
  const medianOf = (variant: PeerVariant, pick: (r: RoundFigures) => number): number => median(series(variant).map(pick));

  console.log('\n| bridge | msg/s (median) | per round | RSS MiB at end (median) | p50 / p99 ms at 2,000 msg/s (median) | p99 per round | CPU s startup only (median) | CPU µs/msg, throughput (median) | CPU µs/msg at 2,000 msg/s (median) |');
  console.log('|---|---:|---|---:|---:|---|---:|---:|---:|');
  for (const variant of PEER_VARIANTS) {
    const list = series(variant);
    console.log(
      `| ${variant} | ${medianOf(variant, figures.tput).toFixed(0)} | ${list.map((r) => figures.tput(r).toFixed(0)).join(' ')} | ${medianOf(variant, figures.rss).toFixed(1)} | ` +
        `${medianOf(variant, figures.p50).toFixed(2)} / ${medianOf(variant, figures.p99).toFixed(2)} | ${fixed(list.map(figures.p99))} | ${startupCpu(variant).toFixed(2)} | ` +
        `${medianOf(variant, cpuPerMessage(variant, 'tput')).toFixed(1)} | ${medianOf(variant, cpuPerMessage(variant, 'lat')).toFixed(1)} |`,
    );
  }

  const ratioLine = (variant: PeerVariant, what: string, pick: (v: PeerVariant) => (r: RoundFigures) => number, goal: { readonly at: number; readonly atLeast: boolean } | undefined): void => {
    const ours = series(variant).map(pick(variant));
    const theirs = series('raw-early').map(pick('raw-early'));
    const ratios = ours.map((value, round) => value / (theirs[round] ?? Number.NaN));
    const ratio = median(ratios);
    const verdict =
      goal === undefined ? '(information)' : `(goal ${goal.atLeast ? '≥' : '≤'} ${goal.at.toFixed(2)}): ${(goal.atLeast ? ratio >= goal.at : ratio <= goal.at) ? 'met' : 'NOT met'}`;
    console.log(`${variant} / raw-early ${what}, per round: ${fixed(ratios)} → median ${ratio.toFixed(2)} ${verdict}`);
  };
  console.log('\ngoals (bare Interchange bridge, compiled, against the harness\'s raw early-ack bridge):');
  ratioLine('interchange', 'throughput', () => figures.tput, { at: 1.0, atLeast: true });
  ratioLine('interchange', 'p99 at 2,000 msg/s', () => figures.p99, { at: 1.0, atLeast: false });
  ratioLine('interchange', 'CPU per message (throughput run)', (v) => cpuPerMessage(v, 'tput'), { at: 1.15, atLeast: false });
  ratioLine('interchange', 'RSS at end of the throughput run', () => figures.rss, { at: 1.3, atLeast: false });
  console.log('information:');
  ratioLine('interchange', 'CPU per message at 2,000 msg/s', (v) => cpuPerMessage(v, 'lat'), undefined);
  ratioLine('interchange-ts', 'throughput', () => figures.tput, undefined);
  ratioLine('interchange-ts', 'p99 at 2,000 msg/s', () => figures.p99, undefined);
  ratioLine('interchange-ts', 'CPU per message (throughput run)', (v) => cpuPerMessage(v, 'tput'), undefined);
  ratioLine('interchange-ts', 'RSS at end of the throughput run', () => figures.rss, undefined);
}

async function main(): Promise<void> {
  const commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim();
  console.log(`peers bridge benchmark (issue 17): the bench-peers harness's load on its raw early-ack bridge and the bare Interchange bridge`);
  console.log(
    `date ${new Date().toISOString()}, commit ${commit} (plus uncommitted changes, if any), Node ${process.version}, ${cpus().length} × ${cpus()[0]?.model ?? 'CPU'}, load averages (1/5/15 min, as uptime prints them) ${loads().join(' ')}`,
  );
  console.log(
    `${ROUNDS} interleaved rounds; throughput: ${MESSAGES.toLocaleString('en')} messages after ${PREWARM.toLocaleString('en')} prewarm; latency: ${RATE.toLocaleString('en')} msg/s for ${DURATION_S} s; ` +
      `CPU per message: the bridge's /proc utime+stime over the run minus the variant's median startup-only run, over the messages forwarded (prewarm included)`,
  );
  await checkServices();
  const started = performance.now();
  const copy = preparePeers(SOURCE, ROOT, { mqtt: MQTT_URL, amqp: AMQP_URL });
  try {
    console.log(
      `set up in ${((performance.now() - started) / 1000).toFixed(0)} s: harness ${SOURCE} copied to ${copy.dir}, npm ci in its perfbase/, the project compiled (tsc -p tsconfig.build.json) into ${copy.interchange}; topic ${TOPIC}, queue ${QUEUE}`,
    );
    const shown = (command: string): string => command.replaceAll(AMQP_URL, redactUrl(AMQP_URL)).replaceAll(MQTT_URL, redactUrl(MQTT_URL));
    for (const variant of PEER_VARIANTS) console.log(`  ${variant.padEnd(15)} --bridge='${shown(copy.commands[variant])}'`);
    const rounds = new Map<PeerVariant, RoundFigures[]>(PEER_VARIANTS.map((variant) => [variant, []]));
    for (let round = 1; round <= ROUNDS; round += 1) {
      const figures = new Map<PeerVariant, RoundFigures>(PEER_VARIANTS.map((variant) => [variant, {}]));
      // the order rotates every round: a run right after another inherits RabbitMQ's clean-up of the
      // previous run's persisted messages, and no variant should always be the one that follows raw-early
      const order = PEER_VARIANTS.map((_, index) => PEER_VARIANTS[(index + round - 1) % PEER_VARIANTS.length] as PeerVariant);
      for (const mode of ['tput', 'lat', 'startup'] as const) {
        for (const variant of order) {
          const run = await runLoad(copy, variant, mode);
          console.log(describe(variant, mode, round, run));
          if (mode !== 'lat') checkComplete(variant, mode, round, run);
          (figures.get(variant) as RoundFigures)[mode] = run;
          await sleep(2_000);
        }
      }
      for (const variant of PEER_VARIANTS) rounds.get(variant)?.push(figures.get(variant) as RoundFigures);
    }
    report(rounds);
    console.log(`\ndone ${new Date().toISOString()}, load averages ${loads().join(' ')}`);
  } finally {
    rmSync(copy.dir, { recursive: true, force: true });
    await deleteQueue().catch((error: unknown) => console.error(`peers bench: could not delete queue ${QUEUE}: ${(error as Error).message}`));
  }
}

try {
  await main();
} catch (error) {
  console.error(`\npeers bench FAILED — ${(error as Error).message.replace(/^peers bench: /, '')}`);
  process.exitCode = 1;
}
