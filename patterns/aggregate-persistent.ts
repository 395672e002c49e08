import type { Subscription } from 'rxjs';
import { createDelivery, derivedMessageId, InterchangeError, type Delivery, type Message, type StepContext, type StepFactory } from '../src/core/index.ts';
import { stepLifecycle, type StepHandlers, type StepLifecycle } from '../src/core/step-lifecycle.ts';
import type { AddOutcome, CompletedAggregate, Completion, GroupWrite, PersistentAggregationRepository, StoredGroup } from '../src/stores/persistent-aggregation-repository.ts';

/** What `aggregate` hands its durable mode once the options are checked and defaulted. */
export interface PersistentAggregation<I, A> {
  readonly repository: PersistentAggregationRepository<A>;
  readonly correlate: (message: Message<I>) => string;
  readonly strategy: (previous: A | undefined, next: Message<I>) => A;
  /** Why a group completes with this input (`size`, `sequence`, `predicate`), or undefined. May throw: that input fails. */
  readonly completes: (value: A, count: number, message: Message<I>) => string | undefined;
  readonly timeoutMs: number | undefined;
  /** Complete the groups this instance wrote to when the source completes (`onStop: 'complete'`); else they stay in the store. */
  readonly completeOnStop: boolean;
  readonly leaseMs: number;
  readonly recoveryIntervalMs: number;
  readonly maxRedeliveries: number;
}

/** Reads and writes of one input before it fails as transient: other instances kept writing its group. */
/** Groups whose last known state an instance keeps (one read saved per input). */
const KNOWN_GROUPS = 10_000;

export const MAX_CONFLICT_RETRIES = 50;
/** How many aggregates or expired groups one recovery round takes from the store. */
const RECOVERY_BATCH = 100;
/** Rounds per recovery tick (a full batch asks for another), so one tick ends. */
const RECOVERY_ROUNDS = 10;

/**
 * The aggregator's durable, shared mode (Camel's JdbcAggregationRepository with recovery): groups
 * live in a `PersistentAggregationRepository`, so they survive a crash and several instances of a
 * route aggregate the same keys.
 *
 * Contract:
 * - Each input is read, folded, checked for completion and written with the version it read; it is
 *   acked once that write is durable (`added`, `completed`, or `duplicate`: an input folded before, a
 *   redelivery, changes nothing). A `conflict` (another instance wrote the key) reads again, up to
 *   `MAX_CONFLICT_RETRIES` times, then fails the input as transient (`AGGREGATE_CONFLICT`); a store
 *   error fails it as transient (`AGGREGATE_STORE_FAILED`): never acked, the route's policy retries
 *   or rejects it. A throwing correlate, strategy or completion check fails that input only.
 * - Per key, inputs run one at a time in arrival order within this process; keys run concurrently.
 *   In-flight inputs are unsettled deliveries, so the source's prefetch bounds them.
 * - An aggregate is emitted with its stored id (derived from its input ids), acked → `confirm`,
 *   rejected → `release` (recovery emits it again). This instance never emits one aggregate twice at once.
 * - Recovery, at start and every `recoveryIntervalMs` on the scheduler: re-emits aggregates whose
 *   claim expired or was released (`leaseMs`); one claimed more than `maxRedeliveries` times fails
 *   permanently (`AGGREGATE_UNDELIVERABLE`) to the route's error handler and is confirmed once that
 *   settles it (dead-lettered). With `timeoutMs`, it completes groups idle that long, whoever wrote them.
 * - Inactivity timers run for the keys this instance wrote: when one fires, the group completes if
 *   it has been idle `timeoutMs`, else the timer waits out the rest (another instance added to it).
 * - When the source completes: timers stop, in-flight inputs and emitted aggregates are waited for;
 *   open groups stay in the store unless `completeOnStop`, which completes those this instance wrote.
 */
export function persistentAggregate<I, A>(config: PersistentAggregation<I, A>): StepFactory<I, A> {
  return (context) => stepLifecycle<I, A>(context, (step) => new DurableAggregator(config, context, step).start());
}

