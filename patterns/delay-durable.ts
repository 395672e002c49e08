import type { Subscription } from 'rxjs';
import { backoffDelay, createDelivery, InterchangeError, type Delivery, type Message, type StepContext, type StepFactory } from '../src/core/index.ts';
import { stepLifecycle, type StepHandlers, type StepLifecycle } from '../src/core/step-lifecycle.ts';
import type { ClaimedDelayedMessage, DelayedMessageStore } from '../src/stores/delayed-message-store.ts';

/** What `delay` hands its durable mode once the options are checked and defaulted. */
export interface DurableDelay<T> {
  readonly store: DelayedMessageStore;
  /** The message's due time (epoch ms of the scheduler's clock) given `now`; may throw: that message fails. */
  readonly dueAt: (message: Message<T>, now: number) => number;
  /** The delayer's key in the store; default `<routeId>/<stepId>`. */
  readonly key: string | undefined;
  readonly leaseMs: number;
  readonly pollIntervalMs: number;
  readonly batchSize: number;
  readonly retryBackoff: { readonly initialMs: number; readonly maxMs: number };
  readonly maxRedeliveries: number;
  /** Deliveries taken from the store and out downstream, unsettled, at once at most (default `batchSize`). */
  readonly maxInFlight?: number;
}

/**
 * The availability a parked message is given in the store (the latest `Date`, epoch ms): never due.
 * @example await store.nextAt('orders/hold') === DELAY_PARKED_AT // only parked messages left
 */
export const DELAY_PARKED_AT = 8_640_000_000_000_000;

/** Claims per poll at most (a full batch asks for another at once), so one poll ends. */
const ROUNDS_PER_POLL = 10;

/** How a settlement ends a delivery's claim: removed, released for a retry, or parked (undeliverable, rejected). */
type Settlement = 'remove' | 'release' | 'park';

/**
 * The delayer's durable mode (Spring Integration's delayer with a `MessageStore`): the store owns
 * each delayed message, so a crash or a restart loses none and several instances of the route share
 * the work.
 *
 * Contract:
 * - Each message is written to the store (its key, id, due time, the message as JSON), THEN its source
 *   delivery is acked. A store error fails it as transient (`DELAY_STORE_FAILED`; the route's policy
 *   retries or rejects it, never acked). The same id stored again (a redelivered source) is acked
 *   without a second copy. A message with no wait left passes on at once, its source unsettled until
 *   it is settled downstream, as in memory (Spring's delayer releases those without storing them).
 * - A poller on the scheduler takes due messages from the store — at the start (what a previous run
 *   left is resumed), at the due time of each message this instance stored, after a release, and at
 *   least every `pollIntervalMs` — claiming them for `leaseMs` so no other instance takes them. Each
 *   goes on as a new delivery: acked, it is removed from the store; rejected, it is released, available
 *   again after the retry backoff. One taken more than `maxRedeliveries` times fails permanently
 *   (`DELAY_UNDELIVERABLE`) to the route's error handler and is removed once that acks it (a
 *   dead-letter channel). Rejected by it (the default `rejectToSource`, no dead-letter channel), it is
 *   **parked**: logged once at error level (the whole message), counted (`parked`), and left in the
 *   store with its availability set to `DELAY_PARKED_AT`, so it is never taken again — not lost, and
 *   no retry loop. It still counts in the gauge `delayed`. An operator finds it by that time
 *   (PostgreSQL: `WHERE key = … AND available_at = 8640000000000000`; Redis: the ids of score
 *   8640000000000000 in `<prefix>{<key>}:available`), and removes it, or retries it by setting its
 *   attempts to 0 and its availability to now.
 *   While a delivery is out, this instance renews its claim each time the lease runs out and a poll
 *   reaches it (a renewal counts an attempt); an instance that died holds nothing after `leaseMs`, and
 *   the message is taken again (by another instance too): a duplicate, never a loss. A delivery
 *   settled while a claim was under way is not emitted again by that claim's reply. Messages leave in
 *   due-time order, but not in a strict one across instances.
 * - Backpressure: at most `maxInFlight` (default `batchSize`) deliveries taken from the store are out
 *   downstream, unsettled, at once; a backlog waits in the store, and each settlement that makes room
 *   polls again. At the cap no claim is made, so no lease is renewed either: keep `leaseMs` above the
 *   time downstream needs for that many.
 * - When the source completes (the route stops): polling stops; messages in the store stay there for
 *   the next run or another instance; the step completes once the deliveries it emitted are settled.
 *   Unsubscribed before that (the stop's deadline passed), it releases them in the store at once.
 * - Gauge `delayed`: the messages the store holds for this key, as last counted (each poll) and kept
 *   up to date by this instance's own writes.
 * @example durableDelay({ store, dueAt: (m, now) => now + 5_000, key: 'reminders', leaseMs: 30_000, pollIntervalMs: 1_000, batchSize: 100, retryBackoff: { initialMs: 1_000, maxMs: 60_000 }, maxRedeliveries: 5 })
 */
