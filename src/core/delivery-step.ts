import type { Delivery } from './delivery.ts';
import type { Step, StepContext } from './step.ts';
import { stepLifecycle } from './step-lifecycle.ts';

export type Emit<O> = (delivery: Delivery<O>) => void;

/**
 * Handles one delivery: emits zero or more deliveries, settles what it drops, may return a promise.
 * A throw or a rejected promise is a failure of this delivery only.
 */
export type DeliveryHandler<I, O> = (delivery: Delivery<I>, emit: Emit<O>, attempt: number) => void | PromiseLike<void>;

export interface DeliveryStepOptions {
  /** At most this many handler promises pending at once; further deliveries wait in arrival order. */
  readonly concurrency?: number;
}

interface Waiting<I> {
  readonly delivery: Delivery<I>;
  readonly attempt: number;
}

/**
 * Builds a step from a per-delivery handler: the one place where the rule "a failure on one message
 * never ends the route" is implemented. A throw or rejection goes to `context.failed`, which settles
 * the delivery or asks for a retry, run on the context's scheduler.
 * The step completes when its source has completed and no handler, retry or queued delivery is pending.
 * Unsubscribing cancels pending retries; their deliveries stay unsettled for the transport to redeliver.
 * (Its life — completion, retries, teardown — is `stepLifecycle`'s.)
 * @example deliveryStep<T, T>(context, (delivery, emit) => (keep(delivery.message) ? emit(delivery) : context.filtered(delivery)))
 */
export function deliveryStep<I, O>(context: StepContext, handler: DeliveryHandler<I, O>, options: DeliveryStepOptions = {}): Step<I, O> {
  const concurrency = options.concurrency ?? Number.POSITIVE_INFINITY;
  return stepLifecycle<I, O>(context, (step) => {
    let active = 0;
    const waiting: Waiting<I>[] = [];
    const emit = step.emit;

    // A delivery (a retry too) waits its turn while `concurrency` handler promises are pending.
    const admit = (delivery: Delivery<I>, attempt: number): void => {
      if (active >= concurrency) waiting.push({ delivery, attempt });
      else run(delivery, attempt);
    };

    const done = (): void => {
      active -= 1;
      while (active < concurrency && waiting.length > 0) {
        const { delivery, attempt } = waiting.shift() as Waiting<I>;
        run(delivery, attempt);
      }
      step.end();
    };

    const run = (delivery: Delivery<I>, attempt: number): void => {
      let result: void | PromiseLike<void>;
      try {
        result = handler(delivery, emit, attempt);
      } catch (error) {
        step.fail(delivery, error, attempt, admit);
        return;
      }
      if (result === undefined || typeof result.then !== 'function') return;
      step.begin();
      active += 1;
      result.then(done, (error: unknown) => {
        step.fail(delivery, error, attempt, admit);
        done();
      });
    };

    // unbounded (most steps): straight to the handler, no queue check per delivery
    if (concurrency === Number.POSITIVE_INFINITY) return { next: (delivery) => run(delivery, 1) };
    return { next: (delivery) => admit(delivery, 1) };
  });
}
