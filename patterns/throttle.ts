import type { Subscription } from 'rxjs';
import { RouteDefinitionError, stepSpec, type Delivery, type Message, type StepFactory, type StepSpec } from '../src/core/index.ts';
import { stepLifecycle } from '../src/core/step-lifecycle.ts';

export interface ThrottleOptions<T> {
  /** Messages let through per `periodMs` (a positive integer): the bucket's refill rate. */
  readonly rate: number;
  /** The period `rate` is counted over, in ms (a positive integer; default 1,000). */
  readonly periodMs?: number;
  /** The bucket's capacity: how many messages may pass at once after a quiet spell (a positive integer; default `rate`). */
  readonly burst?: number;
  /** Throttle per key, one bucket each (default: one bucket for the whole step). A throw fails that message only. */
  readonly key?: (message: Message<T>) => string;
  /**
   * At most this many per-key buckets are kept (default 10,000); past it the least recently used bucket
   * with no message waiting is forgotten (the key starts again with a full bucket). Buckets with
   * waiting messages are never forgotten — there are at most prefetch of them.
   */
  readonly maxKeys?: number;
  /**
   * What a message beyond the rate does: `'wait'` (default) — it is held, unsettled, until a token is
   * free (backpressure); `'drop'` — it is acked as filtered and counted `throttled`.
   */
  readonly onExcess?: 'wait' | 'drop';
}

/**
 * One token bucket. Credit is kept in integer units (one token = `periodMs` units, refilled by `rate`
 * units per ms) so virtual and real clocks give exact, drift-free figures.
 */
interface Bucket {
  credit: number;
  /** When `credit` was last brought up to date. */
  at: number;
  /** Messages waiting for a token, in arrival order. */
  readonly waiting: Delivery[];
  timer: Subscription | undefined;
  /** `release` is running: a message arriving meanwhile (emitted synchronously as one settles) just waits. */
  releasing: boolean;
}

/**
 * Throttler (Camel's `throttle`, a token bucket): lets at most `rate` messages through per
 * `periodMs`, with bursts up to `burst`, for the whole step or per `key`.
 *
 * Settlement and backpressure: with `onExcess: 'wait'` (default) a message beyond the rate is held
 * unsettled — nothing is dropped — and passed on, in arrival order per key, as tokens come free (on
 * the step's scheduler). Held messages are unacked, so the source's prefetch bounds how many are held:
 * the step never pulls more than the route's prefetch from the broker, and a crash redelivers what it
 * held. Gauge `waiting` = messages held now. With `onExcess: 'drop'` an excess message is acked as
 * filtered and counted `throttled` (Camel's `rejectExecution`, but not a failure).
 * A throwing `key` fails that message only (the route's error handler decides).
 * Stop: when the source completes (the route stops), held messages keep waiting for their tokens —
 * the rate is kept while draining, up to the route's stop deadline; on unsubscribe they are left
 * unsettled, for the source to redeliver (no timer is left running, gauge `waiting` goes to 0).
 * @example from('amqp:queue/orders').throttle({ rate: 100, periodMs: 1_000 }).to('http:…')
 * @example from('mqtt:devices/+id/telemetry').throttle({ rate: 1, periodMs: 10_000, key: (m) => m.headers.deviceId as string, onExcess: 'drop' })
 */
export function throttle<T>({ rate, periodMs = 1_000, burst = rate, key, maxKeys = 10_000, onExcess = 'wait' }: ThrottleOptions<T>): StepFactory<T, T> {
  for (const [name, value] of [['rate', rate], ['periodMs', periodMs], ['burst', burst], ['maxKeys', maxKeys]] as const) {
    if (!Number.isSafeInteger(value) || value < 1) throw new RouteDefinitionError(`throttle: ${name} must be a positive integer, got ${String(value)}`);
  }
  const capacity = burst * periodMs;
  return (context) =>
    stepLifecycle<T, T>(context, (step) => {
      const { scheduler } = context;
      const buckets = new Map<string, Bucket>();
      let waiting = 0;
      let torn = false;

      const refill = (bucket: Bucket): void => {
        const now = scheduler.now();
        bucket.credit = Math.min(capacity, bucket.credit + (now - bucket.at) * rate);
        bucket.at = now;
      };

      /** The key's bucket, most recently used last; forgets the least recently used idle ones beyond `maxKeys`. */
      const bucketOf = (name: string): Bucket => {
        let bucket = buckets.get(name);
        if (bucket !== undefined) {
          buckets.delete(name);
          buckets.set(name, bucket);
          return bucket;
        }
        bucket = { credit: capacity, at: scheduler.now(), waiting: [], timer: undefined, releasing: false };
        buckets.set(name, bucket);
        if (buckets.size > maxKeys) {
          for (const [other, candidate] of buckets) {
            if (buckets.size <= maxKeys) break;
            if (candidate.waiting.length === 0 && candidate !== bucket) buckets.delete(other);
          }
        }
        return bucket;
      };

      const setWaiting = (by: number): void => {
        waiting += by;
        context.gauge('waiting', waiting);
      };

      /** Passes on the waiting messages a token is free for, then waits for the next token if any are left. */
      const release = (bucket: Bucket): void => {
        bucket.timer = undefined;
        bucket.releasing = true;
        try {
          refill(bucket);
          while (bucket.waiting.length > 0 && bucket.credit >= periodMs) {
            bucket.credit -= periodMs;
            const delivery = bucket.waiting.shift() as Delivery<T>;
            setWaiting(-1);
            step.emit(delivery);
            step.end();
          }
        } finally {
          bucket.releasing = false;
        }
        if (bucket.waiting.length > 0 && !torn) {
          bucket.timer = scheduler.schedule(() => release(bucket), Math.ceil((periodMs - bucket.credit) / rate));
        }
      };

      const admit = (delivery: Delivery<T>, attempt: number): void => {
        let name = '';
        try {
          if (key !== undefined) name = key(delivery.message);
        } catch (error) {
          step.fail(delivery, error, attempt, admit);
          return;
        }
        const bucket = bucketOf(name);
        refill(bucket);
        if (bucket.waiting.length === 0 && bucket.credit >= periodMs) {
          bucket.credit -= periodMs;
          step.emit(delivery);
        } else if (onExcess === 'drop') {
          context.count('throttled');
          context.filtered(delivery);
        } else {
          bucket.waiting.push(delivery);
          setWaiting(1);
          step.begin(); // the step completes only once every held message has passed
          if (bucket.timer === undefined && !bucket.releasing) release(bucket);
        }
      };

      return {
        next: (delivery) => admit(delivery, 1),
        teardown: () => {
          // held messages stay unsettled: the source redelivers them
          torn = true;
          for (const bucket of buckets.values()) bucket.timer?.unsubscribe();
          buckets.clear();
          if (waiting > 0) setWaiting(-waiting);
        },
      };
    });
}

/** `.throttle(options)`: the throttler's DSL entry (kind `throttle`). Options are checked at once. */
export function throttleStep<T>(options: ThrottleOptions<T>): StepSpec<T, T> {
  return stepSpec('throttle', throttle(options));
}
