import { PartialPublishError, type StepDefinition } from '../../src/core/index.ts';
import type { ExecutionOutcome, ObservedRoute, PublishObservation, RouteObserver, RouteProbe } from '../../src/runtime/route-observer.ts';
import type { CellHistogram, HistogramCell } from './metric-histogram.ts';

/** The histograms the probes feed (see `docs/metrics.md`). */
export interface TimingHistograms {
  readonly execution: CellHistogram<'route' | 'outcome'>;
  readonly step: CellHistogram<'route' | 'step'>;
  readonly publish: CellHistogram<'route' | 'step' | 'transport'>;
}

/** One step's publishes to one transport: confirm latency per message, and how many messages were not confirmed. */
export interface PublishCell {
  readonly transport: string;
  readonly latency: HistogramCell;
  failures: number;
}

/** The series of one route, bound once and kept across its restarts (counts never go back). */
class RouteCells {
  readonly outcomes: Partial<Record<ExecutionOutcome, HistogramCell>> = {};
  readonly steps = new Map<StepDefinition, HistogramCell>();
  /** The last transport each step published to (a step nearly always sends to one scheme). */
  readonly lastPublish = new Map<StepDefinition, PublishCell>();

  constructor(
    readonly routeId: string,
    private readonly histograms: TimingHistograms,
    private readonly publishes: Map<string, PublishCell>,
  ) {}

  outcome(outcome: ExecutionOutcome): HistogramCell {
    return (this.outcomes[outcome] ??= this.histograms.execution.cell({ route: this.routeId, outcome: outcomeLabel(outcome) }));
  }

  step(step: StepDefinition): HistogramCell {
    let cell = this.steps.get(step);
    if (cell === undefined) {
      cell = this.histograms.step.cell({ route: this.routeId, step: step.id });
      this.steps.set(step, cell);
    }
    return cell;
  }

  publishTo(step: StepDefinition, uri: string): PublishCell {
    const last = this.lastPublish.get(step);
    if (last !== undefined && uri.startsWith(last.transport) && uri.charCodeAt(last.transport.length) === COLON) return last;
    const colon = uri.indexOf(':');
    const transport = colon < 0 ? uri : uri.slice(0, colon);
    const key = `${this.routeId}\u0000${step.id}\u0000${transport}`;
    let cell = this.publishes.get(key);
    if (cell === undefined) {
      cell = { transport, latency: this.histograms.publish.cell({ route: this.routeId, step: step.id, transport }), failures: 0 };
      this.publishes.set(key, cell);
    }
    this.lastPublish.set(step, cell);
    return cell;
  }
}

const COLON = 58;

/** `dead-lettered` → `dead_lettered`: label values in one style with the metric names. */
export function outcomeLabel(outcome: string): string {
  return outcome.replace(/-/g, '_');
}

/**
 * The metrics' route observer: per execution its duration by outcome, per leaf step its time, per
 * message published its confirm latency (steps of a sample of executions). Series are bound when a route first starts, so each hook costs a map
 * lookup and one `HistogramCell.observe`; its per-execution state is whether the execution is timed step by step.
 */
export class TimingObserver implements RouteObserver {
  private readonly routes = new Map<string, RouteCells>();
  /** Every publish series by route, step and transport (read by the failures counter at scrape time). */
  readonly publishes = new Map<string, PublishCell>();

  constructor(
    private readonly histograms: TimingHistograms,
    /** Steps are timed for one execution in this many. */
    private readonly stepSampleEvery = 1,
  ) {}

  attach(route: ObservedRoute): RouteProbe {
    let cells = this.routes.get(route.id);
    if (cells === undefined) {
      cells = new RouteCells(route.id, this.histograms, this.publishes);
      for (const step of leafSteps(route.definition.steps)) cells.step(step);
      this.routes.set(route.id, cells);
    }
    return probeOf(cells, this.stepSampleEvery);
  }
}

function probeOf(cells: RouteCells, sampleEvery: number): RouteProbe<boolean> {
  let admitted = 0;
  return {
    // the state: whether this execution is timed (1 in `sampleEvery`); another probe (a tracer) may
    // have the runtime follow more executions: only this probe's own sample goes into the histograms
    begin: () => {
      admitted = admitted + 1 === sampleEvery ? 0 : admitted + 1;
      return admitted === 0;
    },
    followSteps: (timed) => timed,
    leaveStep: (timed, step, durationMs) => {
      if (timed && durationMs !== undefined) cells.step(step).observe(durationMs / 1000);
    },
    end: (timed, outcome, durationMs) => {
      if (timed && durationMs !== undefined) cells.outcome(outcome).observe(durationMs / 1000);
    },
    publish: (step, uri, messages): PublishObservation => {
      const cell = cells.publishTo(step, uri);
      const startedAt = performance.now();
      return {
        done: (error) => {
          // per message: a batch's messages each waited for its confirm
          const failed = error === undefined ? 0 : error instanceof PartialPublishError ? Math.min(error.failures.size, messages.length) : messages.length;
          if (failed < messages.length) cell.latency.observe((performance.now() - startedAt) / 1000, messages.length - failed);
          cell.failures += failed;
        },
      };
    },
  };
}

/** Steps without branches, in branches too: the ones whose time the runtime measures. */
function leafSteps(steps: readonly StepDefinition[]): StepDefinition[] {
  return steps.flatMap((step) => (step.branches.length === 0 ? [step] : step.branches.flatMap(leafSteps)));
}

/** Step id → kind for every step of a route, in branches too. */
export function stepKinds(steps: readonly StepDefinition[], into = new Map<string, string>()): Map<string, string> {
  for (const step of steps) {
    into.set(step.id, step.kind);
    for (const branch of step.branches) stepKinds(branch, into);
  }
  return into;
}
