
/** DI token of the route's idempotency store (shares its name with the interface). */
export const IdempotencyStore: unique symbol = Symbol.for('interchange.IdempotencyStore');

/** What `claim` found: the caller processes the message (`claimed`), or it was already processed, or someone is processing it now. */
export type ClaimResult = 'claimed' | 'duplicate' | 'in-progress';

/**
 * Remembers which messages were processed (Camel's IdempotentRepository). Implemented in memory
 * (`MemoryIdempotencyStore`), in Redis (`RedisIdempotencyStore`) and in PostgreSQL (`PostgresInbox`),
 * and checked by one shared test suite.
 *
 * Contract:
 * - `claim(key)` is atomic: of concurrent claims of one key, one gets `claimed`. A claim is a lease:
 *   if neither `confirm` nor `release` follows within the store's lease (the process died), the key
 *   can be claimed again.
 * - `confirm(key)` records the key as processed: later claims get `duplicate` (for the store's retention).
 * - `release(key)` forgets a claim that did not complete (processing failed): the key can be claimed
 *   again at once. A confirmed key is not released.
 */
export interface IdempotencyStore {
  claim(key: string): Promise<ClaimResult>;
  confirm(key: string): Promise<void>;
  release(key: string): Promise<void>;
}

export interface MemoryIdempotencyStoreOptions {
  /** How long a claim holds without confirm or release (default 30,000 ms). */
  readonly leaseMs?: number;
  /** How long a processed key is remembered (default 24 h). */
  readonly retentionMs?: number;
  /** Most keys remembered; the oldest are forgotten first (default 100,000). */
  readonly maxEntries?: number;
  readonly now?: () => number;
}

/**
 * In-process idempotency store: for one process only (tests, single-instance services). Forgets
 * keys after `retentionMs` or beyond `maxEntries`, oldest first.
 * @example from('amqp:queue/payments').step('idempotent', idempotentConsumer({ store: new MemoryIdempotencyStore() }))
 */
export class MemoryIdempotencyStore implements IdempotencyStore {
  private readonly entries = new Map<string, { done: boolean; until: number }>();
  private readonly leaseMs: number;
  private readonly retentionMs: number;
  private readonly maxEntries: number;
  private readonly now: () => number;

  constructor({ leaseMs = 30_000, retentionMs = 86_400_000, maxEntries = 100_000, now = Date.now }: MemoryIdempotencyStoreOptions = {}) {
    this.leaseMs = leaseMs;
    this.retentionMs = retentionMs;
    this.maxEntries = maxEntries;
    this.now = now;
  }

  get size(): number {
    return this.entries.size;
  }

  claim(key: string): Promise<ClaimResult> {
    const now = this.now();
    const entry = this.entries.get(key);
    if (entry !== undefined && entry.until > now) return Promise.resolve(entry.done ? 'duplicate' : 'in-progress');
    this.set(key, { done: false, until: now + this.leaseMs });
    return Promise.resolve('claimed');
  }

  confirm(key: string): Promise<void> {
    this.set(key, { done: true, until: this.now() + this.retentionMs });
    return Promise.resolve();
  }

  release(key: string): Promise<void> {
    if (this.entries.get(key)?.done === false) this.entries.delete(key);
    return Promise.resolve();
  }

  private set(key: string, entry: { done: boolean; until: number }): void {
    this.entries.delete(key); // re-inserted last: Map order is age order
    this.entries.set(key, entry);
    for (const oldest of this.entries.keys()) {
      if (this.entries.size <= this.maxEntries) break;
      this.entries.delete(oldest);
    }
  }
}
