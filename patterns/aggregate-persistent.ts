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

/** Groups whose last known state an instance keeps (one read saved per input). */
const KNOWN_GROUPS = 10_000;

/** Writes of one batch of inputs before they fail as transient: other instances kept writing their group. */
export const MAX_CONFLICT_RETRIES = 50;
/** Inputs of one key folded in one write at most. */
const MAX_BATCH = 500;

/** An input waiting for its key's fold, with the attempt it is on. */
interface Waiting<I> {
  readonly delivery: Delivery<I>;
  readonly attempt: number;
}
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
 * - The inputs of a key that wait together are folded in arrival order, checked for completion and
 *   written in one write with the version read (a batch ends at the input that completes the group;
 *   the rest go into the next write); each is acked once that write is durable (`added`, `completed`).
 *   Inputs folded before (a redelivery) are named by the store (`duplicate`): they are acked without
 *   change and the others written again. A `conflict` (another instance wrote the key) reads again, up
 *   to `MAX_CONFLICT_RETRIES` times, then fails the inputs as transient (`AGGREGATE_CONFLICT`); a store
 *   error fails them as transient (`AGGREGATE_STORE_FAILED`): never acked, the route's policy retries
 *   or rejects them. A throwing correlate, strategy or completion check fails that input only.
 * - Per key, writes run one at a time in arrival order within this process; keys run concurrently, and
 *   a busy key's inputs wait while its previous write is under way, so the store sees one write per
 *   batch, not per input.
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
  /** Per key, the inputs waiting for its next fold (a fold of them is queued on the key's chain). */
  private readonly waiting = new Map<string, Waiting<I>[]>();
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

  /** Correlates an input and queues it for its key's next fold (one write folds every input waiting). */
  private readonly accept = (delivery: Delivery<I>, attempt: number): void => {
    let key: string;
    try {
      key = this.config.correlate(delivery.message);
    } catch (error) {
      this.step.fail(delivery, error, attempt, this.accept);
      return;
    }
    const waiting = this.waiting.get(key);
    if (waiting !== undefined) {
      waiting.push({ delivery, attempt });
      return;
    }
    this.waiting.set(key, [{ delivery, attempt }]);
    void this.onKey(key, () => this.foldWaiting(key));
  };

  /** Takes the inputs waiting for `key` (at most `MAX_BATCH`; the rest queue another fold) and folds them. */
  private async foldWaiting(key: string): Promise<void> {
    const waiting = this.waiting.get(key) ?? [];
    this.waiting.delete(key);
    if (waiting.length > MAX_BATCH) {
      this.waiting.set(key, waiting.slice(MAX_BATCH));
      void this.onKey(key, () => this.foldWaiting(key));
    }
    let remaining = waiting.slice(0, MAX_BATCH);
    while (remaining.length > 0) remaining = await this.foldSome(key, remaining);
  }

  /**
   * Folds `inputs` in order from the group as known, up to the one that completes it, in one write;
   * returns the inputs not yet settled (those after a completion, or all after a duplicate was named).
   */
  private async foldSome(key: string, inputs: readonly Waiting<I>[]): Promise<Waiting<I>[]> {
    const { repository } = this.config;
    let remaining = [...inputs];
    for (let round = 1; round <= MAX_CONFLICT_RETRIES; round += 1) {
      const cached = this.known.get(key);
      let current: StoredGroup<A> | undefined;
      try {
        current = cached === undefined ? await repository.get(key) : (cached ?? undefined);
      } catch (error) {
        this.known.delete(key);
        this.storeFailed(remaining, key, error);
        return [];
      }
      const { write, consumed, failed } = this.writeFor(key, current, remaining);
      remaining = remaining.filter((input) => !failed.includes(input));
      if (write === undefined) return []; // nothing new: every input failed on its own, or repeated one already folded (acked)
      let outcome: AddOutcome<A>;
      try {
        outcome = await repository.add(write);
      } catch (error) {
        this.known.delete(key);
        this.storeFailed(remaining, key, error);
        return [];
      }
      this.remember(key, outcome.kind === 'added' ? outcome.group : outcome.kind === 'completed' ? null : outcome.kind === 'duplicate' ? current ?? null : undefined);
      switch (outcome.kind) {
        case 'conflict':
          continue;
        case 'duplicate': {
          const seen = new Set(outcome.inputIds);
          const repeated = remaining.filter((input) => seen.has(input.delivery.message.id));
          this.duplicates += repeated.length;
          this.context.log.info('aggregate: inputs already folded in (redeliveries), acked without change', { ...this.where(), key, messageIds: [...seen], duplicates: this.duplicates });
          for (const input of repeated) input.delivery.ack();
          remaining = remaining.filter((input) => !seen.has(input.delivery.message.id));
          if (remaining.length === 0 && current !== undefined && !this.timers.has(key)) this.arm(key, current.lastAt + (this.config.timeoutMs ?? 0) - this.context.scheduler.now());
          if (remaining.length === 0) return [];
          if (repeated.length > 0) round -= 1; // not a conflict: the group is as known, fold the others again
          continue;
        }
        case 'added':
          for (const input of consumed) input.delivery.ack();
          this.touched.add(key);
          this.arm(key, this.config.timeoutMs ?? 0);
          return remaining.slice(consumed.length);
        case 'completed':
          for (const input of consumed) input.delivery.ack();
          this.forget(key);
          this.publish(outcome.aggregate);
          return remaining.slice(consumed.length);
      }
    }
    const error = new InterchangeError('AGGREGATE_CONFLICT', `aggregate: key '${key}' was written by others ${MAX_CONFLICT_RETRIES} times while ${remaining.length} input(s) were folded in`);
    for (const input of remaining) this.step.fail(input.delivery, error, input.attempt, this.accept);
    return [];
  }

  /** Keeps what this instance knows of a key's group (`undefined`: nothing — read it next time). */
  private remember(key: string, group: StoredGroup<A> | null | undefined): void {
    this.known.delete(key); // re-inserted last: the oldest entry is the first one
    if (group === undefined) return;
    this.known.set(key, group);
    if (this.known.size > KNOWN_GROUPS) this.known.delete(this.known.keys().next().value as string);
  }

  /**
   * The group with the inputs folded in, in order, up to the one that completes it (the rest wait for
   * the next write). An input whose strategy or completion check throws fails on its own and is left
   * out (`failed`); `write` is undefined when none was folded.
   */
  private writeFor(key: string, current: StoredGroup<A> | undefined, inputs: readonly Waiting<I>[]): { write?: GroupWrite<A>; consumed: Waiting<I>[]; failed: Waiting<I>[] } {
    const now = this.context.scheduler.now();
    const folded: Waiting<I>[] = [];
    /** Folded, or the same input (id) as one folded: settled together once the write is durable. */
    const consumed: Waiting<I>[] = [];
    const failed: Waiting<I>[] = [];
    const ids = new Set(current?.inputIds ?? []);
    let value = current?.value;
    let inputIds = [...(current?.inputIds ?? [])];
    let completedBy: string | undefined;
    for (const input of inputs) {
      const { message } = input.delivery;
      if (ids.has(message.id)) {
        // the same input twice in one batch (delivered again while its first copy waited) or already
        // in the group as read: folded once, acked with the write
        consumed.push(input);
        continue;
      }
      try {
        const next = this.config.strategy(value, message);
        const ids = [...inputIds, message.id];
        completedBy = this.config.completes(next, ids.length, message);
        value = next;
        inputIds = ids;
      } catch (error) {
        failed.push(input);
        this.step.fail(input.delivery, error, input.attempt, this.accept);
        continue;
      }
      folded.push(input);
      consumed.push(input);
      ids.add(message.id);
      if (completedBy !== undefined) break;
    }
    const first = folded[0]?.delivery.message;
    if (first === undefined) {
      // nothing new to write: only repeats of inputs already in the group (a store duplicate, in effect)
      for (const input of consumed) input.delivery.ack();
      return { consumed: [], failed };
    }
    const next = { key, value: value as A, inputIds, correlationId: current?.correlationId ?? first.headers.correlationId ?? first.id, firstAt: current?.firstAt ?? now, lastAt: now };
    const write = { key, inputIds: folded.map((input) => input.delivery.message.id), expectedVersion: current?.version ?? 0, next };
    return { write: completedBy === undefined ? write : { ...write, completion: this.completion(inputIds, completedBy) }, consumed, failed };
  }

  private storeFailed(inputs: readonly Waiting<I>[], key: string, cause: unknown): void {
    const error = new InterchangeError('AGGREGATE_STORE_FAILED', `aggregate: the repository failed on key '${key}'`, { cause });
    for (const input of inputs) this.step.fail(input.delivery, error, input.attempt, this.accept);
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
