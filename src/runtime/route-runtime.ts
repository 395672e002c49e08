import type { ServiceIdentifier } from 'inversify';
import { Observable, type SchedulerLike, type Subscription } from 'rxjs';
import {
  assertNever,
  deadLetterMessage,
  isExpired,
  isPermanentFailure,
  PartialPublishError,
  Relay,
  reducedDeadLetter,
  parseEndpoint,
  NotStartedError,
  createDelivery,
  StepError,
  toError,
  type AnyStep,
  type Delivery,
  type FailurePolicy,
  type Logger,
  type Message,
  type StepContext,
  type StepDefinition,
} from '../core/index.ts';
import { RateLimitedLog } from '../core/rate-limited-log.ts';
import { IDEMPOTENT_CONSUMER_KIND, type RouteDefinition } from '../dsl/route-definition.ts';
import { emptyMetrics, stepMetricsOf, type RouteMetrics } from './route-metrics.ts';
import { followedExecutionOf, InFlight, markOutcome, Run } from './execution.ts';
import { NO_PROBES, ProbeSet } from './probe-set.ts';
import type { ExecutionOutcome, GaveUp, PublishObservation, RouteObserver } from './route-observer.ts';
import { Receipts } from './receipts.ts';
import type { TransportRegistry } from './transport-registry.ts';
import { classifiedValuesOf, redactFailure } from '../security/redact-classified.ts';

/** Failure lines per route, outcome and error code before they are only counted (per window). */
const WARNINGS_PER_WINDOW = 10;
const WARNING_WINDOW_MS = 60_000;
/** The code of the idempotent consumer's `DuplicateInProgressError` (a pattern's error: named, not imported). */
const DUPLICATE_IN_PROGRESS = 'DUPLICATE_IN_PROGRESS';
/** Longest error text in a failure line (the dead letter carries up to 1,000 characters). */
const MAX_LOGGED_ERROR_CHARS = 300;

export type RouteStatus = 'stopped' | 'started' | 'stopping' | 'failed';

export interface RouteDependencies {
  readonly transports: TransportRegistry;
  readonly scheduler: SchedulerLike;
  readonly log: Logger;
  readonly service: <T>(id: ServiceIdentifier<T>) => T;
  /** Told when the route fails: its source ended with an error (a fatal transport failure). */
  readonly onFailed?: (route: RouteRuntime, error: Error) => void;
  /** Observers, each asked for a probe at every start (metrics, tracing, the console). */
  readonly observers?: () => readonly RouteObserver[];
}

/** A route's prefetch when neither the route nor its source transport (`Transport.defaultPrefetch`) sets one. */
const DEFAULT_PREFETCH = 100;

/**
 * One route, compiled and running: source → steps → ack.
 *
 * Contract: every delivery taken from the source is settled exactly once — acked when it reaches the
 * end of the route (all outputs confirmed), is filtered, discarded or dead-lettered; rejected when
 * the error handler says so or the dead-letter send fails. `stop` stops intake, waits until every
 * in-flight delivery has settled (or the deadline passes), then unsubscribes, which hands anything
 * still unsettled back to the transport for redelivery: those leave `inFlight` (counted in
 * `handedBack`), and settling one of them later does nothing.
 *
 * Delivery policy (`sourceOptions.delivery`, docs/delivery.md): under `at-most-once` the source
 * delivery is acked as it is admitted, so the settlement above decides the route's counts, dead
 * letters and receipts only — a rejection drops the message, a stop past its deadline loses what was
 * in flight. `effectively-once` is `at-least-once` with the idempotent consumer the DSL puts first.
 * With receipts (`sourceOptions.receipts`), a message's receipt is sent before its source is settled.
 *
 * Each message dead-lettered, discarded or rejected writes one WARN line (route, step, error code,
 * reason, message id); past 10 per minute for one route, outcome and code, they are counted and
 * summed up in one line at the end of the minute (or at stop).
 */
