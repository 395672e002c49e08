import { Observable, Subject, type Subscription } from 'rxjs';
import { IdempotencyStore } from '../src/stores/idempotency-store.ts';
import { createDelivery, deliveryStep, InterchangeError, scheduleTracked, toError, type Delivery, type Message, type StepContext, type StepFactory } from '../src/core/index.ts';

/**
 * Another consumer holds the claim on this message right now (another process, or more copies than
 * `maxWaiters` here), still after `inProgressDelayMs`: this copy fails, for the route's error
 * handler to decide (reject → redelivered later; neither processed nor dropped).
 */
export class DuplicateInProgressError extends InterchangeError {
  override readonly name = 'DuplicateInProgressError';
  constructor(readonly key: string) {
    super('DUPLICATE_IN_PROGRESS', `message '${key}' is being processed by another consumer; try again later`);
  }
}


export interface IdempotentConsumerOptions<T> {
  /** Where processed keys are kept; default: the `IdempotencyStore` bound in the container. */
  readonly store?: IdempotencyStore;
  /** The message's identity (default its id: the outbox, the AMQP and MQTT adapters keep ids end to end). */
  readonly key?: (message: Message<T>) => string;
  /** Claims in flight at once (default 16). Copies waiting for their twin do not count. */
  readonly concurrency?: number;
  /** Copies of one key held here while its first copy is in progress (default 100); more wait `inProgressDelayMs`, then fail. */
  readonly maxWaiters?: number;
  /**
   * How long a copy whose key is in progress elsewhere (another process, or beyond `maxWaiters`)
   * waits, on the step's scheduler, before the store is asked again; still in progress then, it
   * fails with `DuplicateInProgressError` (default 1,000 ms). Redeliveries are never burnt at once.
   */
  readonly inProgressDelayMs?: number;
}

/** A key being processed by this step: the copy that owns it and the copies waiting for its outcome. */
interface InProgress {
  readonly owner: Delivery;
  readonly waiters: Delivery[];
}

/**
 * Idempotent consumer: lets each message through once.
 * - A message whose key was already processed is dropped (acked, counted as filtered).
 * - A copy arriving while its twin is in progress in this step WAITS for the twin's outcome — held
 *   unsettled, in flight, holding its prefetch slot but not a claim slot: the twin succeeds → the copy
 *   is dropped as a duplicate; the twin fails → the first waiting copy is processed (the others wait
 *   on it). At most `maxWaiters` copies wait per key.
 * - A copy whose key is in progress in another process (the store says so), or beyond `maxWaiters`,
 *   waits `inProgressDelayMs` and asks the store again: processed meanwhile → dropped; released →
 *   processed; still in progress → fails with `DuplicateInProgressError` (the route's error handler
 *   decides: reject → redelivered later).
 * Compared with Camel's eager idempotent repository and Spring's `IdempotentReceiver`, which skip or
 * discard a concurrent copy at once (lost if the first copy then fails), no copy is dropped before
 * its twin is known to have succeeded.
 * The key is recorded as processed only when the message settles with ack — after every later step
 * of the route, its publishes confirmed — and released when it is rejected, so a failure is retried.
 * Waiting is in-process (per step): the store is what coordinates processes.
 * For handlers that write to PostgreSQL, use the transactional `PostgresInbox` instead: it records the
 * key in the handler's own transaction (effectively once); this step is at-least-once around a crash
 * between the side effect and `confirm`.
 * @example
 * from('amqp:queue/payments')
 *   .step('dedupe', idempotentConsumer({ store: new RedisIdempotencyStore(redis) }))
 *   .process(chargeCard)
 *   .to('amqp:queue/charged')
 */
