import type { Redis } from 'ioredis';
import { InvalidOptionsError } from '../../src/core/index.ts';
import {
  randomInitialVersion,
  type AddOutcome,
  type CompletedAggregate,
  type Completion,
  type GroupWrite,
  type PersistentAggregationRepository,
  type StoredGroup,
} from '../../src/stores/persistent-aggregation-repository.ts';
import { LuaScript } from './lua-script.ts';

export interface RedisAggregationRepositoryOptions {
  /**
   * The repository's namespace (required; one per aggregator): its keys are
   * `interchange:aggregation:{<name>}:…`, the hash tag keeping them in one Redis Cluster slot.
   */
  readonly name: string;
  /** How long folded input ids are remembered, by the clock below (default 24 h). */
  readonly seenRetentionMs?: number;
  /** The clock (default `Date.now`); tests pass the scheduler's. Redis's own clock is never used. */
  readonly now?: () => number;
}

// The keys, in the order every script receives them as KEYS[1..10].
const KEY_NAMES = [
  'groups', //     1 hash: group key -> StoredGroup JSON
  'versions', //   2 hash: group key -> version
  'open', //       3 zset: group key, scored by lastAt
  'openseq', //    4 hash: group key -> creation sequence (breaks lastAt ties, as insertion order does in memory)
  'seen', //       5 zset: `key\0inputId`, scored by when it was folded in
  'completed', //  6 hash: aggregate id -> `[{id, completedBy, completedAt}, StoredGroup]` JSON
  'attempts', //   7 hash: aggregate id -> attempts
  'claims', //     8 zset: aggregate id, scored by claimedUntil (0 once released)
  'corder', //     9 hash: aggregate id -> `completedAt:sequence` (claim order)
  'seq', //       10 counter of the sequences
] as const;

// Shared by the scripts that remove a group and store its aggregate. User JSON is never decoded in Lua:
// versions, scores and order live beside it, so a value comes back byte for byte as it was written.
const LIBRARY = `
local function remove_group(key)
  redis.call('HDEL', KEYS[1], key)
  redis.call('HDEL', KEYS[2], key)
  redis.call('ZREM', KEYS[3], key)
  redis.call('HDEL', KEYS[4], key)
end
local function store_completed(id, meta, group, completedAt, claimedUntil)
  local previous = redis.call('HGET', KEYS[9], id)
  local seq = previous and string.match(previous, ':(%d+)$') or redis.call('INCR', KEYS[10])
  redis.call('HSET', KEYS[9], id, completedAt .. ':' .. seq)
  redis.call('HSET', KEYS[6], id, '[' .. meta .. ',' .. group .. ']')
  redis.call('HSET', KEYS[7], id, 1)
  redis.call('ZADD', KEYS[8], claimedUntil, id)
end
`;

// ARGV: key, now, seen cutoff, expected version, group JSON, lastAt, 'add'|'complete', id, meta JSON,
// claimedUntil, initial version (a new group's, drawn in TypeScript: Lua's math.random is seeded the
// same on every script run), then the seen members (`key\0inputId`) of the write's inputs, in order,
// from ARGV[12].
// Returns 'conflict', 'added' or 'completed', or { 'duplicate', <1-based positions of the seen inputs>… }.
const ADD = `${LIBRARY}
redis.call('ZREMRANGEBYSCORE', KEYS[5], '-inf', ARGV[3])
local duplicates = { 'duplicate' }
for i = 12, #ARGV do
  if redis.call('ZSCORE', KEYS[5], ARGV[i]) then duplicates[#duplicates + 1] = i - 11 end
end
if #duplicates > 1 then return duplicates end
local version = tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '0')
if version ~= tonumber(ARGV[4]) then return 'conflict' end
for i = 12, #ARGV do redis.call('ZADD', KEYS[5], ARGV[2], ARGV[i]) end
if ARGV[7] == 'add' then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[5])
  redis.call('HSET', KEYS[2], ARGV[1], version == 0 and ARGV[11] or version + 1)
  redis.call('ZADD', KEYS[3], ARGV[6], ARGV[1])
  if version == 0 then redis.call('HSET', KEYS[4], ARGV[1], redis.call('INCR', KEYS[10])) end
  return 'added'
end
remove_group(ARGV[1])
store_completed(ARGV[8], ARGV[9], ARGV[5], ARGV[2], ARGV[10])
return 'completed'
`;

