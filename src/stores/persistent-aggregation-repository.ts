/**
 * Where an aggregator's groups live when they must outlive the process and be shared by several
 * instances (Camel's JdbcAggregationRepository, Spring Integration's JdbcMessageStore).
 *
 * The model:
 * - An **open group** is a key, the folded value, the ids of the inputs folded in, and a version.
 *   Every write names the version it read (`expectedVersion`, 0 = no group yet): a write against
 *   another version is a `conflict` and changes nothing (optimistic concurrency), so two instances
 *   never fold over each other or complete the same group twice.
 * - Every input id folded in is remembered (for `seenRetentionMs`, an implementation option): the same
 *   input again — a redelivery after a crash between the store's commit and the input's ack — is a
 *   `duplicate` and changes nothing. Inputs therefore need stable ids across redeliveries.
 * - A **completed aggregate** is kept until it is confirmed (published downstream): the completion
 *   moves the group to the completed set in the same atomic write, *claimed* by the completing
 *   instance for `leaseMs`. A claim that expires (its publisher crashed) or is released (its publish
 *   failed) is claimed again by `claimUnconfirmed`, which counts the attempts; the aggregator
 *   dead-letters an aggregate whose attempts exceed its budget.
 *
 * Values are stored as JSON: an aggregate value must survive `JSON.parse(JSON.stringify(value))`.
 *
 * Implementations: `InMemoryPersistentAggregationRepository` (here; the reference semantics, for tests
 * and single-process use), `PostgresAggregationRepository` (pg and PGlite, `interchange-eip/adapters/
 * postgres`), `RedisAggregationRepository` (`interchange-eip/adapters/redis`). All pass the same suite.
 */

import { randomInt } from 'node:crypto';

/** An open group as stored. */
export interface StoredGroup<A> {
  readonly key: string;
  readonly value: A;
  /** Ids of the inputs folded in, in the order they were folded (the aggregate's id derives from them). */
  readonly inputIds: readonly string[];
  /** The aggregate's correlation id: the first input's `correlationId`, else its id. */
  readonly correlationId: string;
  /** When the first input was folded in (epoch ms). */
  readonly firstAt: number;
  /** When the last input was folded in (epoch ms): inactivity timeouts count from here. */
  readonly lastAt: number;
  /**
   * Optimistic-concurrency version: +1 on every write; a new group starts at a random version in
   * [1, 2^30] (`randomInitialVersion`), so versions never repeat across a key's successive groups —
   * else a writer holding a stale view of a completed group (version v) would match the key's next
   * group at the same v and overwrite it (the ABA problem).
   */
  readonly version: number;
}

/** A completed aggregate not yet confirmed downstream. */
export interface CompletedAggregate<A> {
  /** The aggregate message's id (derived from `inputIds`; see `combineMessages`). */
  readonly id: string;
  readonly key: string;
  readonly value: A;
  readonly inputIds: readonly string[];
  readonly correlationId: string;
  readonly firstAt: number;
  readonly lastAt: number;
  /** Why it completed (`size`, `predicate`, `timeout`, `stop`, …). */
  readonly completedBy: string;
  readonly completedAt: number;
  /** How many times it has been claimed for publishing: 1 when the completion itself claims it. */
  readonly attempts: number;
}

/** How to complete a group: written atomically with the group's removal. */
export interface Completion {
  /** The aggregate message's id. */
  readonly id: string;
  readonly completedBy: string;
  /** The completing instance holds the claim this long (ms); after that `claimUnconfirmed` may take it. */
  readonly leaseMs: number;
}

/**
 * One or more inputs folded into their group in one atomic write: the aggregator folds every input
 * of a key that is waiting at once (up to the one that completes the group), so a busy key costs one
 * write per batch, not per input.
 */
export interface GroupWrite<A> {
  readonly key: string;
  /** The ids of the inputs this write folds in, in order (at least one, no repeats). */
  readonly inputIds: readonly string[];
  /** The version this write was computed from: the group's `version`, or 0 when there was no group. */
  readonly expectedVersion: number;
  /** The group after folding the inputs in (its `version` is the store's: expectedVersion + 1, or `randomInitialVersion()` for a new group). */
  readonly next: Omit<StoredGroup<A>, 'version'>;
  /** When given, the group completes with this input: it is removed and its aggregate stored as completed. */
  readonly completion?: Completion;
}

