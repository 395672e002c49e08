import type { Redis } from 'ioredis';
import type { ClaimResult, IdempotencyStore } from '../../src/stores/idempotency-store.ts';

export interface RedisIdempotencyStoreOptions {
  /** Key prefix (default `interchange:idempotency:`); give each consumer its own. */
  readonly prefix?: string;
  /** How long a claim holds without confirm or release (default 30,000 ms). */
  readonly leaseMs?: number;
  /** How long a processed key is remembered (default 7 days). */
  readonly retentionMs?: number;
}

const CLAIMED = 'claimed';
const DONE = 'done';

// Deletes the key only while it is an unconfirmed claim: a confirmed key is never released.
const RELEASE = `if redis.call('GET', KEYS[1]) == '${CLAIMED}' then return redis.call('DEL', KEYS[1]) end return 0`;

/**
 * Idempotency store in Redis (ioredis), shared by every instance of a route: one key per message,
 * `SET NX PX` for the claim (atomic), overwritten with a longer TTL on confirm, deleted on release
 * (a Lua script, so a confirmed key is never deleted). Keys expire by themselves (`retentionMs`).
 * The connection is the caller's: the store never closes it.
 * @example idempotentConsumer({ store: new RedisIdempotencyStore(new Redis(process.env.REDIS_URL), { prefix: 'payments:' }) })
 */
export class RedisIdempotencyStore implements IdempotencyStore {
  private readonly prefix: string;
  private readonly leaseMs: number;
  private readonly retentionMs: number;

  constructor(
    private readonly redis: Redis,
    { prefix = 'interchange:idempotency:', leaseMs = 30_000, retentionMs = 7 * 86_400_000 }: RedisIdempotencyStoreOptions = {},
  ) {
    this.prefix = prefix;
    this.leaseMs = leaseMs;
    this.retentionMs = retentionMs;
  }

  async claim(key: string): Promise<ClaimResult> {
    const name = this.prefix + key;
    for (;;) {
      if ((await this.redis.set(name, CLAIMED, 'PX', this.leaseMs, 'NX')) === 'OK') return 'claimed';
      const value = await this.redis.get(name);
      if (value === DONE) return 'duplicate';
      if (value === CLAIMED) return 'in-progress';
      // expired or released in between: claim again
    }
  }

  async confirm(key: string): Promise<void> {
    await this.redis.set(this.prefix + key, DONE, 'PX', this.retentionMs);
  }

  async release(key: string): Promise<void> {
    await this.redis.eval(RELEASE, 1, this.prefix + key);
  }
}