export class RouteRuntime {
  readonly metrics: RouteMetrics = emptyMetrics();
  private statusValue: RouteStatus = 'stopped';
  private source: Subscription | undefined;
  private pipeline: Subscription | undefined;
  private intake: Relay<Delivery> | undefined;
  private abort: AbortController | undefined;
  private pipelineDone = false;
  private idle: (() => void) | undefined;
  private run: Run | undefined;
  private failedWith: Error | undefined;
  /** True while `start` subscribes: a failure then is thrown to the caller, not logged. */
  private starting = false;
  private readonly warnings: RateLimitedLog;
  /** The probes of the current run (none without observers). */
  private probes: ProbeSet = NO_PROBES;
  /** `delivery: 'at-most-once'`: each source delivery is acked as it is admitted, before any step. */
  private readonly ackOnAdmission: boolean;
  /** `delivery: 'effectively-once'`: a copy whose key another consumer has claimed waits for that claim (see `failed`). */
  private readonly waitsForClaims: boolean;
  /**
   * At-most-once only: source deliveries waiting, unacked, for a place in the run. Acking at admission
   * frees the transport's prefetch, so the route bounds its admissions itself (at most `prefetch` in
   * flight); what waits here was neither acked nor processed, and goes back to the source on stop.
   */
  private held: Delivery[] | undefined;
  /** At-most-once: an admission is acking its source (deliveries arriving meanwhile are held, in order). */
  private admitting = false;
  private prefetch = DEFAULT_PREFETCH;
  /** The route's receipts, when it opted in (`receipts: { allow }`). */
  private readonly receipts: Receipts | undefined;
  /**
   * The route decrypts (a `decrypt` step anywhere in it): what a later step fails on is clear text, so
   * without a `prepareDeadLetter` of its own the route dead-letters the message as it was received —
   * still encrypted — never the clear text.
   */
  private readonly deadLettersAsReceived: boolean;
  /** Admits a delivery into the current run as if the source had (replays). */
  private inject: ((delivery: Delivery, onEnd: (outcome: ExecutionOutcome) => void) => void) | undefined;

  constructor(
    readonly definition: RouteDefinition,
    private readonly deps: RouteDependencies,
  ) {
    this.warnings = new RateLimitedLog(deps.log, { limit: WARNINGS_PER_WINDOW, windowMs: WARNING_WINDOW_MS, scheduler: deps.scheduler });
    const { delivery = 'at-least-once', receipts } = definition.sourceOptions;
    this.ackOnAdmission = delivery === 'at-most-once';
    this.waitsForClaims = delivery === 'effectively-once';
    this.receipts = receipts === undefined ? undefined : new Receipts(definition.id, receipts, delivery, (uri, messages) => deps.transports.publish(uri, messages), deps.log);
    this.deadLettersAsReceived = definition.errorHandler.prepareDeadLetter === undefined && hasStepOfKind(definition.steps, DECRYPT_KIND);
  }

  get id(): string {
    return this.definition.id;
  }

  get status(): RouteStatus {
    return this.statusValue;
  }

  /** The error that failed the route's last run (its source's); undefined if it has not failed since it started. */
  get failure(): Error | undefined {
    return this.failedWith;
  }