export type AddOutcome<A> =
  /** Stored: the open group as it now is. */
  | { readonly kind: 'added'; readonly group: StoredGroup<A> }
  /** The group completed with this input: the aggregate, claimed by the caller (attempts 1). */
  | { readonly kind: 'completed'; readonly aggregate: CompletedAggregate<A> }
  /** Some of the write's input ids were folded in before (within the retention), named here: nothing changed. Fold the others again without them. */
  | { readonly kind: 'duplicate'; readonly inputIds: readonly string[] }
  /** The group's version is not `expectedVersion`: nothing changed; read the group again and retry. */
  | { readonly kind: 'conflict' };

/**
 * The store SPI of a durable, shared aggregator. Every method is atomic on its own; none holds a lock
 * between calls. Among equal times (`lastAt`, `completedAt`) the order is the order of the writes.
 * Leases compare the callers' clocks: instances need synchronised clocks (NTP), and a publish must
 * settle well within `leaseMs`, or another instance publishes the aggregate too (a duplicate, never a
 * loss). Errors are the store's own (connection lost…): the aggregator treats them as
 * transient and rejects the input for redelivery.
 */
export interface PersistentAggregationRepository<A> {
  /** The open group of `key`, or undefined. */
  get(key: string): Promise<StoredGroup<A> | undefined>;
  /** Folds inputs in (see `GroupWrite`): duplicates, then conflict, are checked first, in that order; either changes nothing. */
  add(write: GroupWrite<A>): Promise<AddOutcome<A>>;
  /**
   * Completes an open group without a new input (inactivity timeout, stop, a sweep after a restart):
   * the aggregate, claimed by the caller (attempts 1), or undefined when the group is gone or its
   * version is not `expectedVersion` (another instance got there first).
   */
  complete(key: string, expectedVersion: number, completion: Completion): Promise<CompletedAggregate<A> | undefined>;
  /** The aggregate was settled downstream (published, or dead-lettered): forget it. Idempotent. */
  confirm(id: string): Promise<void>;
  /** Its publish failed: give up the claim at once, so `claimUnconfirmed` can take it again. Idempotent. */
  release(id: string): Promise<void>;
  /** Open groups whose `lastAt` is at or before `before` (epoch ms), oldest first, at most `limit`. */
  expired(before: number, limit: number): Promise<StoredGroup<A>[]>;
  /**
   * Claims up to `limit` completed aggregates whose claim has expired or was released, oldest first:
   * each one's `attempts` is incremented and it is claimed by the caller for `leaseMs`. Two callers
   * never claim the same aggregate at once.
   */
  claimUnconfirmed(leaseMs: number, limit: number): Promise<CompletedAggregate<A>[]>;
  /** Open groups and unconfirmed aggregates, for metrics and tests. */
  counts(): Promise<{ readonly open: number; readonly completed: number }>;
  /** Releases the store's connections, if it owns them. Idempotent. */
  close?(): Promise<void>;
}

/** The completed aggregate a completion of `group` stores: completed at `now`, claimed by the completer (attempts 1). */
export function completedAggregateOf<A>(group: Omit<StoredGroup<A>, 'version'>, completion: Completion, now: number): CompletedAggregate<A> {
  const { key, value, inputIds, correlationId, firstAt, lastAt } = group;
  return { id: completion.id, key, value, inputIds, correlationId, firstAt, lastAt, completedBy: completion.completedBy, completedAt: now, attempts: 1 };
}

/** The version of a new group: random in [1, 2^30], so a key's successive groups never share a version (see `StoredGroup.version`). */
export function randomInitialVersion(): number {
  return randomInt(1, 2 ** 30 + 1);
}

/** Whether a repository is a `PersistentAggregationRepository` (async, versioned) rather than the in-process one. */
export function isPersistentAggregationRepository(repository: unknown): repository is PersistentAggregationRepository<unknown> {
  if (typeof repository !== 'object' || repository === null) return false;
  const candidate = repository as Partial<Record<keyof PersistentAggregationRepository<unknown>, unknown>>;
  return typeof candidate.add === 'function' && typeof candidate.claimUnconfirmed === 'function' && typeof candidate.expired === 'function';
}

export interface InMemoryPersistentAggregationRepositoryOptions {
  /** How long folded input ids are remembered (default 24 h). */
  readonly seenRetentionMs?: number;
  /** The clock (default `Date.now`); tests pass the scheduler's. */
  readonly now?: () => number;
}

interface CompletedEntry<A> {
  aggregate: CompletedAggregate<A>;
  claimedUntil: number;
}

