import { defer, finalize, tap, type Subscription } from 'rxjs';
import {
  fanOut,
  InterchangeError,
  RouteDefinitionError,
  Settlement,
  settlementOf,
  stepSpec,
  type AnyStep,
  type DeclaredStep,
  type Delivery,
  type GaveUpOutcome,
  type Message,
  type Step,
  type StepContext,
  type StepFactory,
  type StepSpec,
} from '../src/core/index.ts';

/** The breaker's states; the `state` gauge publishes them as 0, 1, 2 (see `CIRCUIT_STATE_GAUGE`). */
export type CircuitState = 'closed' | 'open' | 'half-open';

/** The values of the step's `state` gauge: `interchange_step_gauge{name="state"}`. */
export const CIRCUIT_STATE_GAUGE: Readonly<Record<CircuitState, number>> = Object.freeze({ closed: 0, open: 1, 'half-open': 2 });

export interface CircuitBreakerOptions {
  /** The sliding count window: the outcomes of the last `windowSize` calls decide (default 20). */
  readonly windowSize?: number;
  /** No opening before the window holds this many calls (default 10, at most `windowSize`). */
  readonly minimumCalls?: number;
  /** Opens when failed calls are at least this percentage of the window (1–100, default 50). */
  readonly failureRateThreshold?: number;
  /** A call whose outcome took at least this long counts as a failure (the message itself still goes on); default: none. */
  readonly slowCallMs?: number;
  /** How long the circuit stays open before it lets trial calls through (default 30,000). */
  readonly openMs?: number;
  /** Trial calls let through when half-open: all succeed → closed, any fails → open again (default 1). */
  readonly halfOpenCalls?: number;
}

/**
 * A message met an open circuit (or a half-open one whose trial calls are all under way) and the
 * breaker has no fallback. Not permanent: the route's error handler decides (retry after
 * `retryInMs`, dead-letter, reject to the source — the default). Counted as an attempt like any
 * failure: the handler's `maxAttempts` bounds how often one message meets the open circuit.
 * @example .onError((f) => (f.error.original instanceof CircuitOpenError ? retryAfter(f.error.original.retryInMs) : reject()), { maxAttempts: 5 })
 */
export class CircuitOpenError extends InterchangeError {
  override readonly name = 'CircuitOpenError';
  constructor(
    readonly state: CircuitState,
    /** Time until the circuit lets trial calls through again (0 when half-open). */
    readonly retryInMs: number,
  ) {
    super('CIRCUIT_OPEN', `circuit ${state}: call not permitted${retryInMs > 0 ? ` (trial calls in ${retryInMs} ms)` : ''}`);
  }
}

interface Policy {
  readonly windowSize: number;
  readonly minimumCalls: number;
  readonly failureRateThreshold: number;
  readonly slowCallMs: number | undefined;
  readonly openMs: number;
  readonly halfOpenCalls: number;
}

/**
 * Circuit breaker (Camel's `circuitBreaker()` with Resilience4j, MassTransit's `UseCircuitBreaker`)
 * around a branch of steps, usually one `.to(…)`.
 *
 * - **closed**: every message goes through `branch`; each call's outcome goes into a sliding window
 *   of the last `windowSize` calls. Once it holds `minimumCalls` and the failure rate reaches
 *   `failureRateThreshold` %, the circuit opens.
 * - **open** for `openMs` (a timer on the context's scheduler): messages go to `fallback` if given,
 *   else fail fast with `CircuitOpenError` through the route's error handler.
 * - **half-open**: `halfOpenCalls` trial messages go through the branch, the others are treated as
 *   in open; all trials succeed → closed (fresh window), one fails → open again.
 *
 * What a call's outcome is: it succeeded when the message leaves the branch (or the branch acks it
 * without passing it on, e.g. a filter); it failed when the branch rejects it (a step of the branch
 * failed and the route's error handler rejected it — the default handler does) or when it was slow.
 * The route's error handler applies inside the branch as anywhere (its retries run before the
 * outcome is known); a call the handler dead-letters or discards counts as failed too (the runtime
 * tells the call's settlement, `noteOutcome`), a filtered one as passed. Outcomes of calls started before the
 * last change of state are not counted.
 *
 * Settlement (at-least-once): the source delivery settles as the branch (or fallback) settles its
 * message — what leaves either continues after the breaker and is acked at the route's end; a
 * rejected call rejects the source. Failures inside the fallback go to the route's error handler
 * and leave the breaker's state alone. The breaker holds no messages: on stop, calls in flight
 * finish, the open timer is cancelled. State lives per run of the route (a restart starts closed).
 *
 * Figures: gauge `state` (0 closed, 1 open, 2 half-open), counters `opened`, `rejected` (messages
 * not let through: open, or half-open with every trial under way), `fallback` (of those, sent to the
 * fallback), `slow` (calls counted as failed for their duration). Each change of state is logged once (info).
 * @example circuitBreaker(toQueue, { fallback: toParked, failureRateThreshold: 50, openMs: 10_000 })
 */