export function durableDelay<T>(config: DurableDelay<T>): StepFactory<T, T> {
  return (context) => stepLifecycle<T, T>(context, (step) => new DurableDelayer(config, context, step).start());
}

/** One subscription of a durable delayer. */
class DurableDelayer<T> {
  private readonly key: string;
  /** Taken from the store by this instance and not yet settled, by message id. */
  private readonly emitted = new Map<string, ClaimedDelayedMessage>();
  private wakeTimer: Subscription | undefined = undefined;
  private wakeAt = Number.POSITIVE_INFINITY;
  private polling = false;
  private pollAgain = false;
  private stopped = false;
  private held = 0;
  /** The last poll stopped at `maxInFlight`: a settlement that makes room polls again. */
  private full = false;
  /**
   * Ids settled (their store write done) while the current poll runs, and the availability they were
   * given (undefined: removed): a claim under way may still return them, not to be emitted again.
   */
  private readonly settledInPoll = new Map<string, number | undefined>();
  private readonly maxInFlight: number;

  constructor(
    private readonly config: DurableDelay<T>,
    private readonly context: StepContext,
    private readonly step: StepLifecycle<T, T>,
  ) {
    this.key = config.key ?? `${context.routeId}/${context.stepId}`;
    this.maxInFlight = config.maxInFlight ?? config.batchSize;
  }

  start(): StepHandlers<T> {
    this.poll();
    return { next: (delivery) => this.accept(delivery, 1), drain: () => this.stop(), teardown: () => this.teardown() };
  }

  /** Stores a message, then acks its source; wakes the poller at its due time. */
  private readonly accept = (delivery: Delivery<T>, attempt: number): void => {
    const now = this.context.scheduler.now();
    let dueAt: number;
    try {
      dueAt = this.config.dueAt(delivery.message, now);
    } catch (error) {
      this.step.fail(delivery, error, attempt, this.accept);
      return;
    }
    if (dueAt <= now) {
      this.step.emit(delivery);
      return;
    }
    this.step.begin();
    void this.config.store
      .put({ key: this.key, message: delivery.message, dueAt })
      .then(
        (stored) => {
          delivery.ack();
          if (stored) this.setHeld(this.held + 1);
          else this.context.log.info('delay: message already in the store (a redelivery), acked without a second copy', { ...this.where(), messageId: delivery.message.id });
          this.wake(dueAt);
        },
        (cause: unknown) => {
          const error = new InterchangeError('DELAY_STORE_FAILED', `delay: the store failed to keep message '${delivery.message.id}' (key '${this.key}')`, { cause });
          this.step.fail(delivery, error, attempt, this.accept);
        },
      )
      .finally(() => this.step.end());
  };

  /** Polls at `at` (epoch ms), unless a poll is already due earlier. */
  private wake(at: number): void {
    if (this.stopped || (this.wakeTimer !== undefined && this.wakeAt <= at)) return;
    this.wakeTimer?.unsubscribe();
    this.wakeTimer = undefined;
    this.wakeAt = at;
    let fired = false;
    const timer = this.context.scheduler.schedule(
      () => {
        fired = true;
        this.wakeTimer = undefined;
        this.wakeAt = Number.POSITIVE_INFINITY;
        this.poll();
      },
      Math.max(0, at - this.context.scheduler.now()),
    );
    if (!fired) this.wakeTimer = timer;
  }

  /** One poll, counted as pending work; a poll asked for while one runs runs right after it. */
  private poll(): void {
    if (this.stopped) return;
    if (this.polling) {
      this.pollAgain = true;
      return;
    }
    this.polling = true;
    this.step.begin();
    void this.takeDue()
      .catch((error: unknown) => {
        this.context.log.warn('delay: the store failed while taking due messages; polling again later', { ...this.where(), error });
        this.wake(this.context.scheduler.now() + this.config.pollIntervalMs);
      })
      .finally(() => {
        this.polling = false;
        this.settledInPoll.clear();
        if (this.pollAgain) {
          this.pollAgain = false;
          this.poll();
        }
        this.step.end();
      });
  }

  private async takeDue(): Promise<void> {
    const { store, leaseMs, batchSize, pollIntervalMs } = this.config;
    this.full = false;
    for (let round = 0; round < ROUNDS_PER_POLL && !this.stopped; round += 1) {
      // a renewal (an id already out) takes no room: the room is counted again each round
      const limit = Math.min(batchSize, this.maxInFlight - this.emitted.size);
      if (limit <= 0) {
        this.full = true;
        break;
      }
      const claimed = await store.claimDue(this.key, this.context.scheduler.now(), leaseMs, limit);
      for (const entry of claimed) this.pass(entry);
      if (claimed.length < limit) break;
    }
    if (this.stopped) return;
    const [next, count] = await Promise.all([store.nextAt(this.key), store.count(this.key)]);
    this.setHeld(count);
    // full, a due backlog must not poll again at once: a settlement making room does
    this.wake(Math.min(this.context.scheduler.now() + pollIntervalMs, this.full ? Number.POSITIVE_INFINITY : (next ?? Number.POSITIVE_INFINITY)));
  }