// ARGV: key, expected version, id, meta JSON, now, claimedUntil. Returns the group JSON, or nil.
const COMPLETE = `${LIBRARY}
local version = redis.call('HGET', KEYS[2], ARGV[1])
if not version or tonumber(version) ~= tonumber(ARGV[2]) then return false end
local group = redis.call('HGET', KEYS[1], ARGV[1])
remove_group(ARGV[1])
store_completed(ARGV[3], ARGV[4], group, ARGV[5], ARGV[6])
return group
`;

// ARGV: id
const CONFIRM = `
redis.call('HDEL', KEYS[6], ARGV[1])
redis.call('HDEL', KEYS[7], ARGV[1])
redis.call('ZREM', KEYS[8], ARGV[1])
redis.call('HDEL', KEYS[9], ARGV[1])
return 0
`;

// ARGV: id. Only an aggregate still unconfirmed is touched (XX): a confirmed one stays forgotten.
const RELEASE = `return redis.call('ZADD', KEYS[8], 'XX', 0, ARGV[1])`;

// Sorts entries {at, seq} oldest first and keeps at most `limit` (negative: all).
const OLDEST_FIRST = `
local function oldest_first(entries, limit)
  table.sort(entries, function(a, b)
    if a.at ~= b.at then return a.at < b.at end
    return a.seq < b.seq
  end)
  local kept = {}
  for i, entry in ipairs(entries) do
    if limit >= 0 and i > limit then break end
    kept[i] = entry
  end
  return kept
end
`;

// ARGV: now, claimedUntil, limit (negative: all). Returns [record JSON, attempts, …], oldest first.
// Reads every claimable aggregate to order them: those are the crashed or failed publishes only.
const CLAIM = `${OLDEST_FIRST}
local limit = tonumber(ARGV[3])
if limit == 0 then return {} end
local ids = redis.call('ZRANGEBYSCORE', KEYS[8], '-inf', ARGV[1])
if #ids == 0 then return {} end
local entries = {}
for i, id in ipairs(ids) do
  local at, seq = string.match(redis.call('HGET', KEYS[9], id), '^(.*):(%d+)$')
  entries[i] = { id = id, at = tonumber(at), seq = tonumber(seq) }
end
local claimed = {}
for _, entry in ipairs(oldest_first(entries, limit)) do
  local attempts = redis.call('HINCRBY', KEYS[7], entry.id, 1)
  redis.call('ZADD', KEYS[8], ARGV[2], entry.id)
  claimed[#claimed + 1] = redis.call('HGET', KEYS[6], entry.id)
  claimed[#claimed + 1] = attempts
end
return claimed
`;

// ARGV: before, limit (negative: all). Returns group JSONs, oldest lastAt first, ties in creation order:
// the groups tied on the last score the LIMIT reached are all read, so none is cut off arbitrarily.
const EXPIRED = `${OLDEST_FIRST}
local limit = tonumber(ARGV[2])
if limit == 0 then return {} end
local items = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', ARGV[1], 'WITHSCORES', 'LIMIT', 0, limit)
if #items == 0 then return {} end
local last = items[#items]
local boundary = limit > 0 and #items / 2 == limit
local keys = {}
local scores = {}
for i = 1, #items, 2 do
  if not boundary or items[i + 1] ~= last then
    keys[#keys + 1] = items[i]
    scores[#scores + 1] = items[i + 1]
  end
end
if boundary then
  for _, key in ipairs(redis.call('ZRANGEBYSCORE', KEYS[3], last, last)) do
    keys[#keys + 1] = key
    scores[#scores + 1] = last
  end
end
local entries = {}
for i, key in ipairs(keys) do
  entries[i] = { key = key, at = tonumber(scores[i]), seq = tonumber(redis.call('HGET', KEYS[4], key)) or 0 }
end
local groups = {}
for i, entry in ipairs(oldest_first(entries, limit)) do groups[i] = redis.call('HGET', KEYS[1], entry.key) end
return groups
`;

