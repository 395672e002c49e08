import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client';
import type { Integration } from '../../src/runtime/integration.ts';
import type { RouteMetrics, StepMetrics } from '../../src/runtime/route-metrics.ts';
import type { RouteRuntime, RouteStatus } from '../../src/runtime/route-runtime.ts';
import { CellHistogram, DEFAULT_BUCKETS } from './metric-histogram.ts';
import { OutboxGauges, type OutboxBacklogSource } from './metric-outbox.ts';
import { stepKinds, TimingObserver } from './metric-route-probe.ts';
import { TransportGauges } from './metric-transports.ts';

export type { OutboxBacklogSource } from './metric-outbox.ts';

export interface PrometheusMetricsOptions {
  /** Where the metrics are registered (default: a registry of their own). One `createPrometheusMetrics` per registry. */
  readonly registry?: Registry;
  /** Prefix of every Interchange metric name (default `interchange_`); process metrics keep their standard names. */
  readonly prefix?: string;
  /** Also collect prom-client's process and Node.js metrics (`process_*`, `nodejs_*`; default true). */
  readonly defaultMetrics?: boolean;
  /** Histogram buckets, in seconds (default 100 µs to 10 s, see `DEFAULT_BUCKETS`). */
  readonly buckets?: readonly number[];
  /**
   * Time one execution in this many (default 16; 1 = every one): its duration and its steps'
   * (`route_execution_duration_seconds`, `step_duration_seconds`). A clock read costs as much as a
   * fast step, and timing every message cost a fast in-memory route a third of its throughput. The
   * histograms then count the timed executions; every counter counts every message.
   */
  readonly timingSampleEvery?: number;
}

/** An integration's metrics in the Prometheus text format: what a `/metrics` endpoint serves. */
export interface PrometheusMetrics {
  readonly registry: Registry;
  /** The `Content-Type` of `scrape()`'s text. */
  readonly contentType: string;
  /** The text exposition of every metric in the registry, counters read as of now. */
  scrape(): Promise<string>;
  /**
   * Adds an outbox's backlog gauges (`outbox` label `name`, default `outbox`), queried at each scrape;
   * a failing query sets `outbox_up` to 0 and keeps the last values.
   */
  watchOutbox(relay: OutboxBacklogSource, name?: string): void;
  /** Stops following the transports' status (the registry and its metrics stay). */
  close(): void;
}

/** How each message the route took in ended, as the `outcome` label of `route_message_outcomes_total`. */
const OUTCOMES = [
  ['completed', 'completed'],
  ['filtered', 'filtered'],
  ['deadLettered', 'dead_lettered'],
  ['discarded', 'discarded'],
  ['rejected', 'rejected'],
  ['expired', 'expired'],
  ['handedBack', 'handed_back'],
] as const satisfies readonly (readonly [keyof RouteMetrics, string])[];
const STATUSES: readonly RouteStatus[] = ['stopped', 'started', 'stopping', 'failed'];

/**
 * Prometheus metrics of an integration with prom-client: per route and step, per transport, per
 * outbox. The names, labels and the reasons behind them are in `docs/metrics.md`.
 *
 * Cost: counters are the runtime's own `RouteMetrics`, read at scrape time — nothing per message.
 * Histograms come from a `RouteObserver` registered here (call this before `integration.start()`):
 * per message, one bucket increment per leaf step, per execution and per publish, with no label work.
 *
 * Transports that report their status are followed from now on (`close()` stops that).
 * @example
 * const app = createIntegration({ routes });
 * const metrics = createPrometheusMetrics(app);
 * await app.start();
 * http.createServer(async (_, res) => res.writeHead(200, { 'content-type': metrics.contentType }).end(await metrics.scrape())).listen(9464);
 */
export function createPrometheusMetrics(integration: Integration, { registry = new Registry(), prefix = 'interchange_', defaultMetrics = true, buckets = DEFAULT_BUCKETS, timingSampleEvery = 16 }: PrometheusMetricsOptions = {}): PrometheusMetrics {
  if (!Number.isInteger(timingSampleEvery) || timingSampleEvery < 1) throw new RangeError(`timingSampleEvery must be a whole number ≥ 1, got ${timingSampleEvery}`);
  if (defaultMetrics && registry.getSingleMetric('process_cpu_user_seconds_total') === undefined) collectDefaultMetrics({ register: registry });
  const routes = (): readonly RouteRuntime[] => integration.routes;
  registerRouteMetrics(routes, registry, prefix);

  const histogram = <L extends string>(name: string, help: string, labelNames: readonly L[]): CellHistogram<L> => new CellHistogram({ name: `${prefix}${name}`, help, labelNames, buckets, registry });
  const observer = new TimingObserver({
    execution: histogram('route_execution_duration_seconds', 'Time from admitting a message to settling it, by outcome.', ['route', 'outcome']),
    step: histogram('step_duration_seconds', 'Time a message spends in a step without branches (from entering it to being passed on).', ['route', 'step']),
    publish: histogram('publish_confirm_duration_seconds', 'Time from publishing a message to its confirmation by the destination (a batch counts each of its messages).', ['route', 'step', 'transport']),
  }, timingSampleEvery);
  new Counter({
    name: `${prefix}publish_failed_messages_total`,
    help: 'Messages a destination refused or did not confirm.',
    labelNames: ['route', 'step', 'transport'],
    registers: [registry],
    collect() {
      this.reset();
      for (const cell of observer.publishes.values()) this.inc(cell.latency.labels, cell.failures);
    },
  });
  integration.observe(observer);

  const transports = new TransportGauges(() => integration.transports.all, registry, prefix);
  const outboxes = new OutboxGauges(registry, prefix);
  return {
    registry,
    contentType: registry.contentType,
    scrape: () => registry.metrics(),
    watchOutbox: (relay, name = 'outbox') => outboxes.watch(relay, name),
    close: () => transports.close(),
  };
}