  /**
   * Subscribes to the source and runs the steps. Throws what resolving the transport or building a
   * step throws, and the source's error if it fails while being subscribed to (an endpoint option its
   * transport refuses, a consume the broker denies at once): the route is then `failed` and holds nothing.
   */
  start(): void {
    if (this.statusValue === 'started' || this.statusValue === 'stopping') return;
    if (this.statusValue === 'failed') this.detach();
    const endpoint = parseEndpoint(this.definition.source);
    const transport = this.deps.transports.forScheme(endpoint.scheme);
    const run = new Run();
    this.probes = new ProbeSet((this.deps.observers?.() ?? []).flatMap((observer) => observer.attach({ id: this.id, definition: this.definition }) ?? []));
    const pipeline = this.compile(this.definition.steps, run);
    const intake = new Relay<Delivery>(); // subscribed once, by the pipeline
    this.intake = intake;
    this.abort = new AbortController();
    this.pipelineDone = false;
    this.failedWith = undefined;
    this.run = run;
    this.held = this.ackOnAdmission ? [] : undefined;
    this.statusValue = 'started';
    this.inject = (delivery, onEnd) => {
      // a replay has no broker to forget it: its source settles with its outcome, whatever the policy
      const admitted = this.admit(delivery, run, false);
      if (admitted === undefined) return;
      admitted.onEnd = onEnd;
      intake.next(admitted);
    };
    this.pipeline = intake.pipe(pipeline).subscribe({
      next: (delivery) => {
        this.metrics.completed += 1;
        delivery.ack();
      },
      error: (thrown: unknown) => {
        const error = toError(thrown);
        this.statusValue = 'failed';
        this.failedWith = error;
        if (!this.starting) this.deps.log.error('route failed: its transport ended the stream', { route: this.id, error });
        this.pipelineDone = true;
        this.checkIdle();
        this.deps.onFailed?.(this, error);
      },
      complete: () => {
        this.pipelineDone = true;
        this.checkIdle();
      },
    });
    // The source subscription is kept apart from the pipeline's: completing the pipeline on stop must
    // not tear down the source, whose teardown hands unsettled deliveries back for redelivery.
    this.starting = true;
    try {
      const prefetch = this.definition.sourceOptions.prefetch ?? transport.defaultPrefetch ?? DEFAULT_PREFETCH;
      this.prefetch = prefetch;
      const held = this.held;
      this.source = transport.consume(endpoint, { prefetch, signal: this.abort.signal }).subscribe({
        next: (delivery) => {
          if (intake.stopped || this.statusValue !== 'started') return; // arrived after stop: left unsettled, returned on unsubscribe
          if (held !== undefined && (held.length > 0 || run.inFlight >= prefetch || this.admitting)) {
            // at-most-once: behind the queue, over the bound, or arriving inside an admission's ack (a
            // transport may deliver the next message synchronously from it): waits its turn, in order
            held.push(delivery);
            if (!this.admitting) this.admitHeld(run);
            return;
          }
          const admitted = this.admit(delivery, run);
          if (admitted !== undefined) intake.next(admitted);
          if (held !== undefined && held.length > 0) this.admitHeld(run);
        },
        error: (error: unknown) => intake.error(error),
        complete: () => intake.complete(),
      });
    } catch (thrown) {
      intake.error(thrown); // a consume that throws instead of erroring fails the route the same way
    } finally {
      this.starting = false;
    }
    const failure = this.failedWith as Error | undefined; // set by the pipeline's error handler above
    if (failure !== undefined) {
      // failed while subscribing: let go of both subscriptions now, the route never ran
      this.detach();
      throw failure;
    }
  }

  /**
   * Stops intake, drains in-flight deliveries up to `deadlineMs`, then detaches from the source.
   * Resolves with how many deliveries were still unsettled at the deadline and went back to the source.
   */
  async stop(deadlineMs = 10_000): Promise<number> {
    if (this.statusValue !== 'started' && this.statusValue !== 'failed') return 0;
    this.statusValue = 'stopping';
    this.abort?.abort();
    this.intake?.complete();
    const drained = new Promise<void>((resolve) => {
      this.idle = resolve;
      this.checkIdle();
    });
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<'late'>((resolve) => {
      timer = setTimeout(() => resolve('late'), deadlineMs);
    });
    const outcome = await Promise.race([drained, late]);
    clearTimeout(timer);
    this.idle = undefined;
    const handedBack = this.detach();
    if (outcome === 'late' || handedBack > 0) {
      this.deps.log.warn(`route stop deadline passed; ${handedBack} unsettled deliver${handedBack === 1 ? 'y goes' : 'ies go'} back to the source`, { route: this.id, deadlineMs, handedBack });
    }
    this.statusValue = 'stopped';
    this.warnings.flush();
    return handedBack;
  }

  /**
   * Ends the run and unsubscribes from the pipeline and the source, whose teardown hands unsettled
   * deliveries back for redelivery. The run ends first, so nothing settled by the teardown counts.
   * Returns how many deliveries the run still had unsettled.
   */
  private detach(): number {
    const handedBack = this.run?.end() ?? 0;
    // at-most-once: held deliveries were neither acked nor admitted; the source's teardown takes them back
    if (this.held !== undefined) this.held = [];
    this.metrics.inFlight -= handedBack;
    this.metrics.handedBack += handedBack;
    this.run = undefined;
    this.inject = undefined;
    this.pipeline?.unsubscribe();
    this.source?.unsubscribe();
    this.pipeline = undefined;
    this.source = undefined;
    return handedBack;
  }