export function idempotentConsumer<T>({
  store,
  key = (message) => message.id,
  concurrency = 16,
  maxWaiters = 100,
  inProgressDelayMs = 1_000,
}: IdempotentConsumerOptions<T> = {}): StepFactory<T, T> {
  return (context) => {
    const keys = store ?? context.service<IdempotencyStore>(IdempotencyStore);
    return (source) =>
      new Observable<Delivery<T>>((subscriber) => {
        const inProgress = new Map<string, InProgress>();
        /** The key each owning copy holds, so a failure settled by the error handler frees it. */
        const owned = new Map<Delivery, string>();
        const timers = new Set<Subscription>();
        /** What the claiming step sees: arrivals that own their key or cannot wait, and waiters whose twin failed. */
        const admitted = new Subject<Delivery<T>>();
        let sourceDone = false;

        const own = (id: string, delivery: Delivery, waiters: Delivery[] = []): void => {
          inProgress.set(id, { owner: delivery, waiters });
          owned.set(delivery, id);
        };

        /** The owner's outcome is known: its waiters are duplicates, or the first of them takes over. */
        const finish = (id: string, outcome: 'processed' | 'released'): void => {
          const entry = inProgress.get(id);
          if (entry === undefined) return;
          inProgress.delete(id);
          owned.delete(entry.owner);
          const [next, ...rest] = entry.waiters;
          if (outcome === 'processed') for (const waiter of entry.waiters) context.filtered(waiter);
          else if (next !== undefined) {
            own(id, next, rest);
            admitted.next(next as Delivery<T>);
          }
          if (sourceDone && inProgress.size === 0) admitted.complete();
        };

        const wait = (delayMs: number): Promise<void> => new Promise((resolve) => scheduleTracked(context.scheduler, timers, delayMs, resolve));

        const claiming: StepContext = {
          ...context,
          failed: (delivery, error, attempt) => {
            const delay = context.failed(delivery, error, attempt);
            const id = owned.get(delivery);
            if (delay === undefined && id !== undefined) finish(id, 'released');
            return delay;
          },
        };

        const claim = async (delivery: Delivery<T>, emit: (delivery: Delivery<T>) => void): Promise<void> => {
          const id = key(delivery.message);
          const entry = inProgress.get(id);
          if (entry === undefined) own(id, delivery);
          else if (entry.owner !== delivery) {
            // beyond maxWaiters: ask again later, never at once
            await wait(inProgressDelayMs);
            if (inProgress.has(id)) throw new DuplicateInProgressError(id);
            own(id, delivery);
          }
          let claimed = await keys.claim(id);
          if (claimed === 'in-progress') {
            await wait(inProgressDelayMs);
            claimed = await keys.claim(id);
          }
          if (claimed === 'in-progress') throw new DuplicateInProgressError(id);
          if (claimed === 'duplicate') {
            context.filtered(delivery);
            finish(id, 'processed');
            return;
          }
          emit(
            createDelivery(delivery.message, {
              ack: () => {
                keys.confirm(id).then(
                  () => {
                    delivery.ack();
                    finish(id, 'processed');
                  },
                  (error: unknown) => {
                    context.log.warn('idempotent consumer: could not record a processed message; a redelivery may be processed again', { key: id, error: toError(error).message });
                    delivery.ack();
                    finish(id, 'processed');
                  },
                );
              },
              nack: (reason) => {
                const rejected = (): void => {
                  delivery.nack(reason);
                  finish(id, 'released');
                };
                keys.release(id).then(rejected, rejected);
              },
            }, delivery.origin),
          );
        };

        const output = deliveryStep<T, T>(claiming, claim, { concurrency })(admitted).subscribe(subscriber);
        const input = source.subscribe({
          next: (delivery) => {
            let id: string;
            try {
              id = key(delivery.message);
            } catch {
              admitted.next(delivery); // fails in the claiming step, through the error handler
              return;
            }
            const entry = inProgress.get(id);
            if (entry === undefined) {
              own(id, delivery);
              admitted.next(delivery);
            } else if (entry.waiters.length < maxWaiters) entry.waiters.push(delivery);
            else admitted.next(delivery);
          },
          error: (error: unknown) => admitted.error(error),
          complete: () => {
            sourceDone = true;
            if (inProgress.size === 0) admitted.complete();
          },
        });
        return () => {
          input.unsubscribe();
          output.unsubscribe();
          for (const timer of timers) timer.unsubscribe();
          timers.clear();
        };
      });
  };
}
