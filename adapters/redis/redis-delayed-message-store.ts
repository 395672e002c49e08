import type { Redis } from 'ioredis';
import { InvalidOptionsError, type Message } from '../../src/core/index.ts';
import type { ClaimedDelayedMessage, DelayedMessage, DelayedMessageStore } from '../../src/stores/delayed-message-store.ts';
import { LuaScript } from './lua-script.ts';

export interface RedisDelayedMessageStoreOptions {
  /**
   * Prefix of every key (default `interchange:delay:`): a delayer's keys are
   * `<prefix>{<delayer key>}:available|messages|attempts`, the hash tag keeping them in one Redis Cluster slot.
   */
  readonly prefix?: string;
}

// Every script receives the delayer's keys as KEYS[1..3]:
//   1 zset: message id, scored by when it is next available (due time, claim end, retry time)
//   2 hash: message id -> `{"dueAt":…,"message":…}` JSON (never decoded in Lua)
//   3 hash: message id -> attempts

// ARGV: id, dueAt, record JSON. Returns 1 when stored, 0 when the id is already there.
const PUT = `
if redis.call('HSETNX', KEYS[2], ARGV[1], ARGV[3]) == 0 then return 0 end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('HSET', KEYS[3], ARGV[1], 0)
return 1
`;

// ARGV: now, claimed until, limit. Returns [record JSON, attempts, …], earliest first.
const CLAIM = `
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
local claimed = {}
for _, id in ipairs(ids) do
  claimed[#claimed + 1] = redis.call('HGET', KEYS[2], id)
  claimed[#claimed + 1] = redis.call('HINCRBY', KEYS[3], id, 1)
  redis.call('ZADD', KEYS[1], ARGV[2], id)
end
return claimed
`;

// ARGV: id
const REMOVE = `
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
return 0
`;

// ARGV: id, attempts, at. Only under that claim (a message claimed since, or gone, is left alone).
const RELEASE = `
if redis.call('HGET', KEYS[3], ARGV[1]) ~= ARGV[2] then return 0 end
return redis.call('ZADD', KEYS[1], 'XX', ARGV[3], ARGV[1])
`;

const scripts = { put: new LuaScript(PUT), claim: new LuaScript(CLAIM), remove: new LuaScript(REMOVE), release: new LuaScript(RELEASE) };

/**
 * The durable delayer's store in Redis (ioredis), with the semantics of `InMemoryDelayedMessageStore`:
 * per delayer key a sorted set of message ids by the time each is next available, beside the stored
 * messages and their attempt counts. `put`, `claimDue`, `remove` and `release` are Lua scripts, so a
 * claim (read the due ids, count an attempt, push each one's availability to the end of its lease) is
 * atomic: two claimers never get the same message. Times are the callers' (never Redis's clock).
 * Messages are stored as JSON and never decoded inside Redis. Redis errors reject the call unchanged.
 * The connection is the caller's: `close()` does not quit it.
 * @example from('memory:jobs').delay((m) => Number(m.headers.delayMs), { id: 'hold', store: new RedisDelayedMessageStore(new Redis(process.env.REDIS_URL)) }).to('memory:work')
 */
export class RedisDelayedMessageStore implements DelayedMessageStore {
  private readonly prefix: string;

  /** @throws InvalidOptionsError when `prefix` is not a string. */
  constructor(
    private readonly redis: Redis,
    { prefix = 'interchange:delay:' }: RedisDelayedMessageStoreOptions = {},
  ) {
    if (typeof prefix !== 'string') throw new InvalidOptionsError('RedisDelayedMessageStore: prefix must be a string');
    this.prefix = prefix;
  }

  /** The Redis keys of a delayer key (for cleanup and inspection). */
  redisKeys(key: string): readonly [available: string, messages: string, attempts: string] {
    const base = `${this.prefix}{${key}}:`;
    return [`${base}available`, `${base}messages`, `${base}attempts`];
  }

  async put({ key, message, dueAt }: DelayedMessage): Promise<boolean> {
    const stored = await scripts.put.run(this.redis, this.redisKeys(key), [message.id, score(dueAt), JSON.stringify({ dueAt, message })]);
    return stored === 1;
  }

  async claimDue(key: string, now: number, leaseMs: number, limit: number): Promise<ClaimedDelayedMessage[]> {
    if (!(limit >= 1)) return [];
    const reply = (await scripts.claim.run(this.redis, this.redisKeys(key), [score(now), score(now + leaseMs), Math.floor(limit)])) as (string | number)[];
    const claimed: ClaimedDelayedMessage[] = [];
    for (let index = 0; index < reply.length; index += 2) {
      const record = JSON.parse(String(reply[index])) as { dueAt: number; message: Message };
      claimed.push({ key, message: record.message, dueAt: record.dueAt, attempts: Number(reply[index + 1]) });
    }
    return claimed;
  }

  async nextAt(key: string): Promise<number | undefined> {
    const first = await this.redis.zrange(this.redisKeys(key)[0], '0', '0', 'WITHSCORES');
    return first[1] === undefined ? undefined : Number(first[1]);
  }

  async remove(key: string, id: string): Promise<void> {
    await scripts.remove.run(this.redis, this.redisKeys(key), [id]);
  }

  async release(key: string, id: string, attempts: number, at: number): Promise<void> {
    await scripts.release.run(this.redis, this.redisKeys(key), [id, String(attempts), score(at)]);
  }

  count(key: string): Promise<number> {
    return this.redis.zcard(this.redisKeys(key)[0]);
  }

  /** Nothing to release: the connection is the caller's, who quits it. Idempotent. */
  close(): Promise<void> {
    return Promise.resolve();
  }
}

/** A time as a sorted-set score (`+inf`/`-inf` for the infinities); NaN is refused. */
function score(value: number): string {
  if (Number.isFinite(value)) return String(value);
  if (Number.isNaN(value)) throw new RangeError('RedisDelayedMessageStore: a time is NaN');
  return value > 0 ? '+inf' : '-inf';
}