const COUNTS = `return { redis.call('HLEN', KEYS[1]), redis.call('HLEN', KEYS[6]) }`;

const scripts = {
  add: new LuaScript(ADD),
  complete: new LuaScript(COMPLETE),
  confirm: new LuaScript(CONFIRM),
  release: new LuaScript(RELEASE),
  claim: new LuaScript(CLAIM),
  expired: new LuaScript(EXPIRED),
  counts: new LuaScript(COUNTS),
};

interface CompletionMeta {
  readonly id: string;
  readonly completedBy: string;
  readonly completedAt: number;
}

/**
 * The durable, shared aggregation repository in Redis (ioredis), with the semantics of
 * `InMemoryPersistentAggregationRepository`: every method is one Lua script, so it is atomic against
 * every other instance on the same `name` — a version check and its write, a completion and the
 * group's removal, a claim and its attempt count happen together, and two `claimUnconfirmed` callers
 * never get the same aggregate. Time comes from `now` (passed to the scripts, never Redis's clock), so
 * the seen-id memory is a sorted set by time pruned on each `add`, not key TTLs; an `add` checks and
 * records every input id of its batch in the same script. A new group's version is drawn here
 * (`randomInitialVersion`) and passed to the script, never by Lua's `math.random` (seeded the same on
 * every run). Values are stored as JSON and never decoded inside Redis. Redis errors (connection
 * lost…) reject the call unchanged.
 * The connection is the caller's: `close()` does not quit it.
 * @example new RedisAggregationRepository<Summary>(new Redis(process.env.REDIS_URL), { name: 'device-summaries' })
 */
export class RedisAggregationRepository<A> implements PersistentAggregationRepository<A> {
  private readonly keys: readonly string[];
  private readonly groupsKey: string;
  private readonly retentionMs: number;
  private readonly now: () => number;

  /** @throws InvalidOptionsError when `name` is empty or `seenRetentionMs` is negative or not a number. */
  constructor(
    private readonly redis: Redis,
    { name, seenRetentionMs = 24 * 60 * 60 * 1000, now = Date.now }: RedisAggregationRepositoryOptions,
  ) {
    if (typeof name !== 'string' || name === '') throw new InvalidOptionsError('RedisAggregationRepository needs a non-empty name');
    if (typeof seenRetentionMs !== 'number' || Number.isNaN(seenRetentionMs) || seenRetentionMs < 0) {
      throw new InvalidOptionsError(`RedisAggregationRepository: seenRetentionMs must be a number ≥ 0, got ${String(seenRetentionMs)}`);
    }
    const prefix = `interchange:aggregation:{${name}}:`;
    this.keys = KEY_NAMES.map((key) => prefix + key);
    this.groupsKey = `${prefix}groups`;
    this.retentionMs = seenRetentionMs;
    this.now = now;
  }

  /** Every Redis key this repository writes (for cleanup and inspection). */
  get redisKeys(): readonly string[] {
    return this.keys;
  }

  async get(key: string): Promise<StoredGroup<A> | undefined> {
    const json = await this.redis.hget(this.groupsKey, key);
    return json === null ? undefined : (JSON.parse(json) as StoredGroup<A>);
  }