export function circuitBreaker<T>(branch: AnyStep, { fallback, ...options }: CircuitBreakerOptions & { readonly fallback?: AnyStep | undefined } = {}): StepFactory<T, unknown> {
  const policy = circuitBreakerPolicy(options);
  return (context) => {
    const branches = fallback === undefined ? [observeOutcomes(branch)] : [observeOutcomes(branch), fallback];
    return ((source) =>
      defer(() => {
        const breaker = new Breaker(context, policy);
        return fanOut(context, branches, (delivery, inputs) => {
          const generation = breaker.permit();
          if (generation !== undefined) {
            inputs[0]?.next(new BreakerCall(delivery, breaker, generation, context.scheduler.now()));
            return;
          }
          context.count('rejected');
          if (fallback === undefined) throw breaker.openError();
          context.count('fallback');
          inputs[1]?.next(delivery);
        })(source).pipe(finalize(() => breaker.dispose()));
      })) as Step<T, unknown>;
  };
}

/** Checks and completes the options: a `RouteDefinitionError` when one is out of range. */
function circuitBreakerPolicy({ windowSize = 20, minimumCalls = Math.min(10, windowSize), failureRateThreshold = 50, slowCallMs, openMs = 30_000, halfOpenCalls = 1 }: CircuitBreakerOptions): Policy {
  const wrong = (what: string): never => {
    throw new RouteDefinitionError(`circuitBreaker: ${what}`);
  };
  if (!Number.isInteger(windowSize) || windowSize < 1) wrong(`windowSize must be an integer ≥ 1, got ${windowSize}`);
  if (!Number.isInteger(minimumCalls) || minimumCalls < 1 || minimumCalls > windowSize) wrong(`minimumCalls must be an integer within [1, windowSize=${windowSize}], got ${minimumCalls}`);
  if (!(failureRateThreshold > 0 && failureRateThreshold <= 100)) wrong(`failureRateThreshold must be a percentage within (0, 100], got ${failureRateThreshold}`);
  if (slowCallMs !== undefined && !(slowCallMs > 0 && Number.isFinite(slowCallMs))) wrong(`slowCallMs must be a finite number > 0, got ${slowCallMs}`);
  if (!(openMs >= 0 && Number.isFinite(openMs))) wrong(`openMs must be a finite number ≥ 0, got ${openMs}`);
  if (!Number.isInteger(halfOpenCalls) || halfOpenCalls < 1) wrong(`halfOpenCalls must be an integer ≥ 1, got ${halfOpenCalls}`);
  return { windowSize, minimumCalls, failureRateThreshold, slowCallMs, openMs, halfOpenCalls };
}

/** The branch, telling each call it passed (succeeded) as its message leaves the branch. */
function observeOutcomes(branch: AnyStep): AnyStep {
  return (source) =>
    branch(source).pipe(
      tap((delivery) => {
        // a part of a split inside the branch is not the call: the call ends when its parts settled
        const call = settlementOf(delivery);
        if (call instanceof BreakerCall) call.passed();
      }),
    );
}

/**
 * One message let through the branch: the source's settlement, with the call's outcome recorded
 * once — when the message leaves the branch (success) or when the branch settles it.
 */
class BreakerCall extends Settlement {
  private recorded = false;

  constructor(
    private readonly source: Delivery,
    private readonly breaker: Breaker,
    private readonly generation: number,
    private readonly startedAt: number,
  ) {
    super(source.message);
  }

  override get origin(): Message {
    return this.source.origin;
  }

  passed(): void {
    this.record(false);
  }

  /** Dead-lettered or discarded in the branch (the route's error handler gave up on it): a failed call; a filter is not. Told on to the source. */
  override noteOutcome(outcome: GaveUpOutcome, reason?: string): void {
    if (outcome !== 'filtered') this.record(true);
    settlementOf(this.source)?.noteOutcome(outcome, reason);
  }

  protected onAck(): void {
    this.record(false);
    this.source.ack();
  }

  protected onNack(reason: Error): void {
    this.record(true);
    this.source.nack(reason);
  }

  private record(failed: boolean): void {
    if (this.recorded) return;
    this.recorded = true;
    this.breaker.record(this.generation, failed, this.startedAt);
  }
}

