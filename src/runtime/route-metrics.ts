/** Counters of one route since it was created. */
export interface RouteMetrics {
  /** Taken from the source. */
  received: number;
  /** Reached the end of the route (every output confirmed) and acked. */
  completed: number;
  /** Intentionally dropped by a filter (acked). */
  filtered: number;
  /** Step failures (one message may fail several times when retried). */
  failed: number;
  retried: number;
  deadLettered: number;
  discarded: number;
  /** Rejected to the source (nacked). */
  rejected: number;
  /** Dropped at intake because `expiresAt` had passed (acked). */
  expired: number;
  /** Taken and not yet settled. */
  inFlight: number;
  /** Still unsettled when a stop's deadline passed: handed back to the source, which redelivers them. */
  handedBack: number;
  /** Messages a step sent and its destination confirmed, by step id (`to`, wire tap, recipient list), and dead letters under the error handler's `deadLetterLabel`. */
  sent: Record<string, number>;
  /**
   * Per step id (steps in branches too; `intake` for messages failed before the first step): what it
   * passed on — counted while an observer watches the route (metrics, tracing with an SDK, the console):
   * unobserved, a route runs with no operator between its steps — and how often it failed (always).
   */
  steps: Record<string, StepMetrics>;
}

/** Counters of one step of a route. */
export interface StepMetrics {
  /** Deliveries the step passed on downstream (a splitter's parts, an aggregator's aggregates count one each). */
  passed: number;
  /** Failures in the step (one message may fail several times when retried). */
  failed: number;
  /** The step's own counters (`StepContext.count`): shed messages, circuit openings… */
  counts?: Record<string, number>;
  /** The step's own current values (`StepContext.gauge`): circuit state, queue depth… */
  gauges?: Record<string, number>;
}

export function emptyMetrics(): RouteMetrics {
  return { received: 0, completed: 0, filtered: 0, failed: 0, retried: 0, deadLettered: 0, discarded: 0, rejected: 0, expired: 0, inFlight: 0, handedBack: 0, sent: {}, steps: {} };
}

/** The counters of one step, created at zero on first use. */
export function stepMetricsOf(metrics: RouteMetrics, stepId: string): StepMetrics {
  let step = metrics.steps[stepId];
  if (step === undefined) {
    step = { passed: 0, failed: 0 };
    metrics.steps[stepId] = step;
  }
  return step;
}