/**
 * The reference implementation, in process memory: the semantics every durable store must match
 * (the shared suite runs against it too). Survives nothing; values are copied through JSON so that a
 * value that would not survive a real store fails here as well.
 */
export class InMemoryPersistentAggregationRepository<A> implements PersistentAggregationRepository<A> {
  private readonly groups = new Map<string, StoredGroup<A>>();
  private readonly completed = new Map<string, CompletedEntry<A>>();
  private readonly seen = new Map<string, number>();
  private readonly retentionMs: number;
  private readonly now: () => number;

  constructor({ seenRetentionMs = 24 * 60 * 60 * 1000, now = Date.now }: InMemoryPersistentAggregationRepositoryOptions = {}) {
    this.retentionMs = seenRetentionMs;
    this.now = now;
  }

  get(key: string): Promise<StoredGroup<A> | undefined> {
    const group = this.groups.get(key);
    // a copy, as a real store reads one: a strategy that changes `previous` in place must not change the store
    return Promise.resolve(group === undefined ? undefined : copied(group));
  }

  add(write: GroupWrite<A>): Promise<AddOutcome<A>> {
    const now = this.now();
    this.forgetSeenBefore(now - this.retentionMs);
    const seenKey = (inputId: string): string => `${write.key}\0${inputId}`;
    const seen = write.inputIds.filter((inputId) => this.seen.has(seenKey(inputId)));
    if (seen.length > 0) return Promise.resolve({ kind: 'duplicate', inputIds: seen });
    const current = this.groups.get(write.key);
    if ((current?.version ?? 0) !== write.expectedVersion) return Promise.resolve({ kind: 'conflict' });
    for (const inputId of write.inputIds) this.seen.set(seenKey(inputId), now);
    const group: StoredGroup<A> = { ...copied(write.next), key: write.key, version: write.expectedVersion === 0 ? randomInitialVersion() : write.expectedVersion + 1 };
    if (write.completion === undefined) {
      this.groups.set(write.key, group);
      return Promise.resolve({ kind: 'added', group });
    }
    this.groups.delete(write.key);
    return Promise.resolve({ kind: 'completed', aggregate: this.store(group, write.completion, now) });
  }

  complete(key: string, expectedVersion: number, completion: Completion): Promise<CompletedAggregate<A> | undefined> {
    const group = this.groups.get(key);
    if (group === undefined || group.version !== expectedVersion) return Promise.resolve(undefined);
    this.groups.delete(key);
    return Promise.resolve(this.store(group, completion, this.now()));
  }

  confirm(id: string): Promise<void> {
    this.completed.delete(id);
    return Promise.resolve();
  }

  release(id: string): Promise<void> {
    const entry = this.completed.get(id);
    if (entry !== undefined) entry.claimedUntil = 0;
    return Promise.resolve();
  }

  expired(before: number, limit: number): Promise<StoredGroup<A>[]> {
    const groups = [...this.groups.values()].filter((group) => group.lastAt <= before).sort((a, b) => a.lastAt - b.lastAt);
    return Promise.resolve(groups.slice(0, limit).map(copied));
  }

  claimUnconfirmed(leaseMs: number, limit: number): Promise<CompletedAggregate<A>[]> {
    const now = this.now();
    const claimable = [...this.completed.values()].filter((entry) => entry.claimedUntil <= now).sort((a, b) => a.aggregate.completedAt - b.aggregate.completedAt);
    const claimed: CompletedAggregate<A>[] = [];
    for (const entry of claimable.slice(0, limit)) {
      entry.aggregate = { ...entry.aggregate, attempts: entry.aggregate.attempts + 1 };
      entry.claimedUntil = now + leaseMs;
      claimed.push(copied(entry.aggregate));
    }
    return Promise.resolve(claimed);
  }

  counts(): Promise<{ open: number; completed: number }> {
    return Promise.resolve({ open: this.groups.size, completed: this.completed.size });
  }

  private store(group: StoredGroup<A>, completion: Completion, now: number): CompletedAggregate<A> {
    const aggregate = completedAggregateOf(group, completion, now);
    this.completed.set(aggregate.id, { aggregate, claimedUntil: now + completion.leaseMs });
    return aggregate;
  }

  private forgetSeenBefore(cutoff: number): void {
    for (const [key, at] of this.seen) {
      if (at > cutoff) break; // insertion order is time order
      this.seen.delete(key);
    }
  }
}

function copied<T>(value: T): T {
  return JSON.parse(JSON.stringify(value)) as T;
}
