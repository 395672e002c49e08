import { config, Observable, Subscription, type Observer, type Subscriber } from 'rxjs';
import type { Delivery } from './delivery.ts';
import type { Step, StepContext } from './step.ts';
import { scheduleTracked } from './timers.ts';

/**
 * What a step's handlers use of the step's life, for one subscription: emitting, counting the
 * asynchronous work the step must finish before it completes, and failing a delivery with retries.
 */
export interface StepLifecycle<I, O> {
  /** Passes a delivery downstream (a no-op once the step is closed). Safe to pass around unbound. */
  readonly emit: (delivery: Delivery<O>) => void;
  /** One more piece of asynchronous work (a publish, a promise, a batch waiting for its flush). */
  begin(): void;
  /** That work has ended; the step completes if the source has completed and no other work is pending. */
  end(): void;
  /**
   * Hands a failed delivery to the route's error handler (`context.failed`), which settles it or asks
   * for a retry: then `again(delivery, attempt + 1)` runs after the delay on the context's scheduler,
   * counted as pending work meanwhile and cancelled if the step is unsubscribed (the delivery then
   * stays unsettled, for the source to redeliver). Once the step is unsubscribed (work ending as the
   * stop tears the route down: a store closing), a failure is not handed on and nothing is retried:
   * the delivery stays unsettled, for the source to redeliver.
   */
  fail(delivery: Delivery<I>, error: unknown, attempt: number, again: (delivery: Delivery<I>, attempt: number) => void): void;
  /** Whether the source has completed. */
  readonly sourceDone: boolean;
  /** Whether the step is closed downstream (unsubscribed, completed or errored): nothing it emits goes anywhere. */
  readonly closed: boolean;
}

/** What a step does with its source, built once per subscription by `stepLifecycle`'s `setup`. */
export interface StepHandlers<I> {
  /** Each delivery from the source; called unbound. A throw here is a bug, not a message's failure. */
  readonly next: (delivery: Delivery<I>) => void;
  /**
   * The source has completed: let go of what the step holds outside pending work (an aggregator's
   * open groups). Called when the source completes, and again each time all pending work has ended
   * after that (a retry may have opened more).
   */
  readonly drain?: () => void;
  /** Called on unsubscribe, after the source was unsubscribed and pending retries cancelled (later failures are ignored). */
  readonly teardown?: () => void;
}

/**
 * The step kernel (RxJS's `operate`): the one state machine every stateful step shares. It subscribes
 * to the source, counts pending work (`begin`/`end`, retries), completes once the source has
 * completed and no work is pending, forwards a source error downstream (fatal: the transport failed,
 * never a message), and on unsubscribe cancels pending retries and runs the step's teardown.
 * `setup` runs once per subscription, so each subscription has state of its own.
 * @example stepLifecycle<T, T>(context, (step) => ({ next: (delivery) => step.emit(delivery) }))
 */
export function stepLifecycle<I, O>(context: StepContext, setup: (step: StepLifecycle<I, O>) => StepHandlers<I>): Step<I, O> {
  return (source) =>
    new Observable<Delivery<O>>((subscriber) => {
      const step = new RunningStep<I, O>(context, subscriber);
      const handlers = setup(step);
      step.drainHook = handlers.drain;
      const subscription = source.subscribe(new SourceObserver(handlers.next, subscriber, step));
      return () => {
        subscription.unsubscribe();
        step.tearDown();
        handlers.teardown?.();
      };
    });
}

/**
 * What a step subscribes to its source with. Being a `Subscription` and an `Observer`, RxJS takes it
 * as it is (as its own operators' subscribers): no `SafeSubscriber`/`ConsumerObserver` pair between
 * two steps, one call less per delivery and step. Like those: nothing after `error`/`complete`, and a
 * throw from `next` (a bug in the step, never a message's failure) is reported as unhandled — it does
 * not travel back into the step upstream, which would take it for its own failure of that delivery.
 */
class SourceObserver<I, O> extends Subscription implements Observer<Delivery<I>> {
  private stopped = false;

  constructor(
    private readonly onNext: (delivery: Delivery<I>) => void,
    private readonly downstream: Subscriber<Delivery<O>>,
    private readonly step: RunningStep<I, O>,
  ) {
    super();
  }

  next(delivery: Delivery<I>): void {
    if (this.stopped) return;
    try {
      this.onNext(delivery);
    } catch (error) {
      reportUnhandled(error);
    }
  }

  error(error: unknown): void {
    if (this.stopped) return;
    this.stopped = true;
    try {
      this.downstream.error(error);
    } finally {
      this.unsubscribe(); // as an RxJS subscriber: the ended source's teardown runs now
    }
  }

  complete(): void {
    if (this.stopped) return;
    this.stopped = true;
    try {
      this.step.sourceCompleted();
    } finally {
      this.unsubscribe();
    }
  }

  override unsubscribe(): void {
    this.stopped = true;
    super.unsubscribe();
  }
}

/** As RxJS reports an error nobody can handle: to `config.onUnhandledError`, else thrown on a timer. */
function reportUnhandled(error: unknown): void {
  setTimeout(() => {
    const { onUnhandledError } = config;
    if (onUnhandledError !== null) onUnhandledError(error);
    else throw error;
  });
}

/** One subscription of a step: a plain class, so the per-message calls stay monomorphic. */
class RunningStep<I, O> implements StepLifecycle<I, O> {
  sourceDone = false;
  drainHook: (() => void) | undefined = undefined;
  private pending = 0;
  /** Unsubscribed: no more failures handed on, no retries scheduled. */
  private torn = false;
  private readonly retries = new Set<Subscription>();
  readonly emit: (delivery: Delivery<O>) => void;

  constructor(
    private readonly context: StepContext,
    private readonly subscriber: Subscriber<Delivery<O>>,
  ) {
    this.emit = (delivery) => subscriber.next(delivery);
  }

  get closed(): boolean {
    return this.subscriber.closed;
  }

  begin(): void {
    this.pending += 1;
  }

  end(): void {
    this.pending -= 1;
    if (this.pending === 0 && this.sourceDone) this.finish();
  }

  fail(delivery: Delivery<I>, error: unknown, attempt: number, again: (delivery: Delivery<I>, attempt: number) => void): void {
    if (this.torn) return; // the run is over: left unsettled, for the source to redeliver
    const delay = this.context.failed(delivery, error, attempt);
    if (delay === undefined) return;
    this.pending += 1;
    scheduleTracked(this.context.scheduler, this.retries, delay, () => {
      again(delivery, attempt + 1);
      this.end();
    });
  }

  sourceCompleted(): void {
    this.sourceDone = true;
    if (this.pending === 0) this.finish();
    else this.drainHook?.();
  }

  /** Unsubscribed: cancels pending retries; a later failure schedules none. */
  tearDown(): void {
    this.torn = true;
    for (const retry of this.retries) retry.unsubscribe();
    this.retries.clear();
  }

  /** Source done, nothing pending: the step lets go of what it holds, then completes unless that started work. */
  private finish(): void {
    this.drainHook?.();
    if (this.pending === 0) this.subscriber.complete();
  }
}
