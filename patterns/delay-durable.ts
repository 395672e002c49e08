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
}

/** Claims per poll at most (a full batch asks for another at once), so one poll ends. */
const ROUNDS_PER_POLL = 10;

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
 *   (`DELAY_UNDELIVERABLE`) to the route's error handler and is removed once that settles it.
 *   While a delivery is out, this instance renews its claim each time the lease runs out (a renewal
 *   counts an attempt); an instance that died holds nothing after `leaseMs`, and the message is taken
 *   again (by another instance too): a duplicate, never a loss. Messages leave in due-time order, but not in a strict one across instances.
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

  constructor(
    private readonly config: DurableDelay<T>,
    private readonly context: StepContext,
    private readonly step: StepLifecycle<T, T>,
  ) {
    this.key = config.key ?? `${context.routeId}/${context.stepId}`;
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
        if (this.pollAgain) {
          this.pollAgain = false;
          this.poll();
        }
        this.step.end();
      });
  }

  private async takeDue(): Promise<void> {
    const { store, leaseMs, batchSize, pollIntervalMs } = this.config;
    for (let round = 0; round < ROUNDS_PER_POLL && !this.stopped; round += 1) {
      const claimed = await store.claimDue(this.key, this.context.scheduler.now(), leaseMs, batchSize);
      for (const entry of claimed) this.pass(entry);
      if (claimed.length < batchSize) break;
    }
    if (this.stopped) return;
    const [next, count] = await Promise.all([store.nextAt(this.key), store.count(this.key)]);
    this.setHeld(count);
    this.wake(Math.min(this.context.scheduler.now() + pollIntervalMs, next ?? Number.POSITIVE_INFINITY));
  }

  /** Emits a message taken from the store; its settlement removes or releases it. */
  private pass(entry: ClaimedDelayedMessage): void {
    const id = entry.message.id;
    if (this.step.closed) return;
    if (this.emitted.has(id)) {
      this.emitted.set(id, entry); // still in flight here, its lease ran out: claimed again (renewed), not emitted twice
      return;
    }
    this.emitted.set(id, entry);
    this.step.begin();
    const message = entry.message as Message<T>;
    if (entry.attempts > this.config.maxRedeliveries) {
      const delivery = createDelivery(message, { ack: () => this.settle(entry, 'remove'), nack: () => this.settle(entry, 'release') });
      const error = new InterchangeError(
        'DELAY_UNDELIVERABLE',
        `delay: message '${id}' (key '${this.key}') was taken ${entry.attempts} times without being settled (maxRedeliveries ${this.config.maxRedeliveries})`,
        { permanent: true },
      );
      // A handler asking to retry a permanent failure is overruled by the runtime; here, the store retries.
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

  private settle(emitted: ClaimedDelayedMessage, how: 'remove' | 'release'): void {
    const { store, retryBackoff } = this.config;
    const id = emitted.message.id;
    const entry = this.emitted.get(id) ?? emitted; // its latest claim (a renewal counts an attempt)
    const retryAt = this.context.scheduler.now() + backoffDelay(entry.attempts - 1, { ...retryBackoff, jitter: 0 });
    void Promise.resolve()
      .then(() => (how === 'remove' ? store.remove(this.key, id) : store.release(this.key, id, entry.attempts, retryAt)))
      .then(() => {
        if (how === 'remove') this.setHeld(Math.max(0, this.held - 1));
        else this.wake(retryAt);
      })
      .catch((error: unknown) => this.context.log.warn(`delay: ${how} failed in the store; the message is taken again once its lease ends`, { ...this.where(), messageId: id, error }))
      .finally(() => {
        this.emitted.delete(id);
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
