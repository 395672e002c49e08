import { Observable, type Subscription } from 'rxjs';
import type { Delivery } from './delivery.ts';
import { scheduleTracked } from './timers.ts';
import type { Step, StepContext } from './step.ts';

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

/**
 * Builds a step from a per-delivery handler: the one place where the rule "a failure on one message
 * never ends the route" is implemented. A throw or rejection goes to `context.failed`, which settles
 * the delivery or asks for a retry, run on the context's scheduler.
 * The step completes when its source has completed and no handler, retry or queued delivery is pending.
 * Unsubscribing cancels pending retries; their deliveries stay unsettled for the transport to redeliver.
 */
export function deliveryStep<I, O>(context: StepContext, handler: DeliveryHandler<I, O>, options: DeliveryStepOptions = {}): Step<I, O> {
  const concurrency = options.concurrency ?? Number.POSITIVE_INFINITY;
  return (source) =>
    new Observable<Delivery<O>>((subscriber) => {
      let pending = 0;
      let active = 0;
      let sourceDone = false;
      const waiting: { readonly delivery: Delivery<I>; readonly attempt: number }[] = [];
      const timers = new Set<Subscription>();
      const emit: Emit<O> = (delivery) => subscriber.next(delivery);

      const completeIfIdle = (): void => {
        if (sourceDone && pending === 0 && waiting.length === 0) subscriber.complete();
      };

      const failed = (delivery: Delivery<I>, error: unknown, attempt: number): void => {
        const delay = context.failed(delivery, error, attempt);
        if (delay === undefined) return;
        pending += 1;
        scheduleTracked(context.scheduler, timers, delay, () => {
          pending -= 1;
          // A retry waits its turn like any arrival, so it never exceeds the concurrency bound.
          if (active >= concurrency) waiting.push({ delivery, attempt: attempt + 1 });
          else run(delivery, attempt + 1);
          completeIfIdle();
        });
      };

      const next = (): void => {
        while (active < concurrency && waiting.length > 0) {
          const { delivery, attempt } = waiting.shift() as { readonly delivery: Delivery<I>; readonly attempt: number };
          run(delivery, attempt);
        }
      };

      const run = (delivery: Delivery<I>, attempt: number): void => {
        let result: void | PromiseLike<void>;
        try {
          result = handler(delivery, emit, attempt);
        } catch (error) {
          failed(delivery, error, attempt);
          return;
        }
        if (result === undefined || typeof result.then !== 'function') return;
        pending += 1;
        active += 1;
        result.then(
          () => {
            pending -= 1;
            active -= 1;
            next();
            completeIfIdle();
          },
          (error: unknown) => {
            failed(delivery, error, attempt);
            pending -= 1;
            active -= 1;
            next();
            completeIfIdle();
          },
        );
      };

      const subscription = source.subscribe({
        next: (delivery) => {
          if (active >= concurrency) waiting.push({ delivery, attempt: 1 });
          else run(delivery, 1);
        },
        error: (error: unknown) => subscriber.error(error),
        complete: () => {
          sourceDone = true;
          completeIfIdle();
        },
      });
      return () => {
        subscription.unsubscribe();
        for (const timer of timers) timer.unsubscribe();
        timers.clear();
      };
    });
}