  /** Emits a message taken from the store; its settlement removes or releases it. */
  private pass(entry: ClaimedDelayedMessage): void {
    const id = entry.message.id;
    if (this.step.closed) return;
    if (this.settledInPoll.has(id)) {
      // settled while this claim was under way: not emitted again. Released or parked, it was so under
      // the older claim (which the store ignored if this one came first): again under this one.
      const at = this.settledInPoll.get(id);
      if (at !== undefined) {
        this.config.store.release(this.key, id, entry.attempts, at).catch((error: unknown) => {
          this.context.log.warn('delay: release failed in the store; the message is taken again once its lease ends', { ...this.where(), messageId: id, error });
        });
      }
      return;
    }
    if (this.emitted.has(id)) {
      this.emitted.set(id, entry); // still in flight here, its lease ran out: claimed again (renewed), not emitted twice
      return;
    }
    this.emitted.set(id, entry);
    this.step.begin();
    const message = entry.message as Message<T>;
    if (entry.attempts > this.config.maxRedeliveries) {
      const delivery = createDelivery(message, {
        ack: () => this.settle(entry, 'remove'),
        nack: (reason) => {
          this.context.log.error(`delay: message '${id}' is undeliverable and was rejected (no dead-letter channel): parked in the store, never taken again until an operator acts`, {
            ...this.where(),
            messageId: id,
            attempts: entry.attempts,
            parkedAt: DELAY_PARKED_AT,
            message,
            error: reason,
          });
          this.context.count('parked');
          this.settle(entry, 'park');
        },
      });
      const error = new InterchangeError(
        'DELAY_UNDELIVERABLE',
        `delay: message '${id}' (key '${this.key}') was taken ${entry.attempts} times without being settled (maxRedeliveries ${this.config.maxRedeliveries})`,
        { permanent: true },
      );
      // A handler asking to retry a permanent failure is overruled by the runtime: parked as if rejected.
      if (this.context.failed(delivery, error, entry.attempts) !== undefined) delivery.nack(error);
      return;
    }
    this.step.emit(
      createDelivery(message, {
        ack: () => this.settle(entry, 'remove'),
        nack: (reason) => {
          this.context.log.warn('delay: message rejected downstream, released in the store for another try', { ...this.where(), messageId: id, attempts: this.emitted.get(id)?.attempts, error: reason });
          this.settle(entry, 'release');
        },
      }),
    );
  }

  private settle(emitted: ClaimedDelayedMessage, how: Settlement): void {
    const { store, retryBackoff } = this.config;
    const id = emitted.message.id;
    const entry = this.emitted.get(id) ?? emitted; // its latest claim (a renewal counts an attempt)
    const retryAt = how === 'park' ? DELAY_PARKED_AT : this.context.scheduler.now() + backoffDelay(entry.attempts - 1, { ...retryBackoff, jitter: 0 });
    void Promise.resolve()
      .then(() => (how === 'remove' ? store.remove(this.key, id) : store.release(this.key, id, entry.attempts, retryAt)))
      .then(() => {
        if (how === 'remove') this.setHeld(Math.max(0, this.held - 1));
        else if (how === 'release') this.wake(retryAt);
      })
      .catch((error: unknown) => this.context.log.warn(`delay: ${how} failed in the store; the message is taken again once its lease ends`, { ...this.where(), messageId: id, error }))
      .finally(() => {
        this.emitted.delete(id);
        if (this.polling) this.settledInPoll.set(id, how === 'remove' ? undefined : retryAt);
        if (this.full && this.emitted.size < this.maxInFlight) {
          this.full = false;
          this.poll();
        }
        this.step.end();
      });
  }

  private setHeld(count: number): void {
    this.held = count;
    this.context.gauge('delayed', count);
  }

  /** The source has completed: no more polling; what the store holds stays there. */
  private stop(): void {
    this.stopped = true;
    this.wakeTimer?.unsubscribe();
    this.wakeTimer = undefined;
  }

  /** Unsubscribed with deliveries still out: released in the store at once (else they wait for their lease). */
  private teardown(): void {
    this.stop();
    const now = this.context.scheduler.now();
    for (const entry of this.emitted.values()) {
      this.config.store.release(this.key, entry.message.id, entry.attempts, now).catch((error: unknown) => {
        this.context.log.warn('delay: release at stop failed; the message is taken again once its lease ends', { ...this.where(), messageId: entry.message.id, error });
      });
    }
    this.emitted.clear();
  }

  private where(): { route: string; step: string; key: string } {
    return { route: this.context.routeId, step: this.context.stepId, key: this.key };
  }
}
