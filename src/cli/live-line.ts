import type { RouteMetrics } from '../runtime/route-metrics.ts';

export interface LiveLineOptions {
  /** Pad the route id to this many characters, so the lines of several routes align. */
  readonly idWidth?: number;
}

/**
 * One status line for a route: counters of `current`, and the throughput between two snapshots —
 * messages completed (reached the end of the route and acked) per second over `elapsedSeconds`.
 * Pure: the same snapshots always give the same line. With no `previous` snapshot the rate is taken
 * from zero, i.e. the average since the route was created.
 * @example
 * liveLine('orders', before, after, 1)
 * // 'orders  in 120  out 100  filtered 12  failed 3  dead-lettered 3  in-flight 5  100.0 msg/s'
 */
export function liveLine(routeId: string, previous: Readonly<RouteMetrics> | undefined, current: Readonly<RouteMetrics>, elapsedSeconds: number, { idWidth = 0 }: LiveLineOptions = {}): string {
  const counters = [
    ['in', current.received],
    ['out', current.completed],
    ['filtered', current.filtered],
    ['failed', current.failed],
    ['dead-lettered', current.deadLettered],
    ['in-flight', current.inFlight],
  ] as const;
  const fields = counters.map(([label, value]) => `${label} ${value}`);
  return [routeId.padEnd(idWidth), ...fields, `${throughput(previous?.completed ?? 0, current.completed, elapsedSeconds).toFixed(1)} msg/s`].join('  ');
}

/** Completed messages per second between two counts; 0 when no time has passed. */
export function throughput(previousCompleted: number, currentCompleted: number, elapsedSeconds: number): number {
  if (!(elapsedSeconds > 0)) return 0;
  return Math.max(0, currentCompleted - previousCompleted) / elapsedSeconds;
}
