import { Subject, filter as rxFilter, map as rxMap } from 'rxjs';
import { createIntegration, createMessage, from, schemaModule, silentLogger, type Integration, type Message } from '../facade/index.ts';
import type { RouteObserver } from '../src/runtime/route-observer.ts';
import { parseEndpoint } from '../src/spi.ts';
import { validate as validatePattern } from '../patterns/validate.ts';
import { benchRegistry } from './schema-validation.ts';

/** The workload: telemetry-like bodies, ~10 % filtered out, ~25 % "alerts". */
export interface Reading {
  readonly deviceId: string;
  readonly temperature: number;
  readonly seq: number;
}
interface Enriched extends Reading {
  readonly temperatureF: number;
}
interface Out {
  readonly deviceId: string;
  readonly kind: 'alert' | 'reading';
  readonly c: number;
  readonly f: number;
}

/** `.validate('bench.reading@1')` as a step (the same step the DSL's `.validate` adds). */
const validateStep = validatePattern<Reading>('bench.reading@1');

export function readings(count: number): Reading[] {
  return Array.from({ length: count }, (_, seq) => ({ deviceId: `d${seq % 50}`, temperature: (seq % 100) - 15, seq }));
}

const valid = (r: Reading): boolean => r.temperature > -10;
const enrich = (r: Reading): Enriched => ({ ...r, temperatureF: (r.temperature * 9) / 5 + 32 });
const hot = (r: Enriched): boolean => r.temperature >= 50;
const shape = (r: Enriched, kind: 'alert' | 'reading'): Out => ({ deviceId: r.deviceId, kind, c: r.temperature, f: r.temperatureF });

export interface RunResult {
  readonly name: string;
  readonly messages: number;
  readonly seconds: number;
  readonly perSecond: number;
  readonly out: number;
  /**
   * CPU time of the process (all threads: GC helpers too) per message over the same window, in µs:
   * steadier than the rate on a shared machine, where waiting for a core counts in wall time only.
   */
  readonly cpuMicrosPerMessage: number;
}

/** The clocks a run reads at its start: wall time and the process's CPU time. */
interface Clocks {
  readonly wall: bigint;
  readonly cpu: NodeJS.CpuUsage;
}

function startClocks(): Clocks {
  return { wall: process.hrtime.bigint(), cpu: process.cpuUsage() };
}

function result(name: string, messages: number, started: Clocks, out: number): RunResult {
  const seconds = Number(process.hrtime.bigint() - started.wall) / 1e9;
  const cpu = process.cpuUsage(started.cpu);
  return { name, messages, seconds, perSecond: messages / seconds, out, cpuMicrosPerMessage: (cpu.user + cpu.system) / messages };
}

export function forLoop(bodies: readonly Reading[]): RunResult {
  const started = startClocks();
  let out = 0;
  const sink: Out[] = [];
  for (const body of bodies) {
    if (!valid(body)) continue;
    const enriched = enrich(body);
    const routed = hot(enriched) ? shape(enriched, 'alert') : shape(enriched, 'reading');
    sink.push(routed);
    if (sink.length === 1000) sink.length = 0;
    out += 1;
  }
  return result('plain for-loop', bodies.length, started, out);
}

export function plainRx(bodies: readonly Reading[]): RunResult {
  const started = startClocks();
  let out = 0;
  const source = new Subject<Reading>();
  const sink: Out[] = [];
  source
    .pipe(
      rxFilter(valid),
      rxMap(enrich),
      rxMap((r) => (hot(r) ? { r, kind: 'alert' as const } : { r, kind: 'reading' as const })),
      rxMap(({ r, kind }) => shape(r, kind)),
    )
    .subscribe((o) => {
      sink.push(o);
      if (sink.length === 1000) sink.length = 0;
      out += 1;
    });
  for (const body of bodies) source.next(body);
  source.complete();
  return result('plain RxJS pipeline', bodies.length, started, out);
}

/**
 * The same work as an Interchange route between two in-memory channels, at-least-once: every message
 * admitted under prefetch, settled, published to a bounded channel and consumed (acked) there.
 *
 * `createMessages: 'before'` builds the messages (ids, timestamps) before the clock starts, as the
 * baselines get their bodies ready-made: the route's own cost. `'timed'` builds them inside the timed
 * loop (a producer's cost: a random id is ~250 ns here, mostly allocation and GC of the string).
 */
export interface InterchangeRouteOptions {
  /** `'before'` (default): messages built before the clock starts; `'timed'`: inside the timed loop. */
  readonly createMessages?: 'before' | 'timed';
  /** Messages per publish into `memory:in` (default 250). */
  readonly producerBatch?: number;
  /** Adds `.validate('bench.reading@1')` as the first step. */
  readonly validate?: boolean;
  /** Route observers passed to `createIntegration` (issue 16: tracing). */
  readonly observers?: readonly RouteObserver[];
  /** Called with the integration before it starts (issue 16: `createPrometheusMetrics(app)`). */
  readonly observe?: (app: Integration) => void;
  /** The result's name (default: from the options). */
  readonly name?: string;
}

export async function interchangeRoute(
  bodies: readonly Reading[],
  { createMessages = 'before', producerBatch = 250, validate = false, observers = [], observe, name: label }: InterchangeRouteOptions = {},
): Promise<RunResult> {
  // Framework defaults throughout: channel capacity 1000, prefetch 100. (Oversized buffers are slower:
  // messages outlive young-generation collections and get promoted.)
  const source = from<Reading>('memory:in', { id: 'bench' });
  const route = (validate ? source.step('validate', validateStep) : source)
    .filter((m) => valid(m.body))
    .transform((m) => enrich(m.body))
    // The same work as the RxJS baseline's routing map: each branch tags the reading with its kind.
    .choice((c) =>
      c.when((m) => hot(m.body), (b) => b.transform((m) => ({ r: m.body, kind: 'alert' as const }))).otherwise((b) => b.transform((m) => ({ r: m.body, kind: 'reading' as const }))),
    )
    .transform((m) => shape(m.body.r, m.body.kind))
    .to('memory:out');
  const app = createIntegration({ routes: [route], logger: silentLogger, modules: validate ? [schemaModule({ registry: benchRegistry })] : [], observers });
  observe?.(app);
  await app.start();
  const memory = app.transports.forScheme('memory');
  const expected = bodies.filter(valid).length;
  const ready = createMessages === 'before' ? bodies.map((body) => createMessage(body)) : undefined;
  const started = startClocks();
  let out = 0;
  const done = new Promise<void>((resolve) => {
    memory.consume(parseEndpoint('memory:out')).subscribe((delivery) => {
      out += 1;
      delivery.ack();
      if (out === expected) resolve();
    });
  });
  const inbound = parseEndpoint('memory:in');
  const batch = producerBatch;
  for (let index = 0; index < bodies.length; index += batch) {
    let messages: Message<Reading>[];
    if (ready !== undefined) messages = ready.slice(index, index + batch);
    else {
      messages = [];
      for (let j = index; j < Math.min(bodies.length, index + batch); j += 1) messages.push(createMessage(bodies[j] as Reading));
    }
    await memory.publish(inbound, messages);
  }
  await done;
  const name = label ?? (validate ? 'Interchange route + .validate(contract)' : ready === undefined ? 'Interchange, creating messages (timed)' : 'Interchange route (memory → memory)');
  const run = result(name, bodies.length, started, out);
  await app.stop();
  return run;
}
