// Observability overhead (issue 16): what Prometheus metrics and the tracing observer cost, on vs off
// in the same run, goal ≥ 0.90× (at most 10 % slower) with the tracing API and no SDK registered.
//
//  (a) core route (bench/core-route.ts, one child process per variant via bench/run-one.ts),
//      interleaved rounds of:
//      - interchange:           no observers;
//      - interchange-observed:  `createPrometheusMetrics(app)` + `tracingObserver()`, no OpenTelemetry
//                               SDK (the tracing observer then attaches no probe: metrics alone work);
//      - interchange-traced:    the same with a real SDK (`BasicTracerProvider`, a span processor that
//                               drops every span): what recording spans costs — information, no goal.
//  (b) the flagship bridge (bench/bridge.ts's machinery: its own Mosquitto, RabbitMQ, a child process
//      per bridge), bare (summaries off) with and without metrics + tracing observer (no SDK), the
//      same load, interleaved rounds.
//
// `npx tsx --conditions=interchange-source bench/observability.ts` (the last section of `npm run bench`).
// BENCH_MESSAGES (default 1,000,000) and BENCH_OBSERVABILITY_ROUNDS (default 5) for the core route,
// BENCH_OBSERVABILITY_TRACED_MESSAGES (default a tenth of BENCH_MESSAGES: recording spans is ~10× slower)
// for the traced variant;
// BENCH_BRIDGE_* as in bench/bridge.ts for the bridge (BENCH_BRIDGE_ROUNDS, default 3);
// BENCH_OBSERVABILITY_ONLY=core or =bridge runs one part.
import { execFileSync } from 'node:child_process';
import { cpus, loadavg } from 'node:os';
import { LATENCY_MESSAGES, MESSAGES, measureRounds, RATES, ROUNDS, type BridgeKind } from './bridge.ts';
import { median } from './stats.ts';

interface Result {
  readonly name: string;
  readonly perSecond: number;
  readonly out: number;
  readonly peakRssMb: number;
}

const GOAL = 0.9;
const count = process.env.BENCH_MESSAGES ?? '1000000';
const tracedCount = process.env.BENCH_OBSERVABILITY_TRACED_MESSAGES ?? String(Math.max(1, Math.round(Number(count) / 10)));
const coreRounds = Number(process.env.BENCH_OBSERVABILITY_ROUNDS ?? '5');
const only = process.env.BENCH_OBSERVABILITY_ONLY;

const fixed = (values: readonly number[]): string => values.map((v) => v.toFixed(2)).join(' ');
const load = (): string => loadavg().map((l) => l.toFixed(1)).join(' ');
const verdict = (ratio: number): string => `(goal ≥ ${GOAL.toFixed(2)}): ${ratio >= GOAL ? 'met' : 'NOT met'}`;

function runOne(variant: string, messages: string): Result {
  const output = execFileSync(process.execPath, ['--conditions=interchange-source', '--import', 'tsx', 'bench/run-one.ts', variant, messages, '1'], { encoding: 'utf8' });
  return JSON.parse(output.trim().split('\n').at(-1) ?? '{}') as Result;
}

function coreRoute(): void {
  console.log(`core route with metrics + tracing: ${Number(count).toLocaleString('en')} messages (${Number(tracedCount).toLocaleString('en')} with the SDK), ${coreRounds} interleaved rounds, Node ${process.version}, ${cpus().length} × ${cpus()[0]?.model ?? 'CPU'}, load ${load()}`);
  const variants = ['interchange', 'interchange-observed', 'interchange-traced'] as const;
  const series = new Map<string, Result[]>(variants.map((variant) => [variant, []]));
  for (let round = 1; round <= coreRounds; round += 1) {
    const line: string[] = [];
    for (const variant of variants) {
      const result = runOne(variant, variant === 'interchange-traced' ? tracedCount : count);
      series.get(variant)?.push(result);
      line.push(`${variant} ${Math.round(result.perSecond).toLocaleString('en')}`);
    }
    console.log(`round ${round}: ${line.join(', ')} msg/s; load ${load()}`);
  }
  const of = (variant: string): Result[] => series.get(variant) ?? [];
  for (const variant of variants) {
    const results = of(variant);
    const name = results[0]?.name ?? variant;
    console.log(`${name.padEnd(60)} ${Math.round(median(results.map((r) => r.perSecond))).toLocaleString('en').padStart(10)} msg/s (median)  peak RSS ${String(Math.round(median(results.map((r) => r.peakRssMb)))).padStart(5)} MB`);
  }
  const plain = of('interchange');
  const ratios = (variant: string): number[] => of(variant).map((r, round) => r.perSecond / (plain[round]?.perSecond ?? Number.NaN));
  const observed = ratios('interchange-observed');
  const traced = ratios('interchange-traced');
  console.log(`\ncore route with metrics + tracing API (no SDK) / without, per round: ${fixed(observed)} → median ${median(observed).toFixed(2)} ${verdict(median(observed))}`);
  console.log(`core route with metrics + tracing (SDK recording, spans dropped; ${Number(tracedCount).toLocaleString('en')} messages) / without, per round: ${fixed(traced)} → median ${median(traced).toFixed(2)} (information)`);
  for (const variant of ['interchange', 'interchange-observed'] as const) {
    const outputs = new Set(of(variant).map((r) => r.out));
    if (outputs.size !== 1 || [...outputs][0] !== plain[0]?.out) throw new Error(`${variant}: output counts differ from the plain route's: ${[...outputs].join(', ')}`);
  }
}

async function bridge(): Promise<void> {
  console.log(
    `flagship bridge with metrics + tracing API (no SDK): ${MESSAGES.toLocaleString('en')} messages for throughput, ${LATENCY_MESSAGES.toLocaleString('en')} at ${RATES.join(' and ')} msgs/s for latency, ` +
      `${ROUNDS} interleaved rounds, load ${load()}`,
  );
  const kinds = ['interchange', 'interchange-observed'] as const satisfies readonly BridgeKind[];
  const prefix = `bench-obs-${Date.now().toString(36)}-`;
  const results = await measureRounds(kinds, prefix, () => `; load ${load()}`);
  const plain = results.get('interchange') ?? [];
  const observed = results.get('interchange-observed') ?? [];
  for (const [kind, list] of results) {
    const cells = RATES.map((rate) => `p50 / p99 at ${rate}/s ${median(list.map((r) => r.latency[rate]?.p50 ?? Number.NaN)).toFixed(1)} / ${median(list.map((r) => r.latency[rate]?.p99 ?? Number.NaN)).toFixed(1)} ms`);
    console.log(`${kind.padEnd(20)} ${median(list.map((r) => r.throughput)).toFixed(0).padStart(6)} msgs/s (median); ${cells.join(', ')}`);
  }
  const ratios = observed.map((r, round) => r.throughput / (plain[round]?.throughput ?? Number.NaN));
  console.log(`\nbridge with metrics + tracing API (no SDK) / without, throughput per round: ${fixed(ratios)} → median ${median(ratios).toFixed(2)} ${verdict(median(ratios))}`);
}

if (only === undefined || only === 'core') coreRoute();
if (only === undefined) console.log('');
if (only === undefined || only === 'bridge') await bridge();