/**
 * Counters and gauges of every route, set from its `RouteMetrics` at each scrape (absolute values,
 * not deltas: idempotent, however often or by whom the registry is read).
 */
function registerRouteMetrics(routes: () => readonly RouteRuntime[], registry: Registry, prefix: string): void {
  const kinds = new Map<string, Map<string, string>>();
  const kindsOf = (route: RouteRuntime): Map<string, string> => {
    let known = kinds.get(route.id);
    if (known === undefined) {
      known = stepKinds(route.definition.steps, new Map([['intake', 'intake']]));
      kinds.set(route.id, known);
    }
    return known;
  };
  const perRoute = (name: string, help: string, read: (metrics: RouteMetrics) => number): void => {
    new Counter({
      name: `${prefix}${name}`,
      help,
      labelNames: ['route'],
      registers: [registry],
      collect() {
        this.reset();
        for (const route of routes()) this.inc({ route: route.id }, read(route.metrics));
      },
    });
  };
  perRoute('route_messages_received_total', 'Messages the route took from its source.', (metrics) => metrics.received);
  perRoute('route_failures_total', 'Step failures (one message may fail several times when retried).', (metrics) => metrics.failed);
  perRoute('route_retries_total', 'Retries the error handler decided.', (metrics) => metrics.retried);
  new Counter({
    name: `${prefix}route_message_outcomes_total`,
    help: 'Messages the route is done with, by outcome (completed, filtered, dead_lettered, discarded, rejected, expired, handed_back); parts of a split count one each.',
    labelNames: ['route', 'outcome'],
    registers: [registry],
    collect() {
      this.reset();
      for (const route of routes()) for (const [counter, outcome] of OUTCOMES) this.inc({ route: route.id, outcome }, route.metrics[counter]);
    },
  });
  new Counter({
    name: `${prefix}route_sent_messages_total`,
    help: 'Messages a step sent and its destination confirmed (dead letters under the error handler\u2019s label).',
    labelNames: ['route', 'step'],
    registers: [registry],
    collect() {
      this.reset();
      for (const route of routes()) for (const [step, sent] of Object.entries(route.metrics.sent)) this.inc({ route: route.id, step }, sent);
    },
  });
  new Gauge({
    name: `${prefix}route_in_flight_messages`,
    help: 'Messages taken from the source and not yet settled.',
    labelNames: ['route'],
    registers: [registry],
    collect() {
      this.reset();
      for (const route of routes()) this.set({ route: route.id }, route.metrics.inFlight);
    },
  });
  new Gauge({
    name: `${prefix}route_status`,
    help: 'The route status: 1 for the current one of stopped, started, stopping, failed; 0 for the others.',
    labelNames: ['route', 'status'],
    registers: [registry],
    collect() {
      this.reset();
      for (const route of routes()) for (const status of STATUSES) this.set({ route: route.id, status }, route.status === status ? 1 : 0);
    },
  });
  const perStep = (name: string, help: string, read: (step: { passed: number; failed: number }) => number): void => {
    new Counter({
      name: `${prefix}${name}`,
      help,
      labelNames: ['route', 'step', 'kind'],
      registers: [registry],
      collect() {
        this.reset();
        for (const route of routes()) {
          const known = kindsOf(route);
          const counted = route.metrics.steps;
          for (const [step, kind] of known) if (step !== 'intake' || counted[step] !== undefined) this.inc({ route: route.id, step, kind }, read(counted[step] ?? NO_STEP));
          for (const [step, counters] of Object.entries(counted)) if (!known.has(step)) this.inc({ route: route.id, step, kind: 'unknown' }, read(counters));
        }
      },
    });
  };
  perStep('step_messages_passed_total', 'Messages a step passed on downstream (a splitter\u2019s parts count one each).', (step) => step.passed);
  perStep('step_failures_total', 'Failures in a step (one message may fail several times when retried); step `intake` for messages failed before the first step.', (step) => step.failed);
  // a pattern's own figures (`StepContext.count` / `gauge`), one series per route, step and name
  const eachFigure = (read: (step: StepMetrics) => Record<string, number> | undefined, apply: (labels: Record<'route' | 'step' | 'kind' | 'name', string>, value: number) => void): void => {
    for (const route of routes()) {
      const known = kindsOf(route);
      for (const [step, counters] of Object.entries(route.metrics.steps)) {
        for (const [name, value] of Object.entries(read(counters) ?? {})) apply({ route: route.id, step, kind: known.get(step) ?? 'unknown', name }, value);
      }
    }
  };
  new Counter({
    name: `${prefix}step_counter_total`,
    help: 'A pattern\u2019s own counters, by name (shed messages, circuit openings, fallbacks\u2026).',
    labelNames: ['route', 'step', 'kind', 'name'],
    registers: [registry],
    collect() {
      this.reset();
      eachFigure((step) => step.counts, (labels, value) => this.inc(labels, value));
    },
  });
  new Gauge({
    name: `${prefix}step_gauge`,
    help: 'A pattern\u2019s own current values, by name (circuit state, stage queue depth, concurrency\u2026).',
    labelNames: ['route', 'step', 'kind', 'name'],
    registers: [registry],
    collect() {
      this.reset();
      eachFigure((step) => step.gauges, (labels, value) => this.set(labels, value));
    },
  });
}

const NO_STEP = { passed: 0, failed: 0 };
