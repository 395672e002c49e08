import type { Message, StepDefinition, StepError } from '../core/index.ts';
import type { RouteDefinition } from '../dsl/route-definition.ts';

/**
 * How one execution — one delivery the route admitted from its source (or a replay injected into
 * it) — ended: `completed` (every output confirmed), `filtered`, `dead-lettered`, `discarded` (all
 * three acked), or `rejected` (nacked to the source).
 */
export type ExecutionOutcome = 'completed' | 'filtered' | 'dead-lettered' | 'discarded' | 'rejected';

/** One message the route gave up on: dead-lettered (after its dead letter was confirmed), discarded or rejected. */
export interface GaveUp {
  readonly routeId: string;
  readonly outcome: 'dead-lettered' | 'discarded' | 'rejected';
  /** The step that failed (`intake` for a message its transport could not take whole). */
  readonly step: StepDefinition;
  readonly error: StepError;
  /** The message as it failed (or as `prepareDeadLetter` made it: the flagship dead-letters what the device sent). */
  readonly message: Message;
  /** What was sent to the dead-letter destination: `message` with the failure in `x-interchange-*` headers. */
  readonly deadLetter?: Message | undefined;
  /** The dead-letter destination's URI. */
  readonly uri?: string | undefined;
  /** The error handler's reason (`gave up after 3 attempts`…). */
  readonly reason?: string | undefined;
  /** Epoch ms. */
  readonly at: number;
}

/** What a probe is told of one publish, once the destination has confirmed it or refused it. */
export interface PublishObservation {
  /** The messages to send instead (a tracer's: each carrying its send span's context); undefined keeps them. */
  readonly messages?: readonly Message[] | undefined;
  /** Called once: `error` undefined when every message was confirmed. */
  done(error: unknown): void;
}

/**
 * What one observer sees of one route's run (metrics, tracing, the console's dead-letter list). The
 * runtime calls it synchronously on the hot path: each method must be cheap and must not throw (a
 * throw is a bug in the observer; the runtime does not guard every call). `S` is the observer's own
 * state per execution: what `begin` returns is handed back to the other calls for that execution.
 *
 * Steps are followed by the delivery's settlement (`settlementOf`): parts of a split or a multicast,
 * and the aggregate an aggregator emits, are new settlements — their steps are not reported
 * (`enterStep`/`leaveStep` only see the admitted delivery's own way), their end is their parent's.
 */
export interface RouteProbe<S = unknown> {
  /** A delivery was admitted: returns this execution's state. */
  begin?(message: Message): S;
  /**
   * The message the route carries on, given the state `begin` returned: the same one, or one with
   * headers of the observer's (a tracer returns it with its span's `traceparent`).
   */
  carry?(state: S, message: Message): Message;
  /**
   * Whether the runtime follows the execution `begin` began (default: yes, when the probe has step
   * hooks or `end`): a followed execution is timed (`end` gets its duration) and its steps are reported.
   * Clock reads cost as much as a fast step, so a probe that times can follow a sample (the metrics
   * follow 1 execution in 16), a tracer only the executions its sampler records.
   */
  followSteps?(state: S): boolean;
  /** The delivery enters a step (also one inside a branch): only for executions some probe follows. */
  enterStep?(state: S, step: StepDefinition): void;
  /**
   * The delivery leaves a step, passed on downstream. `durationMs` is its time in the step, or
   * undefined for a step with branches (its time is its branches').
   */
  leaveStep?(state: S, step: StepDefinition, durationMs: number | undefined): void;
  /** The execution settled: how, after how long since admission (followed executions only, else undefined), and the error for `rejected`. */
  end?(state: S, outcome: ExecutionOutcome, durationMs: number | undefined, error: Error | undefined): void;
  /** A step publishes to `uri`: return what to send instead and/or be told when it is confirmed. */
  publish?(step: StepDefinition, uri: string, messages: readonly Message[]): PublishObservation | undefined;
  /** A message the route gave up on (for dead-letter lists; the route also counts and logs it). */
  gaveUp?(event: GaveUp): void;
}

/** A route as an observer is told of it at start: its id and its definition (the data the graph is drawn from). */
export interface ObservedRoute {
  readonly id: string;
  readonly definition: RouteDefinition;
}

/**
 * Watches routes: each time a route starts, `attach` may return a probe for that run. Bound in an
 * integration with `createIntegration({ observers })` or as a multi-binding of the `RouteObserver`
 * token (`metricsModule`, `tracingModule`, the console do this).
 */
export interface RouteObserver {
  attach(route: ObservedRoute): RouteProbe | undefined;
}

export const RouteObserver: unique symbol = Symbol.for('interchange.RouteObserver');
