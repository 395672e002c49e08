import type { Subscription } from 'rxjs';
import { InterchangeError, RouteDefinitionError, scheduleTracked, stepSpec, type Delivery, type Message, type StepFactory, type StepSpec } from '../src/core/index.ts';
import { stepLifecycle } from '../src/core/step-lifecycle.ts';
import type { DelayedMessageStore } from '../src/stores/delayed-message-store.ts';
import { durableDelay } from './delay-durable.ts';

/**
 * How long to hold a message: a fixed number of milliseconds, or a function of the message returning
 * milliseconds from now or an absolute `Date` (e.g. from a `delayMs` or `deliverAt` header).
 */
export type DelayValue<T> = number | ((message: Message<T>) => number | Date);

export interface DelayOptions {
  /**
   * Makes the delayer durable (Spring's delayer with a message store): each message is written to the
   * store, then its source is acked; the store owns it until it has been passed on and settled. A
   * restart resumes what the store holds; several instances of the route share it. See `durableDelay`.
   */
  readonly store?: DelayedMessageStore;
  /** Durable only: the delayer's key in the store (default `<routeId>/<stepId>`: give the step a stable `id`, or this). */
  readonly key?: string;
  /** Durable only: how long an instance holds a message it took from the store before another may take it (default 30 s): a delivery must settle within it. */
  readonly leaseMs?: number;
  /** Durable only: the store is asked for due messages at least this often, whoever stored them (default 1 s); messages this instance stores wake it at their due time. */
  readonly pollIntervalMs?: number;
  /** Durable only: messages taken from the store per round trip (default 100). */
  readonly batchSize?: number;
  /** Durable only: deliveries taken from the store and out downstream, unsettled, at once at most (default `batchSize`): the backlog after an outage goes out at that pace. */
  readonly maxInFlight?: number;
  /** Durable only: a message rejected downstream is released for another try after `initialMs · 2^(attempts−1)`, at most `maxMs` (default 1 s, 60 s). */
  readonly retryBackoff?: { readonly initialMs: number; readonly maxMs: number };
  /**
   * Durable only: how many times a message is taken from the store in all (default 5); beyond that it
   * fails permanently (`DELAY_UNDELIVERABLE`) to the route's error handler and is removed once that
   * settles it (dead-lettered).
   */
  readonly maxRedeliveries?: number;
}

/**
 * The longest a platform timer waits (Node's `setTimeout` clamps a longer one to 1 ms): a longer delay
 * is held through a chain of timers, none longer than this.
 */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * A delay function gave something that is not a time (NaN, an infinity, an invalid `Date`, not a
 * number): that message fails, never retried (`permanent`; a dead-letter channel takes it).
 * @example .onError((f) => (f.error.code === 'INVALID_DELAY' ? deadLetter() : retryAfter(1_000)))
 */
export class InvalidDelayError extends InterchangeError {
  override readonly name = 'InvalidDelayError';
  constructor(message: string) {
    super('INVALID_DELAY', message, { permanent: true });
  }
}

/**
 * The due time of `message` (epoch ms of `now`'s clock): a function's result checked, a past or
 * negative one is `now` (no wait). Throws what the function throws, or `InvalidDelayError`.
 * @example dueTimeOf((m) => Number(m.headers.delayMs), message, Date.now())
 */
export function dueTimeOf<T>(delay: DelayValue<T>, message: Message<T>, now: number): number {
  const value = typeof delay === 'number' ? delay : delay(message);
  if (value instanceof Date) {
    const at = value.getTime();
    if (Number.isNaN(at)) throw new InvalidDelayError(`delay: message '${message.id}' got an invalid Date`);
    return Math.max(now, at);
  }
  if (typeof value !== 'number' || !Number.isFinite(value)) throw new InvalidDelayError(`delay: message '${message.id}' got ${typeof value === 'number' ? String(value) : typeof value} as its delay (milliseconds or a Date expected)`);
  return now + Math.max(0, value);
}

/**
 * Delayer (Camel's `delay`, Spring Integration's `<delayer>`): holds each message for a fixed or
 * per-message time on the step's scheduler, then passes it on. A function returns milliseconds from
 * now or an absolute `Date`; a negative delay or a past date passes the message on at once; a
 * function that throws, or returns NaN, an infinity or an invalid `Date` (`InvalidDelayError`,
 * permanent), fails that message only, through the route's error handler.
 *
 * In memory (default): the held delivery stays unsettled until it has been passed on and settled
 * downstream, so a crash or a stop redelivers it from the source (at-least-once; it is delayed again,
 * from then). Held messages count against the route's prefetch: a route holding more than its
 * prefetch stalls its source until one is due. When the route stops, held messages keep their timers
 * during the drain (those due before the deadline go on) and the rest are left unsettled, for the
 * source to redeliver. Messages leave in due-time order (equal times in arrival order). A delay past
 * a platform timer's limit (2^31−1 ms, ~24.8 days) is held through a chain of timers up to its due time.
 *
 * With `{ store }` the delayer is durable (`durableDelay`): each message is written to the store,
 * then its source is acked — the store owns it; held messages cost no prefetch, survive restarts
 * and are shared by the route's instances. At stop they stay in the store for the next run.
 * Bodies and headers must survive JSON.
 *
 * Gauge `delayed`: the messages held now (durable: those the store holds for this delayer, as last known).
 * @example from('memory:reminders').delay(5_000).to('memory:send')
 * @example from('amqp:queue/retries').delay((m) => Number(m.headers.delayMs ?? 0)).to('amqp:exchange/work')
 * @example from('mqtt:jobs/+').delay((m) => new Date(String(m.headers.deliverAt)), { id: 'hold-jobs', store: await PostgresDelayedMessageStore.open(db) }).to('amqp:exchange/jobs')
 */