  private checkIdle(): void {
    if (this.idle !== undefined && this.pipelineDone && this.metrics.inFlight === 0) this.idle();
  }

  /**
   * Wraps a source delivery so the route counts it in flight until it settles; drops expired ones;
   * hands one the transport could not take whole (`intakeError`) to the error handler at `intake`.
   * At-most-once (`ackOnAdmission`), acks the source first; the execution's own settlement then only
   * counts, dead-letters and sends receipts.
   */
  private admit(source: Delivery, run: Run, ackOnAdmission = this.ackOnAdmission): InFlight | undefined {
    const metrics = this.metrics;
    metrics.received += 1;
    if (isExpired(source.message)) {
      metrics.expired += 1;
      source.ack();
      return undefined;
    }
    metrics.inFlight += 1;
    run.inFlight += 1;
    // at-most-once: the source forgets the message now (counted in flight first: a transport that
    // delivers the next message from inside this ack finds the bound taken and the admission busy)
    if (ackOnAdmission) {
      this.admitting = true;
      try {
        source.ack();
      } finally {
        this.admitting = false;
      }
    }
    const probes = this.probes;
    let admitted: InFlight;
    if (probes.execution.length === 0) {
      admitted = new InFlight(this, run, source, source.message, undefined, 0);
    } else {
      const states = probes.begin(source.message);
      const followed = probes.followed;
      // followed executions only are timed: a clock read costs as much as a fast step
      const now = followed ? performance.now() : 0;
      admitted = new InFlight(this, run, source, probes.carried ?? source.message, states, now);
      probes.carried = undefined;
      if (followed) {
        admitted.followed = true;
        const first = this.definition.steps[0];
        if (first !== undefined && probes.followsSteps) {
          // the route's first step is entered at admission (no boundary before it)
          admitted.stepStartedAt = now;
          probes.enterStep(states, first);
        }
      }
    }
    if (this.receipts !== undefined) admitted.receipt = this.receipts.requested(source.message);
    if (source.intakeError === undefined) return admitted;
    const intake: StepDefinition = { id: 'intake', kind: 'intake', declaredAt: this.definition.declaredAt, sendsTo: [], sends: false, branches: [], build: () => (stream) => stream };
    // its last attempt: a message the transport could not take is no better the second time
    this.failed(intake, admitted, source.intakeError, this.definition.errorHandler.maxAttempts);
    return undefined;
  }

  /** At-most-once: admits held deliveries while the run has room. */
  private admitHeld(run: Run): void {
    const held = this.held;
    const intake = this.intake;
    if (held === undefined || intake === undefined || run !== this.run) return;
    while (held.length > 0 && run.inFlight < this.prefetch && !intake.stopped && this.statusValue === 'started') {
      const admitted = this.admit(held.shift() as Delivery, run);
      if (admitted !== undefined) intake.next(admitted);
    }
  }

  /** @internal called by InFlight once the delivery it tracks has settled, while its run goes on */
  settledOne(run: Run, execution: InFlight, outcome: ExecutionOutcome, error: Error | undefined): void {
    run.inFlight -= 1;
    this.metrics.inFlight -= 1;
    // at-most-once: a place in the run is free for a held delivery (admitted on a fresh stack, not inside this settlement)
    if (this.held !== undefined && this.held.length > 0) queueMicrotask(() => this.admitHeld(run));
    execution.onEnd?.(outcome);
    if (this.probes.timed) this.probes.end(execution.states, outcome, execution.followed ? performance.now() - execution.startedAt : undefined, error);
    this.checkIdle();
  }

  /**
   * Runs one message through the route as if its source had delivered it (the console's replay of a
   * dead letter): resolves with how its execution ended. Rejects with `NotStartedError` unless the
   * route is running.
   */
  replay(message: Message): Promise<ExecutionOutcome> {
    const inject = this.inject;
    if (inject === undefined || this.statusValue !== 'started') return Promise.reject(new NotStartedError(`route '${this.id}' is ${this.statusValue}: start it to replay into it`));
    return new Promise<ExecutionOutcome>((resolve) => {
      let outcome: ExecutionOutcome | undefined;
      const source = createDelivery(message, {
        ack: () => resolve(outcome ?? 'completed'),
        nack: () => resolve('rejected'),
      });
      inject(source, (ended) => (outcome = ended));
    });
  }

