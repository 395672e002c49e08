import { CapacityError, InterchangeError } from '../core/errors.ts';

/** DI token of the route's claim check store (shares its name with the interface). */
export const ClaimCheckStore: unique symbol = Symbol.for('interchange.ClaimCheckStore');

/** How long a claim is kept: without `ttlMs` it is kept until it is removed. */
export interface ClaimPutOptions {
  /** The claim expires this long after the write, by the store's clock (Redis: `PX`). */
  readonly ttlMs?: number;
}

/**
 * Where the claim check pattern keeps the bodies it takes out of messages (Camel's
 * `ClaimCheckRepository`, Spring's `MessageStore` behind `ClaimCheckIn`/`ClaimCheckOut`). Implemented
 * in memory (`MemoryClaimCheckStore`), on the filesystem (`FileClaimCheckStore`), in PostgreSQL
 * (`PostgresClaimCheckStore`) and in Redis (`RedisClaimCheckStore`), all checked by one contract suite.
 *
 * Contract:
 * - Claim ids are made by Interchange (`isClaimId`: a lowercase UUID shape), never taken from a
 *   message as they are; a store refuses any other id with `InvalidClaimIdError` (a file name, a key).
 * - `put` resolves once the data is durable for that store (written and renamed, committed, acknowledged
 *   by Redis); putting an id again replaces its data and its expiry.
 * - `get` returns the bytes as they were put, or `undefined` when the claim is missing or expired —
 *   an expired claim is never returned, even before a sweep removed it.
 * - `remove` is idempotent: removing a missing claim is no error.
 * - `sweep` deletes the expired claims and returns how many it deleted (Redis expires keys itself: 0).
 */
export interface ClaimCheckStore {
  put(id: string, data: Uint8Array, options?: ClaimPutOptions): Promise<void>;
  get(id: string): Promise<Uint8Array | undefined>;
  remove(id: string): Promise<void>;
  sweep(): Promise<number>;
}

/** A claim id that is not one Interchange made (a forged or damaged ticket): permanent, never retried. */
export class InvalidClaimIdError extends InterchangeError {
  override readonly name = 'InvalidClaimIdError';
  constructor(readonly id: unknown) {
    super('CLAIM_ID_INVALID', `not a claim id: ${JSON.stringify(String(id)).slice(0, 80)}`, { permanent: true });
  }
}

const CLAIM_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** Whether `id` has the shape of a claim id Interchange makes (a lowercase UUID shape: safe as a file name and a key). */
export function isClaimId(id: unknown): id is string {
  return typeof id === 'string' && CLAIM_ID.test(id);
}

/** Throws `InvalidClaimIdError` unless `id` is a claim id (`isClaimId`). */
export function assertClaimId(id: unknown): asserts id is string {
  if (!isClaimId(id)) throw new InvalidClaimIdError(id);
}

export interface MemoryClaimCheckStoreOptions {
  /**
   * Most claims held at once (default 100,000). A `put` of a new claim beyond it, expired claims swept
   * first, fails with `CapacityError` (retryable): a claim is never dropped to make room.
   */
  readonly maxEntries?: number;
  /** The clock (epoch ms, default `Date.now`); tests pass the scheduler's. */
  readonly now?: () => number;
}

interface Entry {
  readonly data: Uint8Array;
  readonly expiresAt: number;
}

/**
 * In-process claim check store: the default where no store is bound, for one process only (tests,
 * single-instance services): a claim checked in here cannot be checked out by another process, and
 * does not survive a restart. Keeps a copy of the bytes, so the caller may reuse its buffer.
 * @example from('memory:orders').claimCheckIn({ store: new MemoryClaimCheckStore({ maxEntries: 10_000 }) })
 */
export class MemoryClaimCheckStore implements ClaimCheckStore {
  private readonly entries = new Map<string, Entry>();
  private readonly maxEntries: number;
  private readonly now: () => number;

  constructor({ maxEntries = 100_000, now = Date.now }: MemoryClaimCheckStoreOptions = {}) {
    this.maxEntries = maxEntries;
    this.now = now;
  }

  /** Claims held, expired ones not swept yet included. */
  get size(): number {
    return this.entries.size;
  }

  put(id: string, data: Uint8Array, { ttlMs }: ClaimPutOptions = {}): Promise<void> {
    return attempt(() => {
      assertClaimId(id);
      if (!this.entries.has(id) && this.entries.size >= this.maxEntries) {
        this.sweepNow();
        if (this.entries.size >= this.maxEntries) throw new CapacityError(`claim check store full (${this.maxEntries} claims): claim ${id} not stored`);
      }
      this.entries.set(id, { data: Uint8Array.from(data), expiresAt: ttlMs === undefined ? Number.POSITIVE_INFINITY : this.now() + ttlMs });
    });
  }

  get(id: string): Promise<Uint8Array | undefined> {
    return attempt(() => {
      assertClaimId(id);
      const entry = this.entries.get(id);
      return entry === undefined || entry.expiresAt <= this.now() ? undefined : Uint8Array.from(entry.data);
    });
  }

  remove(id: string): Promise<void> {
    return attempt(() => {
      assertClaimId(id);
      this.entries.delete(id);
    });
  }

  sweep(): Promise<number> {
    return Promise.resolve(this.sweepNow());
  }

  private sweepNow(): number {
    const now = this.now();
    let swept = 0;
    for (const [id, entry] of this.entries) {
      if (entry.expiresAt > now) continue;
      this.entries.delete(id);
      swept += 1;
    }
    return swept;
  }
}

/** `work`'s result as a promise, a throw as a rejection (the store's contract is promises only). */
function attempt<R>(work: () => R): Promise<R> {
  try {
    return Promise.resolve(work());
  } catch (error) {
    return Promise.reject(error instanceof Error ? error : new Error(String(error)));
  }
}