/** One subscription of a durable aggregator. */
class DurableAggregator<I, A> {
  /** Per key, the tail of the work queued on it; removed when the key is idle. */
  private readonly chains = new Map<string, Promise<void>>();
  private readonly timers = new Map<string, Subscription>();
  /** Aggregates emitted by this instance and not yet settled: recovery skips them. */
  private readonly emitted = new Set<string>();
  /** Keys whose open group this instance wrote: what `completeOnStop` completes. */
  private readonly touched = new Set<string>();
  /**
   * The group of each key as this instance last wrote or read it (`null`: none open), so that a
   * fold needs one round trip (`add`), not two: a stale entry — another instance wrote the key — is
   * caught by `add`'s version check (`conflict`), dropped, and the group read again. Bounded.
   */
  private readonly known = new Map<string, StoredGroup<A> | null>();
  private recoveryTimer: Subscription | undefined = undefined;
  private recovering = false;
  private stopped = false;
  private duplicates = 0;

  constructor(
    private readonly config: PersistentAggregation<I, A>,
    private readonly context: StepContext,
    private readonly step: StepLifecycle<I, A>,
  ) {}

  start(): StepHandlers<I> {
    this.recover();
    this.scheduleRecovery();
    return { next: (delivery) => this.accept(delivery, 1), drain: () => this.drain(), teardown: () => this.stop() };
  }

  /** Correlates an input and queues its fold behind the earlier inputs of its key. */
  private readonly accept = (delivery: Delivery<I>, attempt: number): void => {
    let key: string;
    try {
      key = this.config.correlate(delivery.message);
    } catch (error) {
      this.step.fail(delivery, error, attempt, this.accept);
      return;
    }
    void this.onKey(key, () => this.fold(delivery, key, attempt));
  };

  private async fold(delivery: Delivery<I>, key: string, attempt: number): Promise<void> {
    const { repository } = this.config;
    for (let round = 1; round <= MAX_CONFLICT_RETRIES; round += 1) {
      let current: StoredGroup<A> | undefined;
      let outcome: AddOutcome<A>;
      const cached = round === 1 ? this.known.get(key) : undefined;
      try {
        current = cached === undefined ? await repository.get(key) : (cached ?? undefined);
      } catch (error) {
        this.known.delete(key);
        return this.storeFailed(delivery, key, error, attempt);
      }
      let write: GroupWrite<A>;
      try {
        write = this.writeFor(key, current, delivery.message);
      } catch (error) {
        return this.step.fail(delivery, error, attempt, this.accept);
      }
      try {
        outcome = await repository.add(write);
      } catch (error) {
        this.known.delete(key);
        return this.storeFailed(delivery, key, error, attempt);
      }
      this.remember(key, outcome.kind === 'added' ? outcome.group : outcome.kind === 'completed' ? null : undefined);
      switch (outcome.kind) {
        case 'conflict':
          continue;
        case 'duplicate':
          this.duplicates += 1;
          this.context.log.info('aggregate: input already folded in (a redelivery), acked without change', { ...this.where(), key, messageId: delivery.message.id, duplicates: this.duplicates });
          delivery.ack();
          if (current !== undefined && !this.timers.has(key)) this.arm(key, current.lastAt + (this.config.timeoutMs ?? 0) - this.context.scheduler.now());
          return;
        case 'added':
          delivery.ack();
          this.touched.add(key);
          this.arm(key, this.config.timeoutMs ?? 0);
          return;
        case 'completed':
          delivery.ack();
          this.forget(key);
          this.publish(outcome.aggregate);
          return;
      }
    }
    const error = new InterchangeError('AGGREGATE_CONFLICT', `aggregate: key '${key}' was written by others ${MAX_CONFLICT_RETRIES} times while message '${delivery.message.id}' was folded in`);
    this.step.fail(delivery, error, attempt, this.accept);
  }

  /** Keeps what this instance knows of a key's group (`undefined`: nothing — read it next time). */
  private remember(key: string, group: StoredGroup<A> | null | undefined): void {
    this.known.delete(key); // re-inserted last: the oldest entry is the first one
    if (group === undefined) return;
    this.known.set(key, group);
    if (this.known.size > KNOWN_GROUPS) this.known.delete(this.known.keys().next().value as string);
  }