/** The state machine of one run of the step: window, state, open timer. */
class Breaker {
  private state: CircuitState = 'closed';
  /** Bumped at every change of state: outcomes of calls of an earlier generation are not counted. */
  private generation = 0;
  /** The window, a ring of outcomes (true: failed). */
  private readonly outcomes: boolean[] = [];
  private next = 0;
  private failures = 0;
  private trialsStarted = 0;
  private trialsPassed = 0;
  private openedAt = 0;
  private timer: Subscription | undefined;
  private disposed = false;

  constructor(
    private readonly context: StepContext,
    private readonly policy: Policy,
  ) {
    context.gauge('state', CIRCUIT_STATE_GAUGE.closed);
  }

  /** The generation of a call let through now, or undefined when the call is not permitted. */
  permit(): number | undefined {
    if (this.state === 'closed') return this.generation;
    if (this.state === 'half-open' && this.trialsStarted < this.policy.halfOpenCalls) {
      this.trialsStarted += 1;
      return this.generation;
    }
    return undefined;
  }

  openError(): CircuitOpenError {
    const retryInMs = this.state === 'open' ? Math.max(0, this.openedAt + this.policy.openMs - this.context.scheduler.now()) : 0;
    return new CircuitOpenError(this.state, retryInMs);
  }

  record(generation: number, failed: boolean, startedAt: number): void {
    if (this.disposed || generation !== this.generation) return;
    const { slowCallMs } = this.policy;
    if (!failed && slowCallMs !== undefined && this.context.scheduler.now() - startedAt >= slowCallMs) {
      this.context.count('slow');
      failed = true;
    }
    if (this.state === 'half-open') {
      if (failed) this.open('a trial call failed');
      else if ((this.trialsPassed += 1) >= this.policy.halfOpenCalls) this.close();
      return;
    }
    if (this.state !== 'closed') return;
    this.push(failed);
    const calls = this.outcomes.length;
    const failureRate = (this.failures / calls) * 100;
    if (calls >= this.policy.minimumCalls && failureRate >= this.policy.failureRateThreshold) this.open(`failure rate ${failureRate.toFixed(1)} % of the last ${calls} calls`);
  }

  dispose(): void {
    this.disposed = true;
    this.timer?.unsubscribe();
    this.timer = undefined;
  }

  private push(failed: boolean): void {
    if (this.outcomes.length < this.policy.windowSize) this.outcomes.push(failed);
    else {
      if (this.outcomes[this.next] === true) this.failures -= 1;
      this.outcomes[this.next] = failed;
      this.next = (this.next + 1) % this.policy.windowSize;
    }
    if (failed) this.failures += 1;
  }

  private open(why: string): void {
    this.enter('open', { reason: why, openMs: this.policy.openMs });
    this.openedAt = this.context.scheduler.now();
    this.context.count('opened');
    this.timer = this.context.scheduler.schedule(() => {
      this.timer = undefined;
      if (!this.disposed) this.enter('half-open', { trialCalls: this.policy.halfOpenCalls });
    }, this.policy.openMs);
  }

  private close(): void {
    this.outcomes.length = 0;
    this.next = 0;
    this.failures = 0;
    this.enter('closed', { trialCalls: this.trialsPassed });
  }

  private enter(state: CircuitState, fields: Readonly<Record<string, unknown>>): void {
    this.state = state;
    this.generation += 1;
    this.trialsStarted = 0;
    this.trialsPassed = 0;
    this.context.gauge('state', CIRCUIT_STATE_GAUGE[state]);
    this.context.log.info(`circuit breaker ${state}`, { route: this.context.routeId, step: this.context.stepId, ...fields });
  }
}

/** `.circuitBreaker(branch, { fallback, … })`: the breaker's options in the DSL, with the branches as declared steps. */
export interface CircuitBreakerStepOptions extends CircuitBreakerOptions {
  /** Where messages go while the circuit does not let them through (else they fail with `CircuitOpenError`). */
  readonly fallback?: readonly DeclaredStep[] | undefined;
}

/**
 * `.circuitBreaker(branch, options)`: the circuit breaker's DSL entry (kind `circuitBreaker`; its
 * branches are the protected steps, then the fallback). `O` is what leaves the branches. Options are
 * checked here, when the route is declared.
 * @example circuitBreakerStep(branchSteps, { fallback: parkedSteps, openMs: 5_000 })
 */
export function circuitBreakerStep<T, O = unknown>(branch: readonly DeclaredStep[], { fallback, ...options }: CircuitBreakerStepOptions = {}): StepSpec<T, O> {
  circuitBreakerPolicy(options);
  return stepSpec<T, O>(
    'circuitBreaker',
    (context, compiled) => circuitBreaker<T>(compiled[0] as AnyStep, { ...options, fallback: fallback === undefined ? undefined : compiled[1] })(context) as Step<T, O>,
    { branches: fallback === undefined ? [branch] : [branch, fallback] },
  );
}
