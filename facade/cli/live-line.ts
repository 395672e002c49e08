import type { RouteMetrics } from '../../src/runtime/route-metrics.ts';

export interface LiveLineOptions {
  /** Pad the route id to this many characters, so the lines of several routes align. */
  readonly idWidth?: number;
}

/** A step id the DSL made up (`<kind>-<n>`, e.g. `to-2`), as opposed to one the route named. */
const GENERATED_STEP_ID = /^[a-z][A-Za-z]*-\d+$/;

/**
 * One status line for a route: counters of `current`, then one counter per sending step the route
 * named (`.to(uri, { id: 'alerts' })` → `alerts 12`: messages that step sent and its destination
 * confirmed; steps with generated ids such as `to-1` are left out), and the throughput between two
 * snapshots — messages completed (reached the end of the route and acked) per second over
 * `elapsedSeconds`. Pure: the same snapshots always give the same line. With no `previous` snapshot
 * the rate is taken from zero, i.e. the average since the route was created.
 * @example
 * liveLine('orders', before, after, 1)
 * // 'orders  in 120  out 100  filtered 12  failed 3  dead-lettered 3  in-flight 5  100.0 msg/s'
 * liveLine('telemetry', before, after, 1) // with steps named 'readings' and 'alerts'
 * // 'telemetry  in 1020  out 1000  filtered 0  failed 20  dead-lettered 20  in-flight 20  readings 950  alerts 50  1000.0 msg/s'
 */
export function liveLine(routeId: string, previous: Readonly<RouteMetrics> | undefined, current: Readonly<RouteMetrics>, elapsedSeconds: number, { idWidth = 0 }: LiveLineOptions = {}): string {
  const counters = [
    ['in', current.received],
    ['out', current.completed],
    ['filtered', current.filtered],
    ['failed', current.failed],
    ['dead-lettered', current.deadLettered],
    ['in-flight', current.inFlight],
    ...namedSent(current),
  ] as const;
  const fields = counters.map(([label, value]) => `${label} ${value}`);
  return [routeId.padEnd(idWidth), ...fields, `${throughput(previous?.completed ?? 0, current.completed, elapsedSeconds).toFixed(1)} msg/s`].join('  ');
}

/** The `sent` counters of steps the route named, in the order they first sent. */
export function namedSent(metrics: Readonly<RouteMetrics>): [string, number][] {
  return Object.entries(metrics.sent).filter(([stepId]) => !GENERATED_STEP_ID.test(stepId));
}

/** Completed messages per second between two counts; 0 when no time has passed. */
export function throughput(previousCompleted: number, currentCompleted: number, elapsedSeconds: number): number {
  if (!(elapsedSeconds > 0)) return 0;
  return Math.max(0, currentCompleted - previousCompleted) / elapsedSeconds;
}