  async add(write: GroupWrite<A>): Promise<AddOutcome<A>> {
    const { inputIds, completion } = write;
    const now = this.now();
    const initialVersion = randomInitialVersion();
    const version = write.expectedVersion === 0 ? initialVersion : write.expectedVersion + 1;
    const groupJson = JSON.stringify({ ...write.next, key: write.key, version });
    const meta = completion === undefined ? '' : JSON.stringify(metaOf(completion, now));
    const outcome = await scripts.add.run(this.redis, this.keys, [
      write.key,
      score(now),
      score(now - this.retentionMs),
      write.expectedVersion,
      groupJson,
      score(write.next.lastAt),
      completion === undefined ? 'add' : 'complete',
      completion?.id ?? '',
      meta,
      score(now + (completion?.leaseMs ?? 0)),
      initialVersion,
      ...inputIds.map((inputId) => `${write.key}\0${inputId}`),
    ]);
    if (Array.isArray(outcome) && outcome[0] === 'duplicate') {
      return { kind: 'duplicate', inputIds: outcome.slice(1).map((position) => inputIds[Number(position) - 1] as string) };
    }
    switch (outcome) {
      case 'conflict':
        return { kind: 'conflict' };
      case 'added':
        return { kind: 'added', group: JSON.parse(groupJson) as StoredGroup<A> };
      case 'completed':
        return { kind: 'completed', aggregate: aggregateOf(`[${meta},${groupJson}]`, 1) };
      default:
        throw new Error(`RedisAggregationRepository: unexpected reply from the add script: ${JSON.stringify(outcome)}`);
    }
  }

  async complete(key: string, expectedVersion: number, completion: Completion): Promise<CompletedAggregate<A> | undefined> {
    const now = this.now();
    const meta = JSON.stringify(metaOf(completion, now));
    const group = await scripts.complete.run(this.redis, this.keys, [key, expectedVersion, completion.id, meta, score(now), score(now + completion.leaseMs)]);
    return typeof group === 'string' ? aggregateOf(`[${meta},${group}]`, 1) : undefined;
  }

  async confirm(id: string): Promise<void> {
    await scripts.confirm.run(this.redis, this.keys, [id]);
  }

  async release(id: string): Promise<void> {
    await scripts.release.run(this.redis, this.keys, [id]);
  }

  async expired(before: number, limit: number): Promise<StoredGroup<A>[]> {
    const groups = (await scripts.expired.run(this.redis, this.keys, [score(before), count(limit)])) as string[];
    return groups.map((json) => JSON.parse(json) as StoredGroup<A>);
  }

  async claimUnconfirmed(leaseMs: number, limit: number): Promise<CompletedAggregate<A>[]> {
    const now = this.now();
    const reply = (await scripts.claim.run(this.redis, this.keys, [score(now), score(now + leaseMs), count(limit)])) as (string | number)[];
    const claimed: CompletedAggregate<A>[] = [];
    for (let index = 0; index < reply.length; index += 2) claimed.push(aggregateOf(String(reply[index]), Number(reply[index + 1])));
    return claimed;
  }

  async counts(): Promise<{ readonly open: number; readonly completed: number }> {
    const [open, completed] = (await scripts.counts.run(this.redis, this.keys, [])) as [number, number];
    return { open, completed };
  }

  /** Nothing to release: the connection is the caller's, who quits it. Idempotent. */
  close(): Promise<void> {
    return Promise.resolve();
  }
}

function metaOf(completion: Completion, now: number): CompletionMeta {
  return { id: completion.id, completedBy: completion.completedBy, completedAt: now };
}

function aggregateOf<A>(record: string, attempts: number): CompletedAggregate<A> {
  const [meta, group] = JSON.parse(record) as [CompletionMeta, StoredGroup<A>];
  return {
    id: meta.id,
    key: group.key,
    value: group.value,
    inputIds: group.inputIds,
    correlationId: group.correlationId,
    firstAt: group.firstAt,
    lastAt: group.lastAt,
    completedBy: meta.completedBy,
    completedAt: meta.completedAt,
    attempts,
  };
}

/** A number as a sorted-set score (`+inf`/`-inf` for the infinities, which `String` spells otherwise). */
function score(value: number): string {
  if (Number.isFinite(value)) return String(value);
  if (Number.isNaN(value)) throw new RangeError('RedisAggregationRepository: a time or lease is NaN');
  return value > 0 ? '+inf' : '-inf';
}

/** A limit for the scripts: a whole number ≥ 0, or -1 for no limit. */
function count(limit: number): number {
  if (limit === Number.POSITIVE_INFINITY) return -1;
  return Number.isFinite(limit) ? Math.max(0, Math.floor(limit)) : 0;
}
