// SEDA stage benchmark (issue #18): a stage's latency controller against a fixed high concurrency, in front
// of a contended resource, under an offered load above what the resource can do. Not a timed test: it
// reports what it measured and whether the controller held its p99 target.
//
// The resource: `CORES` calls run at full speed, more share them — a call started with n calls running
// (itself included) takes SERVICE_MS × max(1, n / CORES) (processor sharing, fixed at its start): its
// throughput is at most CORES / SERVICE_MS, more concurrency only adds latency.
// The route: memory:in (prefetch 2,000) → .stage({ capacity 200, whenFull 'shed' }) → .process(resource)
// (concurrency MAX: the stage is the bound) → a sink, with a dead-letter channel (a sink too) for the shed. Load: RATE messages/s for SECONDS, published
// every 10 ms. Variants, in interleaved rounds: fixed concurrency MAX; the controller (targetP99Ms
// TARGET, between 4 and MAX, default window). Per variant: the resource's per-call latency p50/p99 (what
// the controller holds; the first second, its ramp-up, included), publish→out p99 (queueing included),
// completed/s, shed, and the controller's last concurrency.
// `npx tsx --conditions=interchange-source bench/seda.ts`; BENCH_SEDA_RATE (1500), BENCH_SEDA_SECONDS (4),
// BENCH_SEDA_ROUNDS (3), BENCH_SEDA_TARGET_MS (20), BENCH_SEDA_MAX (64), BENCH_SEDA_INCREASE_BELOW (the controller's band; its default, 0.9).
import { cpus, loadavg } from 'node:os';
import { createIntegration, createMessage, from, silentLogger } from '../facade/index.ts';
import { median, percentile } from './stats.ts';

const RATE = Number(process.env.BENCH_SEDA_RATE ?? '1500');
const SECONDS = Number(process.env.BENCH_SEDA_SECONDS ?? '4');
const ROUNDS = Number(process.env.BENCH_SEDA_ROUNDS ?? '3');
const TARGET = Number(process.env.BENCH_SEDA_TARGET_MS ?? '20');
const MAX = Number(process.env.BENCH_SEDA_MAX ?? '64');
const INCREASE_BELOW = process.env.BENCH_SEDA_INCREASE_BELOW === undefined ? undefined : Number(process.env.BENCH_SEDA_INCREASE_BELOW);
const CORES = 4;
const SERVICE_MS = 4;
const CAPACITY = 200;
const TICK_MS = 10;

interface Result {
  readonly callP50: number;
  readonly callP99: number;
  /** The share of resource calls slower than the target. */
  readonly overTarget: number;
  readonly endToEndP99: number;
  readonly completedPerSecond: number;
  readonly shed: number;
  readonly concurrency: number;
}

/** The contended resource: a call's time grows with the calls running when it starts. */
function contendedResource(): () => Promise<number> {
  let running = 0;
  return () => {
    running += 1;
    const started = performance.now();
    const ms = SERVICE_MS * Math.max(1, running / CORES);
    return new Promise<number>((resolve) =>
      setTimeout(() => {
        running -= 1;
        resolve(performance.now() - started);
      }, ms),
    );
  };
}

