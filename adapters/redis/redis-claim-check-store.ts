import type { Redis } from 'ioredis';
import { assertClaimId, type ClaimCheckStore, type ClaimPutOptions } from '../../src/stores/claim-check-store.ts';

export interface RedisClaimCheckStoreOptions {
  /** Key prefix (default `interchange:claim-check:`); one key per claim, `<prefix><claim id>`. */
  readonly prefix?: string;
}

/**
 * Claim check store in Redis (ioredis), shared by every instance of a route: one string key per claim
 * holding the bytes, written with `SET` (and `PX <ttlMs>` when the claim expires), so Redis expires
 * claims itself and `sweep` has nothing to do. Durability is Redis's (AOF/RDB settings): a claim
 * acknowledged by a Redis without persistence is lost with it. The connection is the caller's: the
 * store never closes it.
 * @example from('amqp:queue/scans').claimCheckIn({ store: new RedisClaimCheckStore(new Redis(process.env.REDIS_URL), { prefix: 'scans:claims:' }), ttlMs: 3_600_000 })
 */
export class RedisClaimCheckStore implements ClaimCheckStore {
  private readonly prefix: string;

  constructor(
    private readonly redis: Redis,
    { prefix = 'interchange:claim-check:' }: RedisClaimCheckStoreOptions = {},
  ) {
    this.prefix = prefix;
  }

  async put(id: string, data: Uint8Array, { ttlMs }: ClaimPutOptions = {}): Promise<void> {
    assertClaimId(id);
    const value = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    if (ttlMs === undefined) await this.redis.set(this.prefix + id, value);
    else await this.redis.set(this.prefix + id, value, 'PX', Math.max(1, Math.ceil(ttlMs)));
  }

  async get(id: string): Promise<Uint8Array | undefined> {
    assertClaimId(id);
    const value = await this.redis.getBuffer(this.prefix + id);
    return value === null ? undefined : new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
  }

  async remove(id: string): Promise<void> {
    assertClaimId(id);
    await this.redis.del(this.prefix + id);
  }

  /** Redis expires claims itself (`PX`): nothing to sweep. */
  sweep(): Promise<number> {
    return Promise.resolve(0);
  }
}
