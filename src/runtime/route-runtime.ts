import type { ServiceIdentifier } from 'inversify';
import { Subject, type SchedulerLike, type Subscription } from 'rxjs';
import {
  assertNever,
  deadLetterMessage,
  isExpired,
  isPermanentFailure,
  PartialPublishError,
  reducedDeadLetter,
  parseEndpoint,
  Settlement,
  StepError,
  type AnyStep,
  type Delivery,
  type FailurePolicy,
  type Logger,
  type StepContext,
  type StepDefinition,
} from '../core/index.ts';
import type { RouteDefinition } from '../dsl/route-definition.ts';
import { emptyMetrics, type RouteMetrics } from './route-metrics.ts';
import type { TransportRegistry } from './transport-registry.ts';

/** Tracks one admitted delivery (a class, not closures: it is allocated per message). */
class InFlight extends Settlement {
  constructor(
    private readonly route: RouteRuntime,
    private readonly source: Delivery,
  ) {
    super(source.message);
  }

  protected onAck(): void {
    this.route.settledOne();
    this.source.ack();
  }

  protected onNack(reason: Error): void {
    this.route.settledOne();
    this.source.nack(reason);
  }
}

export type RouteStatus = 'stopped' | 'started' | 'stopping' | 'failed';

export interface RouteDependencies {
  readonly transports: TransportRegistry;
  readonly scheduler: SchedulerLike;
  readonly log: Logger;
  readonly service: <T>(id: ServiceIdentifier<T>) => T;
}

const DEFAULT_PREFETCH = 100;

/**
 * One route, compiled and running: source → steps → ack.
 *
 * Contract: every delivery taken from the source is settled exactly once — acked when it reaches the
 * end of the route (all outputs confirmed), is filtered, discarded or dead-lettered; rejected when
 * the error handler says so or the dead-letter send fails. `stop` stops intake, waits until every
 * in-flight delivery has settled (or the deadline passes), then unsubscribes, which hands anything
 * still unsettled back to the transport for redelivery.
 */
export class RouteRuntime {
  readonly metrics: RouteMetrics = emptyMetrics();
  private statusValue: RouteStatus = 'stopped';
  private source: Subscription | undefined;
  private pipeline: Subscription | undefined;
  private intake: Subject<Delivery> | undefined;
  private abort: AbortController | undefined;
  private pipelineDone = false;
  private idle: (() => void) | undefined;

  constructor(
    readonly definition: RouteDefinition,
    private readonly deps: RouteDependencies,
  ) {}

  get id(): string {
    return this.definition.id;
  }

  get status(): RouteStatus {
    return this.statusValue;
  }

  start(): void {
    if (this.statusValue === 'started' || this.statusValue === 'stopping') return;
    const endpoint = parseEndpoint(this.definition.source);
    const transport = this.deps.transports.forScheme(endpoint.scheme);
    const pipeline = this.compile(this.definition.steps);
    const intake = new Subject<Delivery>();
    this.intake = intake;
    this.abort = new AbortController();
    this.pipelineDone = false;
    this.statusValue = 'started';
    this.pipeline = intake.pipe(pipeline).subscribe({
      next: (delivery) => {
        this.metrics.completed += 1;
        delivery.ack();
      },
      error: (error: unknown) => {
        this.statusValue = 'failed';
        this.deps.log.error('route failed: its transport ended the stream', { route: this.id, error });
        this.pipelineDone = true;
        this.checkIdle();
      },
      complete: () => {
        this.pipelineDone = true;
        this.checkIdle();
      },
    });
    // The source subscription is kept apart from the pipeline's: completing the pipeline on stop must
    // not tear down the source, whose teardown hands unsettled deliveries back for redelivery.
    this.source = transport.consume(endpoint, { prefetch: this.definition.sourceOptions.prefetch ?? DEFAULT_PREFETCH, signal: this.abort.signal }).subscribe({
      next: (delivery) => {
        if (intake.closed || this.statusValue !== 'started') return; // arrived after stop: left unsettled, returned on unsubscribe
        const admitted = this.admit(delivery);
        if (admitted !== undefined) intake.next(admitted);
      },
      error: (error: unknown) => intake.error(error),
      complete: () => intake.complete(),
    });
  }