async function run(controlled: boolean): Promise<Result> {
  const call = contendedResource();
  const callMs: number[] = [];
  const endToEnd: number[] = [];
  const app = createIntegration({
    logger: silentLogger,
    routes: [
      from<number>('memory:seda-in', { id: 'seda', prefetch: 2_000 })
        .deadLetterChannel('memory:seda-shed?type=pubsub') // a sink too: shed messages are counted by the stage
        .stage(controlled ? { capacity: CAPACITY, whenFull: 'shed', concurrency: MAX, minConcurrency: 4, targetP99Ms: TARGET, controller: INCREASE_BELOW === undefined ? {} : { increaseBelow: INCREASE_BELOW } } : { capacity: CAPACITY, whenFull: 'shed', concurrency: MAX }, { id: 'stage' })
        .process(async () => void callMs.push(await call()), { concurrency: MAX })
        .process((message) => void endToEnd.push(performance.now() - message.body))
        .to('memory:seda-out?type=pubsub'), // nobody subscribes: a sink
    ],
  });
  await app.start();
  const perTick = Math.round((RATE * TICK_MS) / 1000);
  const started = performance.now();
  await new Promise<void>((resolve) => {
    const timer = setInterval(() => {
      if (performance.now() - started >= SECONDS * 1000) {
        clearInterval(timer);
        resolve();
        return;
      }
      const now = performance.now();
      void app.transports.publish('memory:seda-in', Array.from({ length: perTick }, () => createMessage(now)));
    }, TICK_MS);
  });
  const elapsed = (performance.now() - started) / 1000;
  const metrics = app.metrics().seda;
  const completed = metrics?.completed ?? 0;
  const stage = metrics?.steps.stage;
  await app.stop({ drainTimeoutMs: 0 });
  callMs.sort((a, b) => a - b);
  endToEnd.sort((a, b) => a - b);
  return {
    callP50: percentile(callMs, 0.5),
    callP99: percentile(callMs, 0.99),
    overTarget: callMs.filter((ms) => ms > TARGET).length / Math.max(1, callMs.length),
    endToEndP99: percentile(endToEnd, 0.99),
    completedPerSecond: completed / elapsed,
    shed: stage?.counts?.shed ?? 0,
    concurrency: stage?.gauges?.concurrency ?? Number.NaN,
  };
}

console.log(`SEDA stage benchmark: ${RATE}/s offered for ${SECONDS} s, ${ROUNDS} interleaved rounds, Node ${process.version}, ${cpus().length} × ${cpus()[0]?.model ?? 'unknown CPU'}`);
console.log(`contended resource: ${CORES} × ${SERVICE_MS} ms (at most ${(CORES / SERVICE_MS) * 1000}/s); stage capacity ${CAPACITY}, whenFull 'shed'\n`);
const variants = [
  { name: `fixed concurrency ${MAX}`, controlled: false },
  { name: `latency controller (targetP99Ms ${TARGET}, 4–${MAX}${INCREASE_BELOW === undefined ? '' : `, band ${INCREASE_BELOW}`})`, controlled: true },
] as const;
const results = new Map<string, Result[]>(variants.map((variant) => [variant.name, []]));
for (let round = 0; round < ROUNDS; round += 1) {
  for (const variant of round % 2 === 0 ? variants : [...variants].reverse()) {
    const result = await run(variant.controlled);
    results.get(variant.name)?.push(result);
    console.log(`  round ${round + 1} ${variant.name}: call p99 ${result.callP99.toFixed(1)} ms (${(result.overTarget * 100).toFixed(1)}% over ${TARGET} ms), ${Math.round(result.completedPerSecond)}/s, shed ${result.shed}, concurrency ${result.concurrency}`);
  }
}
console.log('');
const of = (name: string, pick: (result: Result) => number): number => median((results.get(name) ?? []).map(pick));
for (const { name } of variants) {
  console.log(
    `${name.padEnd(48)} call p50 ${of(name, (r) => r.callP50).toFixed(1).padStart(6)} ms  p99 ${of(name, (r) => r.callP99).toFixed(1).padStart(6)} ms (${(of(name, (r) => r.overTarget) * 100).toFixed(1).padStart(5)}% over target)  publish→out p99 ${of(name, (r) => r.endToEndP99).toFixed(0).padStart(5)} ms  ${Math.round(of(name, (r) => r.completedPerSecond)).toLocaleString('en').padStart(6)} msg/s  shed ${Math.round(of(name, (r) => r.shed)).toLocaleString('en').padStart(6)}  concurrency at the end ${of(name, (r) => r.concurrency)}`,
  );
}
const held = of(variants[1].name, (r) => r.callP99);
const load = loadavg()[0] ?? Number.NaN;
console.log(`\nlatency controller: call p99 ${held.toFixed(1)} ms (median of rounds) against a target of ${TARGET} ms: ${held <= TARGET ? 'held' : 'NOT held'} (load average ${load.toFixed(1)} on ${cpus().length} CPUs: timer lateness adds to every call)`);