  /** The group with this input folded in, and its completion if it completes. Throws what the user's functions throw. */
  private writeFor(key: string, current: StoredGroup<A> | undefined, message: Message<I>): GroupWrite<A> {
    const now = this.context.scheduler.now();
    const value = this.config.strategy(current?.value, message);
    const inputIds = [...(current?.inputIds ?? []), message.id];
    const completedBy = this.config.completes(value, inputIds.length, message);
    const next = { key, value, inputIds, correlationId: current?.correlationId ?? message.headers.correlationId ?? message.id, firstAt: current?.firstAt ?? now, lastAt: now };
    const write = { key, inputId: message.id, expectedVersion: current?.version ?? 0, next };
    return completedBy === undefined ? write : { ...write, completion: this.completion(inputIds, completedBy) };
  }

  private storeFailed(delivery: Delivery<I>, key: string, cause: unknown, attempt: number): void {
    const error = new InterchangeError('AGGREGATE_STORE_FAILED', `aggregate: the repository failed on key '${key}'`, { cause });
    this.step.fail(delivery, error, attempt, this.accept);
  }

  private completion(inputIds: readonly string[], completedBy: string): Completion {
    return { id: derivedMessageId(inputIds), completedBy, leaseMs: this.config.leaseMs };
  }

  /** Completes a group without a new input, unless it changed meanwhile (then another instance or input owns it). */
  private async completeGroup(group: StoredGroup<A>, completedBy: string): Promise<void> {
    this.known.delete(group.key); // completed here or elsewhere: read it again next time
    const aggregate = await this.config.repository.complete(group.key, group.version, this.completion(group.inputIds, completedBy));
    if (aggregate === undefined) return;
    this.forget(group.key);
    this.publish(aggregate);
  }

  /** Emits an aggregate this instance holds the claim of; its settlement confirms or releases it. */
  private publish(aggregate: CompletedAggregate<A>): void {
    if (this.emitted.has(aggregate.id) || this.step.closed) return;
    this.hold(aggregate.id);
    this.step.emit(
      createDelivery(aggregateMessage(aggregate), {
        ack: () => this.settle(aggregate.id, 'confirm'),
        nack: (reason) => {
          this.context.log.warn('aggregate rejected downstream: released for recovery to emit again', { ...this.where(), messageId: aggregate.id, attempts: aggregate.attempts, error: reason });
          this.settle(aggregate.id, 'release');
        },
      }),
    );
  }

  /** An aggregate past `maxRedeliveries`: a permanent failure for the route's error handler; confirmed once it settles it. */
  private undeliverable(aggregate: CompletedAggregate<A>): void {
    if (this.emitted.has(aggregate.id) || this.step.closed) return;
    this.hold(aggregate.id);
    const delivery = createDelivery(aggregateMessage(aggregate), { ack: () => this.settle(aggregate.id, 'confirm'), nack: () => this.settle(aggregate.id, 'release') });
    const error = new InterchangeError(
      'AGGREGATE_UNDELIVERABLE',
      `aggregate '${aggregate.id}' of key '${aggregate.key}' was claimed ${aggregate.attempts} times without being confirmed (maxRedeliveries ${this.config.maxRedeliveries})`,
      { permanent: true },
    );
    // A handler asking to retry a permanent failure is overruled by the runtime; here, recovery retries.
    if (this.context.failed(delivery, error, aggregate.attempts) !== undefined) delivery.nack(error);
  }

  private hold(id: string): void {
    this.emitted.add(id);
    this.step.begin();
  }

  private settle(id: string, how: 'confirm' | 'release'): void {
    const { repository } = this.config;
    void Promise.resolve()
      .then(() => (how === 'confirm' ? repository.confirm(id) : repository.release(id)))
      .catch((error: unknown) => this.context.log.warn(`aggregate: ${how} failed; the aggregate is emitted again once its lease ends`, { ...this.where(), messageId: id, error }))
      .finally(() => {
        this.emitted.delete(id);
        this.step.end();
      });
  }

  /** Queues `work` behind the key's earlier work, counted as pending; resolves when it has run (errors logged). */
  private onKey(key: string, work: () => Promise<void>): Promise<void> {
    this.step.begin();
    const tail: Promise<void> = (this.chains.get(key) ?? Promise.resolve())
      .then(work)
      .catch((error: unknown) => this.context.log.warn('aggregate: the repository failed; recovery tries again', { ...this.where(), key, error }))
      .finally(() => {
        if (this.chains.get(key) === tail) this.chains.delete(key);
        this.step.end();
      });
    this.chains.set(key, tail);
    return tail;
  }