  /** Stops intake, drains in-flight deliveries up to `deadlineMs`, then detaches from the source. */
  async stop(deadlineMs = 10_000): Promise<void> {
    if (this.statusValue !== 'started' && this.statusValue !== 'failed') return;
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
    if (outcome === 'late') {
      this.deps.log.warn('route stop deadline passed; unsettled deliveries go back to the source', { route: this.id, inFlight: this.metrics.inFlight });
    }
    this.pipeline?.unsubscribe();
    this.source?.unsubscribe();
    this.pipeline = undefined;
    this.source = undefined;
    this.statusValue = 'stopped';
  }

  private checkIdle(): void {
    if (this.idle !== undefined && this.pipelineDone && this.metrics.inFlight === 0) this.idle();
  }

  /**
   * Wraps a source delivery so the route counts it in flight until it settles; drops expired ones;
   * hands one the transport could not take whole (`intakeError`) to the error handler at `intake`.
   */
  private admit(source: Delivery): Delivery | undefined {
    const metrics = this.metrics;
    metrics.received += 1;
    if (isExpired(source.message)) {
      metrics.expired += 1;
      source.ack();
      return undefined;
    }
    metrics.inFlight += 1;
    const admitted = new InFlight(this, source);
    if (source.intakeError === undefined) return admitted;
    const intake: StepDefinition = { id: 'intake', kind: 'intake', declaredAt: this.definition.declaredAt, sendsTo: [], sends: false, branches: [], build: () => (stream) => stream };
    // its last attempt: a message the transport could not take is no better the second time
    this.failed(intake, admitted, source.intakeError, this.definition.errorHandler.maxAttempts);
    return undefined;
  }

  /** @internal called by InFlight once the delivery it tracks has settled */
  settledOne(): void {
    this.metrics.inFlight -= 1;
    this.checkIdle();
  }

  private compile(steps: readonly StepDefinition[]): AnyStep {
    const built = steps.map((step) => step.build(this.contextFor(step)));
    return (source) => built.reduce((stream, step) => stream.pipe(step), source);
  }

  private contextFor(step: StepDefinition): StepContext {
    const { transports, scheduler, log, service } = this.deps;
    const metrics = this.metrics;
    return {
      routeId: this.id,
      stepId: step.id,
      declaredAt: step.declaredAt,
      scheduler,
      log,
      publish: (uri, messages) => {
        const sending = transports.publish(uri, messages);
        // counted on the side: the step sees the very promise the transport returned, with no extra turn
        sending.then(
          () => {
            metrics.sent[step.id] = (metrics.sent[step.id] ?? 0) + messages.length;
          },
          () => {},
        );
        return sending;
      },
      service,
      filtered: (delivery) => {
        metrics.filtered += 1;
        delivery.ack();
      },
      failed: (delivery, error, attempt) => this.failed(step, delivery, error, attempt),
      compile: (steps) => this.compile(steps),
    };
  }

  /** Applies the route's error handler to one failed delivery; returns a retry delay or settles it. */
  private failed(step: StepDefinition, delivery: Delivery, thrown: unknown, attempt: number): number | undefined {
    const metrics = this.metrics;
    metrics.failed += 1;
    const error = thrown instanceof StepError ? thrown : new StepError(this.id, step.id, step.declaredAt, thrown);
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
          delivery.nack(error);
          return undefined;
        }
        let failedMessage = delivery.message;
        if (handler.prepareDeadLetter !== undefined) {
          try {
            failedMessage = handler.prepareDeadLetter(delivery.message, delivery.origin);
          } catch (prepareError) {
            this.deps.log.error('prepareDeadLetter threw; dead-lettering the failed message as it is', { route: this.id, step: step.id, error: prepareError });
          }
        }
        const dead = deadLetterMessage(failedMessage, error, attempt, policy.reason);
        const sent = (): void => {
          metrics.deadLettered += 1;
          if (handler.deadLetterLabel !== undefined) metrics.sent[handler.deadLetterLabel] = (metrics.sent[handler.deadLetterLabel] ?? 0) + 1;
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
        delivery.ack();
        return undefined;
      case 'reject':
        metrics.rejected += 1;
        delivery.nack(error);
        return undefined;
      default:
        return assertNever(policy);
    }
  }
}

/** The error of a one-message publish: a `PartialPublishError` stands for its one failure. */
function unwrapSingle(error: unknown): unknown {
  return error instanceof PartialPublishError && error.failures.size === 1 ? error.failures.values().next().value : error;
}