  /**
   * Compiles a list of steps. One boundary operator follows each step: it counts what the step passed
   * on (the graph's per-edge rates) and, for an execution the probes follow, tells them the delivery
   * left that step and entered the next (one clock read for both). The route's first step is entered
   * at admission; a branch's first step by a boundary at the head of the branch.
   */
  private compile(steps: readonly StepDefinition[], run: Run, branch = false): AnyStep {
    const built = steps.map((step, index) => this.observed(step, step.build(this.contextFor(step, run)), steps[index + 1]));
    const pipeline: AnyStep = (source) => built.reduce((stream, step) => stream.pipe(step), source);
    const first = steps[0];
    if (!branch || first === undefined || !this.probes.followsSteps) return pipeline;
    const probes = this.probes;
    const enter = (delivery: Delivery): void => {
      const execution = followedExecutionOf(delivery);
      if (execution === undefined) return;
      execution.stepStartedAt = performance.now();
      probes.enterStep(execution.states, first);
    };
    return (source) => pipeline(boundary(source, enter));
  }

  /** A built step with the boundary after it (see `compile`); `next` is the step after it in its list. */
  private observed(step: StepDefinition, built: AnyStep, next: StepDefinition | undefined): AnyStep {
    const counters = stepMetricsOf(this.metrics, step.id);
    const probes = this.probes;
    // unobserved, a route runs as bare as it can: no operator between its steps
    if (probes.all.length === 0) return built;
    if (!probes.followsSteps) return (source) => boundary(built(source), () => (counters.passed += 1));
    const leaf = step.branches.length === 0;
    const leave = (delivery: Delivery): void => {
      counters.passed += 1;
      const execution = followedExecutionOf(delivery);
      if (execution === undefined) return;
      const now = performance.now();
      // a step with branches: its time is its branches' (its start was overwritten by theirs)
      probes.leaveStep(execution.states, step, leaf ? now - execution.stepStartedAt : undefined);
      if (next === undefined) return;
      execution.stepStartedAt = now;
      probes.enterStep(execution.states, next);
    };
    return (source) => boundary(built(source), leave);
  }

  /** A step's view of the route, for one run: once the run has ended, its late failures and filters change nothing. */
  private contextFor(step: StepDefinition, run: Run): StepContext {
    const { transports, scheduler, log, service } = this.deps;
    const metrics = this.metrics;
    const stepCounters = stepMetricsOf(metrics, step.id);
    return {
      routeId: this.id,
      stepId: step.id,
      declaredAt: step.declaredAt,
      scheduler,
      log,
      publish: (uri, sent) => {
        const observations = this.probes.publishing.length === 0 ? undefined : this.observePublish(step, uri, sent);
        const messages = observations?.messages ?? sent;
        let sending: Promise<void>;
        try {
          sending = transports.publish(uri, messages);
        } catch (thrown) {
          // a destination that cannot even be resolved (a bad computed URI): the same failure, as a rejection
          sending = Promise.reject(thrown instanceof Error ? thrown : new Error(String(thrown)));
        }
        // counted (and observed) on the side: the step sees the very promise the transport returned, with no extra turn
        sending.then(
          () => {
            metrics.sent[step.id] = (metrics.sent[step.id] ?? 0) + messages.length;
            observations?.done(undefined);
          },
          (error: unknown) => observations?.done(error),
        );
        return sending;
      },
      request: (uri, message, options) => transports.request(uri, message, options),
      count: (name, by = 1) => {
        const counts = (stepCounters.counts ??= {});
        counts[name] = (counts[name] ?? 0) + by;
      },
      gauge: (name, value) => {
        (stepCounters.gauges ??= {})[name] = value;
      },
      service,
      filtered: (delivery) => {
        if (!run.ended) metrics.filtered += 1;
        markOutcome(delivery, 'filtered');
        delivery.ack();
      },
      // a delivery of an ended run went back to the source, which redelivers it: no retry, no dead letter
      failed: (delivery, error, attempt) => (run.ended ? undefined : this.failed(step, delivery, error, attempt)),
      compile: (steps) => this.compile(steps, run, true),
    };
  }