  /** (Re)starts the key's inactivity timer: `delay` from now. */
  private arm(key: string, delay: number): void {
    const { timeoutMs } = this.config;
    if (timeoutMs === undefined || this.stopped) return;
    this.timers.get(key)?.unsubscribe();
    let fired = false;
    let timer: Subscription | undefined = undefined;
    timer = this.context.scheduler.schedule(
      () => {
        fired = true;
        if (timer !== undefined && this.timers.get(key) === timer) this.timers.delete(key);
        void this.onKey(key, () => this.inactive(key, timeoutMs));
      },
      Math.max(0, delay),
    );
    if (!fired) this.timers.set(key, timer);
  }

  private async inactive(key: string, timeoutMs: number): Promise<void> {
    const group = await this.config.repository.get(key);
    if (group === undefined) return;
    const remaining = group.lastAt + timeoutMs - this.context.scheduler.now();
    if (remaining > 0) this.arm(key, remaining);
    else await this.completeGroup(group, 'timeout');
  }

  private forget(key: string): void {
    this.touched.delete(key);
    this.timers.get(key)?.unsubscribe();
    this.timers.delete(key);
  }

  private scheduleRecovery(): void {
    if (this.stopped) return;
    this.recoveryTimer = this.context.scheduler.schedule(() => {
      this.recoveryTimer = undefined;
      this.recover();
      this.scheduleRecovery();
    }, this.config.recoveryIntervalMs);
  }

  /** One recovery tick, counted as pending; skipped while the previous one runs. */
  private recover(): void {
    if (this.recovering || this.stopped) return;
    this.recovering = true;
    this.step.begin();
    void this.sweep()
      .catch((error: unknown) => this.context.log.warn('aggregate: recovery failed; it runs again at the next interval', { ...this.where(), error }))
      .finally(() => {
        this.recovering = false;
        this.step.end();
      });
  }

  private async sweep(): Promise<void> {
    const { repository, leaseMs, maxRedeliveries, timeoutMs } = this.config;
    for (let round = 0; round < RECOVERY_ROUNDS && !this.stopped; round += 1) {
      const claimed = await repository.claimUnconfirmed(leaseMs, RECOVERY_BATCH);
      for (const aggregate of claimed) {
        if (aggregate.attempts > maxRedeliveries) this.undeliverable(aggregate);
        else this.publish(aggregate);
      }
      if (claimed.length < RECOVERY_BATCH) break;
    }
    if (timeoutMs === undefined) return;
    for (let round = 0; round < RECOVERY_ROUNDS && !this.stopped; round += 1) {
      const groups = await repository.expired(this.context.scheduler.now() - timeoutMs, RECOVERY_BATCH);
      await Promise.all(groups.map((group) => this.onKey(group.key, () => this.completeGroup(group, 'timeout'))));
      if (groups.length < RECOVERY_BATCH) break;
    }
  }

  /** The source has completed (called again whenever pending work has ended after that). */
  private drain(): void {
    this.stop();
    if (!this.config.completeOnStop) return;
    for (const key of [...this.touched]) {
      this.touched.delete(key);
      void this.onKey(key, async () => {
        const group = await this.config.repository.get(key);
        if (group !== undefined) await this.completeGroup(group, 'stop');
      });
    }
  }

  private stop(): void {
    this.stopped = true;
    this.recoveryTimer?.unsubscribe();
    this.recoveryTimer = undefined;
    for (const timer of this.timers.values()) timer.unsubscribe();
    this.timers.clear();
  }

  private where(): { route: string; step: string } {
    return { route: this.context.routeId, step: this.context.stepId };
  }
}

/** The aggregate message of a stored aggregate: the same id and headers on every emission. */
function aggregateMessage<A>(aggregate: CompletedAggregate<A>): Message<A> {
  return {
    id: aggregate.id,
    headers: {
      timestamp: aggregate.completedAt,
      correlationId: aggregate.correlationId,
      causationId: aggregate.inputIds[0],
      aggregationKey: aggregate.key,
      aggregationSize: aggregate.inputIds.length,
      aggregationCompletedBy: aggregate.completedBy,
    },
    body: aggregate.value,
  };
}
