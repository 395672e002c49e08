import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InvalidOptionsError } from '../../src/core/index.ts';
import {
  InMemoryPersistentAggregationRepository,
  type AddOutcome,
  type CompletedAggregate,
  type Completion,
  type GroupWrite,
  type PersistentAggregationRepository,
  type StoredGroup,
} from '../../src/stores/persistent-aggregation-repository.ts';
import { RedisAggregationRepository } from '../../adapters/redis/index.ts';
import { describeAggregationRepository, expectInitialVersion, versionOf, type Probe } from '../support/aggregation-repository-suite.ts';

// The Redis aggregation repository against the real Redis (127.0.0.1:6379): fails when Redis is down.
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const run = `it-agg-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
const connections: Redis[] = [];
const used: RedisAggregationRepository<unknown>[] = [];
let redis: Redis;

async function connect(): Promise<Redis> {
  const connection = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: () => null });
  await connection.connect().catch((error: unknown) => {
    throw new Error(`Redis is not reachable at ${REDIS_URL}: start it (redis-server --daemonize yes)`, { cause: error });
  });
  connections.push(connection);
  return connection;
}

let names = 0;
function uniqueName(): string {
  return `${run}-${(names += 1)}`;
}

/** A repository on its own connection (or `connection`), registered for cleanup. */
function repository<A>(name: string, options: { now?: () => number; seenRetentionMs?: number; connection?: Redis } = {}): RedisAggregationRepository<A> {
  const created = new RedisAggregationRepository<A>(options.connection ?? redis, { name, now: options.now, seenRetentionMs: options.seenRetentionMs });
  used.push(created as RedisAggregationRepository<unknown>);
  return created;
}

beforeAll(async () => {
  redis = await connect();
});
afterAll(async () => {
  const keys = [...new Set(used.flatMap((created) => created.redisKeys))];
  if (keys.length > 0) await redis.del(...keys);
  for (const connection of connections) connection.disconnect();
});

// The shared contract: every `open` is a new instance on its own connection, so two instances of one
// namespace race through Redis as two processes would; the crash child opens the same namespace.
describeAggregationRepository(
  'Redis',
  () =>
    Promise.resolve({
      open: async ({ namespace, now, seenRetentionMs }) => repository<Probe>(namespace, { connection: await connect(), now, seenRetentionMs }),
      child: { kind: 'redis', target: REDIS_URL },
      cleanup: () => Promise.resolve(), // the keys of every repository opened go in the afterAll above
    }),
  { crash: true, seenRetention: true },
);

/** A write of one input id, or of a batch when given an array. */
function write(key: string, ids: string | readonly string[], expectedVersion: number, at: number, extra: Partial<GroupWrite<number[]>> = {}): GroupWrite<number[]> {
  const inputIds = typeof ids === 'string' ? [ids] : ids;
  return { key, inputIds, expectedVersion, next: { key, value: [expectedVersion], inputIds, correlationId: key, firstAt: at, lastAt: at }, ...extra };
}

/**
 * A repository seen with relative versions: a group's first version reads 1 and counts up from there,
 * whatever version the store drew for it (new groups start at random), so two stores' answers compare
 * equal. Versions written are translated back to the store's: 0 stays 0, n is the current group's nth.
 */
class RelativeVersions<A> implements PersistentAggregationRepository<A> {
  /** The store's version of each key's current group's first write (every group is created through here). */
  private readonly bases = new Map<string, number>();

  constructor(private readonly inner: PersistentAggregationRepository<A>) {}

  async get(key: string): Promise<StoredGroup<A> | undefined> {
    const group = await this.inner.get(key);
    return group === undefined ? undefined : this.relative(group);
  }

  async add(write: GroupWrite<A>): Promise<AddOutcome<A>> {
    const outcome = await this.inner.add({ ...write, expectedVersion: this.actual(write.key, write.expectedVersion) });
    if (outcome.kind !== 'added') return outcome;
    if (write.expectedVersion === 0) this.bases.set(write.key, outcome.group.version);
    return { kind: 'added', group: this.relative(outcome.group) };
  }

  complete(key: string, expectedVersion: number, completion: Completion): Promise<CompletedAggregate<A> | undefined> {
    return this.inner.complete(key, this.actual(key, expectedVersion), completion);
  }

  confirm(id: string): Promise<void> {
    return this.inner.confirm(id);
  }

  release(id: string): Promise<void> {
    return this.inner.release(id);
  }

  async expired(before: number, limit: number): Promise<StoredGroup<A>[]> {
    return (await this.inner.expired(before, limit)).map((group) => this.relative(group));
  }

  claimUnconfirmed(leaseMs: number, limit: number): Promise<CompletedAggregate<A>[]> {
    return this.inner.claimUnconfirmed(leaseMs, limit);
  }

  counts(): Promise<{ readonly open: number; readonly completed: number }> {
    return this.inner.counts();
  }

  private relative(group: StoredGroup<A>): StoredGroup<A> {
    return { ...group, version: group.version - (this.bases.get(group.key) ?? group.version) + 1 };
  }

  private actual(key: string, version: number): number {
    const base = this.bases.get(key);
    return version === 0 || base === undefined ? version : base + version - 1;
  }
}

describe('RedisAggregationRepository', () => {
  it('keeps its keys under one hash tag and rejects bad options with InvalidOptionsError', () => {
    const repo = repository('orders');
    for (const key of repo.redisKeys) expect(key.startsWith('interchange:aggregation:{orders}:')).toBe(true);
    expect(() => new RedisAggregationRepository(redis, { name: '' })).toThrow(InvalidOptionsError);
    expect(() => new RedisAggregationRepository(redis, { name: 'x', seenRetentionMs: -1 })).toThrow(InvalidOptionsError);
  });

  it('checks duplicates before versions, folds, completes, claims, releases and confirms', async () => {
    let now = 1_000;
    const repo = repository<number[]>(uniqueName(), { now: () => now });
    const added = await repo.add(write('k', 'a', 0, now));
    const version = versionOf(added);
    expect(added).toEqual({ kind: 'added', group: { ...write('k', 'a', 0, now).next, version } });
    expect(await repo.add(write('k', 'a', 5, now))).toEqual({ kind: 'duplicate', inputIds: ['a'] });
    expect(await repo.add(write('k', ['b', 'a'], 5, now))).toEqual({ kind: 'duplicate', inputIds: ['a'] });
    expect(await repo.add(write('k', 'b', 0, now))).toEqual({ kind: 'conflict' });
    now = 2_000;
    const completing = await repo.add(write('k', 'b', version, now, { completion: { id: 'agg-1', completedBy: 'size', leaseMs: 500 } }));
    expect(completing).toEqual({
      kind: 'completed',
      aggregate: { id: 'agg-1', key: 'k', value: [version], inputIds: ['b'], correlationId: 'k', firstAt: 2_000, lastAt: 2_000, completedBy: 'size', completedAt: 2_000, attempts: 1 },
    });
    expect(await repo.get('k')).toBeUndefined();
    expect(await repo.counts()).toEqual({ open: 0, completed: 1 });
    expect(await repo.claimUnconfirmed(1_000, 10)).toEqual([]); // still leased
    now = 2_500;
    const [claimed] = await repo.claimUnconfirmed(1_000, 10);
    expect(claimed?.attempts).toBe(2);
    expect(await repo.claimUnconfirmed(1_000, 10)).toEqual([]);
    await repo.release('agg-1');
    expect((await repo.claimUnconfirmed(1_000, 10)).map((aggregate) => aggregate.attempts)).toEqual([3]);
    await repo.confirm('agg-1');
    await repo.confirm('agg-1');
    await repo.release('agg-1');
    expect(await repo.counts()).toEqual({ open: 0, completed: 0 });
    now = 10_000;
    expect(await repo.claimUnconfirmed(1_000, 10)).toEqual([]);
  });

  it('hands values back byte for byte (Lua never decodes them: empty arrays stay arrays)', async () => {
    const repo = repository<unknown>(uniqueName());
    const value = { empty: [], object: {}, nested: [[], [{}]], text: 'ünïcødé \u0000 "quoted"', big: 2 ** 53 - 1, float: 0.1 };
    const next = { key: 'v', value, inputIds: ['i'], correlationId: 'c', firstAt: 1, lastAt: 1 };
    const version = versionOf(await repo.add({ key: 'v', inputIds: ['i'], expectedVersion: 0, next }));
    expect((await repo.get('v'))?.value).toEqual(value);
    const aggregate = await repo.complete('v', version, { id: 'v-agg', completedBy: 'stop', leaseMs: 0 });
    expect(aggregate?.value).toEqual(value);
    const [again] = await repo.claimUnconfirmed(0, 1);
    expect(again?.value).toEqual(value);
  });

  it('remembers input ids for seenRetentionMs by the injected clock, not by Redis time', async () => {
    let now = 0;
    const repo = repository<number[]>(uniqueName(), { now: () => now, seenRetentionMs: 60_000 });
    await repo.add(write('k', 'a', 0, now, { completion: { id: 'first', completedBy: 'size', leaseMs: 0 } }));
    now = 30_000;
    const version = versionOf(await repo.add(write('k', ['b', 'c'], 0, now)));
    now = 59_999;
    expect(await repo.add(write('k', ['c', 'a', 'x'], version, now))).toEqual({ kind: 'duplicate', inputIds: ['c', 'a'] });
    now = 60_000; // remembered while seenAt > now - retention, as in memory
    expect(await repo.add(write('k', ['c', 'a', 'x'], version, now))).toEqual({ kind: 'duplicate', inputIds: ['c'] });
    now = 90_000; // the whole batch is forgotten at once
    expect((await repo.add(write('k', ['c', 'a', 'b'], version, now))).kind).toBe('added');
  });

  it('folds a large batch in one script call and names its seen ids by position, awkward ids included', async () => {
    const repo = repository<number[]>(uniqueName());
    const batch = Array.from({ length: 500 }, (_, n) => `id ${n} "✓" \\ \u0000 ,`);
    const added = await repo.add(write('big', batch, 0, 0));
    expect(added.kind === 'added' && added.group.inputIds).toEqual(batch);
    const version = versionOf(added);
    const picked = [batch[499], batch[0], batch[250]] as string[];
    expect(await repo.add(write('big', ['new 1', ...picked, 'new 2'], version, 0))).toEqual({ kind: 'duplicate', inputIds: picked });
    expect((await repo.add(write('big', ['new 1', 'new 2'], version, 0, { completion: { id: 'agg-big', completedBy: 'size', leaseMs: 0 } }))).kind).toBe('completed');
    expect(await repo.counts()).toEqual({ open: 0, completed: 1 });
  });

  it('lists expired groups and claims aggregates oldest first, ties in creation order', async () => {
    const repo = repository<number[]>(uniqueName(), { now: () => 0 });
    const versions = new Map<string, number>();
    for (const key of ['c', 'a', 'd', 'b']) versions.set(key, versionOf(await repo.add(write(key, `${key}1`, 0, key === 'd' ? -5 : 0))));
    expect((await repo.expired(0, 3)).map((group) => group.key)).toEqual(['d', 'c', 'a']);
    expect((await repo.expired(0, 10)).map((group) => group.key)).toEqual(['d', 'c', 'a', 'b']);
    expect((await repo.expired(-1, 10)).map((group) => group.key)).toEqual(['d']);
    expect(await repo.expired(0, 0)).toEqual([]);
    for (const key of ['b', 'd', 'a', 'c']) await repo.complete(key, versions.get(key) ?? 0, { id: `agg-${key}`, completedBy: 'timeout', leaseMs: 0 });
    expect((await repo.claimUnconfirmed(10, 3)).map((aggregate) => aggregate.id)).toEqual(['agg-b', 'agg-d', 'agg-a']);
    expect((await repo.claimUnconfirmed(10, Number.POSITIVE_INFINITY)).map((aggregate) => aggregate.id)).toEqual(['agg-c']);
  });

  it('completes a group exactly once when two instances race complete() on it, round after round', async () => {
    const name = uniqueName();
    const [one, two] = [repository<number[]>(name, { connection: await connect() }), repository<number[]>(name, { connection: await connect() })];
    for (let round = 0; round < 60; round += 1) {
      const key = `g${round}`;
      const version = versionOf(await one.add(write(key, `${key}-in`, 0, round)));
      const results = await Promise.all([
        one.complete(key, version, { id: `${key}-one`, completedBy: 'timeout', leaseMs: 60_000 }),
        two.complete(key, version, { id: `${key}-two`, completedBy: 'timeout', leaseMs: 60_000 }),
      ]);
      expect(results.filter((result) => result !== undefined)).toHaveLength(1);
    }
    expect(await two.counts()).toEqual({ open: 0, completed: 60 });
  });

  it('lets exactly one of two racing writes on the same version through', async () => {
    const name = uniqueName();
    const [one, two] = [repository<number[]>(name, { connection: await connect() }), repository<number[]>(name, { connection: await connect() })];
    for (let round = 0; round < 40; round += 1) {
      const key = `w${round}`;
      const kinds = (await Promise.all([one.add(write(key, 'x', 0, 0)), two.add(write(key, 'y', 0, 0))])).map((outcome) => outcome.kind).sort();
      expect(kinds).toEqual(['added', 'conflict']);
    }
  });

  it('never hands the same aggregate to two concurrent claimUnconfirmed callers', async () => {
    const name = uniqueName();
    let now = 0;
    const claimers = await Promise.all([0, 1, 2, 3].map(async () => repository<number[]>(name, { connection: await connect(), now: () => now })));
    const seed = claimers[0] as RedisAggregationRepository<number[]>;
    for (let index = 0; index < 40; index += 1) {
      await seed.add(write(`c${index}`, `c${index}-in`, 0, 0, { completion: { id: `agg-${index}`, completedBy: 'size', leaseMs: 0 } }));
    }
    now = 1;
    const batches = await Promise.all(claimers.flatMap((claimer) => [claimer.claimUnconfirmed(60_000, 7), claimer.claimUnconfirmed(60_000, 7)]));
    const ids = batches.flat().map((aggregate) => aggregate.id);
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids).toHaveLength(40);
    expect(batches.flat().every((aggregate) => aggregate.attempts === 2)).toBe(true);
    expect(await seed.claimUnconfirmed(60_000, 100)).toEqual([]);
  });

  it('loads its scripts again when the server has forgotten them (NOSCRIPT)', async () => {
    let forgotten = 0;
    const forgetful = new Proxy(redis, {
      get(target, property, receiver) {
        if (property === 'evalsha') {
          return () => {
            forgotten += 1;
            return Promise.reject(new Error('NOSCRIPT No matching script. Please use EVAL.'));
          };
        }
        const value: unknown = Reflect.get(target, property, receiver);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
    const repo = repository<number[]>(uniqueName(), { connection: forgetful });
    expect((await repo.add(write('k', 'a', 0, 0))).kind).toBe('added');
    expect(await repo.counts()).toEqual({ open: 1, completed: 0 });
    expect(forgotten).toBe(2);
  });

  it('starts every new group at a random version drawn in TypeScript (Lua\'s math.random would repeat), the script\'s version, counting up from it', async () => {
    const repo = repository<number[]>(uniqueName());
    const versions = new Set<number>();
    for (let n = 0; n < 20; n += 1) {
      const key = n < 10 ? `r${n}` : 'again'; // ten keys, then ten successive groups of one key
      const version = versionOf(await repo.add(write(key, `${key}-${n}-1`, 0, 0)));
      expectInitialVersion(version);
      versions.add(version);
      expect((await repo.get(key))?.version).toBe(version);
      // the script checks the same version the group's JSON holds: a write at it passes, +1
      expect(await repo.add(write(key, `${key}-${n}-2`, version + 1, 0))).toEqual({ kind: 'conflict' });
      expect(versionOf(await repo.add(write(key, `${key}-${n}-2`, version, 0)))).toBe(version + 1);
      expect(await repo.complete(key, version, { id: `stale-${n}`, completedBy: 'timeout', leaseMs: 0 })).toBeUndefined();
      expect((await repo.complete(key, version + 1, { id: `agg-${n}`, completedBy: 'timeout', leaseMs: 0 }))?.inputIds).toEqual([`${key}-${n}-2`]);
    }
    expect(versions.size).toBe(20); // 20 draws in [1, 2^30]: a repeat has a chance of ~2e-7
  });

  it('does not quit the caller’s connection on close()', async () => {
    const connection = await connect();
    const repo = repository(uniqueName(), { connection });
    await repo.close();
    await repo.close();
    expect(await connection.ping()).toBe('PONG');
  });

  it('answers like the in-memory reference over a long random sequence of operations', async () => {
    let now = 0;
    const clock = { now: () => now, seenRetentionMs: 500 };
    const reference = new InMemoryPersistentAggregationRepository<number[]>(clock);
    const redisRepo = repository<number[]>(uniqueName(), clock);
    // new groups start at random versions: both are compared (and written) with versions relative to their group's first
    const both: PersistentAggregationRepository<number[]>[] = [new RelativeVersions(reference), new RelativeVersions(redisRepo)];
    let state = 42;
    const random = (n: number): number => {
      // mulberry32: a seeded, reproducible sequence
      state = (state + 0x6d2b79f5) | 0;
      let t = Math.imul(state ^ (state >>> 15), 1 | state);
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
      return Math.floor((((t ^ (t >>> 14)) >>> 0) / 4_294_967_296) * n);
    };
    const same = async <T>(call: (repo: PersistentAggregationRepository<number[]>) => Promise<T>): Promise<T> => {
      const [expected, actual] = await Promise.all(both.map(call));
      expect(actual).toEqual(expected);
      return expected as T;
    };
    let aggregates = 0;
    const seen = new Set<string>(); // which outcomes the sequence reached, so it provably covers them all
    for (let step = 0; step < 400; step += 1) {
      now += random(3) * 50;
      const key = `k${random(4)}`;
      const operation = random(8);
      if (operation <= 3) {
        const group: StoredGroup<number[]> | undefined = await same((repo) => repo.get(key));
        const inputIds = [...new Set(Array.from({ length: 1 + random(4) }, () => `i${random(40)}`))]; // a batch of 1..4 distinct ids
        const expectedVersion = random(5) === 0 ? random(3) : (group?.version ?? 0);
        const next = { key, value: [...(group?.value ?? []), step], inputIds: [...(group?.inputIds ?? []), ...inputIds], correlationId: group?.correlationId ?? (inputIds[0] as string), firstAt: group?.firstAt ?? now, lastAt: now };
        const completion = random(3) === 0 ? { id: `agg${(aggregates += 1)}`, completedBy: 'size', leaseMs: random(4) * 100 } : undefined;
        const outcome = await same((repo) => repo.add({ key, inputIds, expectedVersion, next, completion }));
        seen.add(outcome.kind);
        if (inputIds.length > 1) seen.add(`${outcome.kind} batch`);
        if (outcome.kind === 'duplicate' && outcome.inputIds.length < inputIds.length) seen.add('duplicate in part');
      } else if (operation === 4) {
        const completion = { id: `agg${(aggregates += 1)}`, completedBy: 'timeout', leaseMs: random(4) * 100 };
        const version = random(4);
        seen.add((await same((repo) => repo.complete(key, version, completion))) === undefined ? 'not completed' : 'completed later');
      } else if (operation === 5) {
        const leaseMs = random(4) * 100;
        const limit = random(4);
        const claimed = await same((repo) => repo.claimUnconfirmed(leaseMs, limit));
        if (claimed.length > 1) seen.add('claimed several');
        const settled = claimed[random(Math.max(1, claimed.length))];
        const confirm = random(2) === 0;
        if (settled !== undefined) await Promise.all(both.map((repo) => (confirm ? repo.confirm(settled.id) : repo.release(settled.id))));
      } else if (operation === 6) {
        const before = now - random(4) * 100;
        const limit = random(5);
        if ((await same((repo) => repo.expired(before, limit))).length > 1) seen.add('expired several');
      } else {
        await same((repo) => repo.counts());
      }
    }
    await same((repo) => repo.counts());
    expect([...seen].sort()).toEqual([
      'added',
      'added batch',
      'claimed several',
      'completed',
      'completed batch',
      'completed later',
      'conflict',
      'conflict batch',
      'duplicate',
      'duplicate batch',
      'duplicate in part',
      'expired several',
      'not completed',
    ]);
  });
});