export function delay<T>(value: DelayValue<T>, options: DelayOptions = {}): StepFactory<T, T> {
  if (typeof value === 'number' && !(Number.isFinite(value) && value >= 0)) throw new RouteDefinitionError(`delay must be a number of milliseconds ≥ 0 or a function, got ${String(value)}`);
  if (typeof value !== 'number' && typeof value !== 'function') throw new RouteDefinitionError('delay must be a number of milliseconds ≥ 0 or a function of the message');
  if (options.store !== undefined) return durableDelay<T>({ ...durableOptions(options), store: options.store, dueAt: (message, now) => dueTimeOf(value, message, now) });
  const durableOnly = (['key', 'leaseMs', 'pollIntervalMs', 'batchSize', 'maxInFlight', 'retryBackoff', 'maxRedeliveries'] as const).filter((name) => options[name] !== undefined);
  if (durableOnly.length > 0) throw new RouteDefinitionError(`delay: ${durableOnly.join(', ')} apply to a durable delayer only (give a store)`);
  return (context) =>
    stepLifecycle<T, T>(context, (step) => {
      let held = 0;
      const timers = new Set<Subscription>();
      const hold = (delivery: Delivery<T>, attempt: number): void => {
        const now = context.scheduler.now();
        let wait: number;
        try {
          wait = dueTimeOf(value, delivery.message, now) - now;
        } catch (error) {
          step.fail(delivery, error, attempt, hold);
          return;
        }
        if (wait <= 0) {
          step.emit(delivery);
          return;
        }
        held += 1;
        context.gauge('delayed', held);
        step.begin();
        const due = now + wait;
        const release = (): void => {
          held -= 1;
          context.gauge('delayed', held);
          step.emit(delivery);
          step.end();
        };
        // a timer longer than a platform timer can wait is chained: woken at most every MAX_TIMER_MS until due
        const wake = (): void => {
          const left = due - context.scheduler.now();
          if (left > MAX_TIMER_MS) scheduleTracked(context.scheduler, timers, MAX_TIMER_MS, wake);
          else if (left > 0) scheduleTracked(context.scheduler, timers, left, release);
          else release();
        };
        if (wait > MAX_TIMER_MS) scheduleTracked(context.scheduler, timers, MAX_TIMER_MS, wake);
        else scheduleTracked(context.scheduler, timers, wait, release);
      };
      return {
        next: (delivery) => hold(delivery, 1),
        // Unsubscribed (the stop's deadline passed): the held deliveries stay unsettled and go back to the source.
        teardown: () => {
          for (const timer of timers) timer.unsubscribe();
          timers.clear();
          held = 0;
          context.gauge('delayed', 0);
        },
      };
    });
}

/** The durable options, checked and defaulted: a bad one fails where the route is declared. */
function durableOptions(options: DelayOptions): { key: string | undefined; leaseMs: number; pollIntervalMs: number; batchSize: number; maxInFlight: number; retryBackoff: { initialMs: number; maxMs: number }; maxRedeliveries: number } {
  const { key, leaseMs = 30_000, pollIntervalMs = 1_000, batchSize = 100, maxInFlight = batchSize, retryBackoff = { initialMs: 1_000, maxMs: 60_000 }, maxRedeliveries = 5 } = options;
  if (key !== undefined && (typeof key !== 'string' || key === '')) throw new RouteDefinitionError('delay: key must be a non-empty string');
  for (const [name, ms] of [['leaseMs', leaseMs], ['pollIntervalMs', pollIntervalMs], ['retryBackoff.maxMs', retryBackoff.maxMs]] as const) {
    if (!(Number.isFinite(ms) && ms > 0)) throw new RouteDefinitionError(`delay: ${name} must be a positive number of milliseconds, got ${String(ms)}`);
  }
  if (!(Number.isFinite(retryBackoff.initialMs) && retryBackoff.initialMs >= 0)) throw new RouteDefinitionError(`delay: retryBackoff.initialMs must be ≥ 0, got ${String(retryBackoff.initialMs)}`);
  for (const [name, n] of [['batchSize', batchSize], ['maxInFlight', maxInFlight], ['maxRedeliveries', maxRedeliveries]] as const) {
    if (!Number.isInteger(n) || n < 1) throw new RouteDefinitionError(`delay: ${name} must be a positive integer, got ${String(n)}`);
  }
  return { key, leaseMs, pollIntervalMs, batchSize, maxInFlight, retryBackoff: { initialMs: retryBackoff.initialMs, maxMs: retryBackoff.maxMs }, maxRedeliveries };
}

/**
 * `.delay(value, options)`: the delayer's DSL entry (kind `delay`). Options are checked at once.
 * @example delayStep((m) => Number(m.headers.delayMs), { store })
 */
export function delayStep<T>(value: DelayValue<T>, options?: DelayOptions): StepSpec<T, T> {
  return stepSpec('delay', delay<T>(value, options));
}