  /** What the probes make of one publish: the messages to send and one callback for its confirmation. */
  private observePublish(step: StepDefinition, uri: string, sent: readonly Message[]): PublishObservation | undefined {
    const publishing = this.probes.publishing;
    // one probe (the usual case): its observation as it is, no wrapper per publish
    if (publishing.length === 1) return publishing[0]?.publish?.(step, uri, sent);
    let messages = sent;
    const observations: PublishObservation[] = [];
    for (const probe of this.probes.publishing) {
      const observation = probe.publish?.(step, uri, messages);
      if (observation === undefined) continue;
      observations.push(observation);
      if (observation.messages !== undefined) messages = observation.messages;
    }
    if (observations.length === 0) return undefined;
    return {
      messages,
      done: (error) => {
        for (const observation of observations) observation.done(error);
      },
    };
  }

  /** Tells the probes of a message the route gave up on. */
  private gaveUp(event: GaveUp): void {
    for (const probe of this.probes.all) probe.gaveUp?.(event);
  }

  /** Applies the route's error handler to one failed delivery; returns a retry delay or settles it. */
  private failed(step: StepDefinition, delivery: Delivery, thrown: unknown, attempt: number): number | undefined {
    const metrics = this.metrics;
    metrics.failed += 1;
    stepMetricsOf(metrics, step.id).failed += 1;
    const error = thrown instanceof StepError ? thrown : new StepError(this.id, step.id, step.declaredAt, thrown);
    // a failure quoting a classified field (its contract's `x-classification`) is scrubbed before any log,
    // observer, rejection reason or dead letter sees it (deadLetterMessage scrubs its headers too)
    const classified = classifiedValuesOf(delivery.message);
    if (classified.length > 0) redactFailure(error, classified);
    if (this.waitsForClaims && error.code === DUPLICATE_IN_PROGRESS && step.kind === IDEMPOTENT_CONSUMER_KIND) {
      // effectively-once: another consumer (after a crash: a dead one) holds this key's claim. The copy
      // waits here for the claim's outcome — bounded by the store's lease, paced by the step's own
      // `inProgressDelayMs` — instead of spending the source's redeliveries, which would lose it.
      metrics.retried += 1;
      return 0;
    }
    const handler = this.definition.errorHandler;
    let policy: FailurePolicy;
    try {
      policy = handler.decide({ error, message: delivery.message, attempt });
    } catch (decideError) {
      this.deps.log.error('error handler threw; rejecting the message', { route: this.id, step: step.id, error: decideError });
      policy = { action: 'reject' };
    }
    if (policy.action === 'retry' && (attempt >= handler.maxAttempts || error.permanent)) {
      const reason = error.permanent ? 'not retried: the message itself is at fault' : `gave up after ${attempt} attempts`;
      policy = handler.deadLetterUri === undefined ? { action: 'reject' } : { action: 'deadLetter', reason };
    }
    switch (policy.action) {
      case 'retry':
        metrics.retried += 1;
        return Math.max(0, policy.delayMs);
      case 'deadLetter': {
        const uri = handler.deadLetterUri;
        if (uri === undefined) {
          metrics.rejected += 1;
          this.report('rejected to the source', step, error, delivery.message, policy.reason);
          if (this.probes.all.length > 0) this.gaveUp({ routeId: this.id, outcome: 'rejected', step, error, message: delivery.message, reason: policy.reason, at: Date.now() });
          delivery.nack(error);
          return undefined;
        }
        let failedMessage = this.deadLettersAsReceived ? delivery.origin : delivery.message;
        if (handler.prepareDeadLetter !== undefined) {
          try {
            failedMessage = handler.prepareDeadLetter(delivery.message, delivery.origin);
          } catch (prepareError) {
            this.deps.log.error('prepareDeadLetter threw; dead-lettering the failed message as it is', { route: this.id, step: step.id, error: prepareError });
          }
        }
        const dead = deadLetterMessage(failedMessage, error, attempt, policy.reason);
        const reason = policy.reason;
        const sent = (): void => {
          metrics.deadLettered += 1;
          if (handler.deadLetterLabel !== undefined) metrics.sent[handler.deadLetterLabel] = (metrics.sent[handler.deadLetterLabel] ?? 0) + 1;
          this.report('dead-lettered', step, error, delivery.message, reason, { to: uri });
          if (this.probes.all.length > 0) this.gaveUp({ routeId: this.id, outcome: 'dead-lettered', step, error, message: failedMessage, deadLetter: dead, uri, reason, at: Date.now() });
          markOutcome(delivery, 'dead-lettered', `${reason ?? 'dead-lettered'}: ${clip(error.original.message)}`);
          delivery.ack();
        };
        const notSent = (sendError: unknown): void => {
          metrics.rejected += 1;
          this.deps.log.error('dead-letter send failed; rejecting to the source', { route: this.id, step: step.id, uri, error: sendError });
          delivery.nack(error);
        };
        this.deps.transports.publish(uri, [dead]).then(sent, (sendError: unknown) => {
          // the dead letter itself cannot be sent as it is (unencodable, too large): send the evidence reduced
          if (!isPermanentFailure(unwrapSingle(sendError))) return notSent(sendError);
          this.deps.transports.publish(uri, [reducedDeadLetter(dead, unwrapSingle(sendError) as Error)]).then(sent, notSent);
        });
        return undefined;
      }
      case 'discard':
        metrics.discarded += 1;
        this.report('discarded', step, error, delivery.message, policy.reason);
        if (this.probes.all.length > 0) this.gaveUp({ routeId: this.id, outcome: 'discarded', step, error, message: delivery.message, reason: policy.reason, at: Date.now() });
        markOutcome(delivery, 'discarded', `${policy.reason ?? 'discarded'}: ${clip(error.original.message)}`);
        delivery.ack();
        return undefined;
      case 'reject':
        metrics.rejected += 1;
        this.report('rejected to the source', step, error, delivery.message, undefined);
        if (this.probes.all.length > 0) this.gaveUp({ routeId: this.id, outcome: 'rejected', step, error, message: delivery.message, at: Date.now() });
        delivery.nack(error);
        return undefined;
      default:
        return assertNever(policy);
    }
  }

  /** The WARN line of one message the route gave up on, rate-limited per outcome and error code. */
  private report(outcome: string, step: StepDefinition, error: StepError, message: Message, reason: string | undefined, extra: Readonly<Record<string, unknown>> = {}): void {
    const text = clip(error.original.message);
    const about = { route: this.id, code: error.code };
    this.warnings.warn(`${outcome}\u0000${error.code}`, `message ${outcome}`, { ...about, step: step.id, reason: reason === undefined ? text : `${reason}: ${text}`, messageId: message.id, ...extra }, about);
  }
}



/** A pass-through operator calling `seen` with each delivery before passing it on (lighter than `tap`). */
function boundary(source: Observable<Delivery>, seen: (delivery: Delivery) => void): Observable<Delivery> {
  return new Observable<Delivery>((subscriber) =>
    source.subscribe({
      next: (delivery) => {
        seen(delivery);
        subscriber.next(delivery);
      },
      error: (error: unknown) => subscriber.error(error),
      complete: () => subscriber.complete(),
    }),
  );
}

function clip(text: string): string {
  return text.length <= MAX_LOGGED_ERROR_CHARS ? text : `${text.slice(0, MAX_LOGGED_ERROR_CHARS)}…`;
}

/** The error of a one-message publish: a `PartialPublishError` stands for its one failure. */
function unwrapSingle(error: unknown): unknown {
  return error instanceof PartialPublishError && error.failures.size === 1 ? error.failures.values().next().value : error;
}

/** The kind of `.decrypt()` steps (patterns/decrypt.ts): a route with one dead-letters messages as received. */
const DECRYPT_KIND = 'decrypt';

function hasStepOfKind(steps: readonly StepDefinition[], kind: string): boolean {
  return steps.some((step) => step.kind === kind || step.branches.some((branch) => hasStepOfKind(branch, kind)));
}
