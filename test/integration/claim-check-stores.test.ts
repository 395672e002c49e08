import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/core/index.ts';
import { InvalidClaimIdError, MemoryClaimCheckStore, type ClaimCheckStore } from '../../src/stores/claim-check-store.ts';
import { FileClaimCheckStore } from '../../src/stores/file-claim-check-store.ts';
import { claimCheckMigrationStatements, openDatabase, PostgresClaimCheckStore, type Database } from '../../adapters/postgres/index.ts';
import { RedisClaimCheckStore } from '../../adapters/redis/index.ts';
import { from } from '../../facade/route-builder.ts';
import { startTestIntegration } from '../../facade/testing/index.ts';
import { dropSchema, POSTGRES_URL } from '../unit/postgres/support.ts';
import { until } from '../support/wait.ts';

// One contract every ClaimCheckStore passes: in memory, on the filesystem (a temporary directory),
// on the real PostgreSQL (127.0.0.1:5432, database `test`) and the real Redis (127.0.0.1:6379) —
// both fail loudly when down. Names are unique to this file (helper tag hC).

interface StoreFeatures {
  /** The store takes an injected clock: expiry is tested by moving it (else with a real, short PX). */
  readonly clock: boolean;
  /** `sweep` deletes expired claims itself (Redis expires keys on its own). */
  readonly sweeps: boolean;
}

interface Clock {
  time: number;
  readonly now: () => number;
}

function clock(): Clock {
  const state = { time: 1_700_000_000_000, now: () => state.time };
  return state;
}

const bytes = (...values: number[]): Uint8Array => Uint8Array.from(values);
const id = (): string => randomUUID();

function describeClaimCheckStore(name: string, open: (now: () => number) => Promise<ClaimCheckStore> | ClaimCheckStore, features: StoreFeatures): void {
  describe(`ClaimCheckStore contract: ${name}`, () => {
    it('gives back the bytes as they were put, zeros and empty data included', async () => {
      const store = await open(Date.now);
      const [a, b, c] = [id(), id(), id()];
      await store.put(a, bytes(0, 1, 2, 255, 0));
      await store.put(b, new Uint8Array(0));
      const big = randomBytes(1024 * 1024);
      await store.put(c, big);
      expect(await store.get(a)).toEqual(bytes(0, 1, 2, 255, 0));
      expect(await store.get(b)).toEqual(new Uint8Array(0));
      expect(Buffer.from((await store.get(c))!).equals(big)).toBe(true);
    });

    it('returns undefined for a claim never put', async () => {
      const store = await open(Date.now);
      expect(await store.get(id())).toBeUndefined();
    });

    it('replaces the data of an id put again', async () => {
      const store = await open(Date.now);
      const claim = id();
      await store.put(claim, bytes(1));
      await store.put(claim, bytes(2, 2));
      expect(await store.get(claim)).toEqual(bytes(2, 2));
    });

    it('removes a claim; removing a missing one is no error', async () => {
      const store = await open(Date.now);
      const claim = id();
      await store.put(claim, bytes(1));
      await store.remove(claim);
      expect(await store.get(claim)).toBeUndefined();
      await expect(store.remove(claim)).resolves.toBeUndefined();
      await expect(store.remove(id())).resolves.toBeUndefined();
    });

    it('keeps many claims written at once apart', async () => {
      const store = await open(Date.now);
      const claims = Array.from({ length: 50 }, (_, index) => ({ id: id(), data: bytes(index, index + 1) }));
      await Promise.all(claims.map((claim) => store.put(claim.id, claim.data)));
      const read = await Promise.all(claims.map((claim) => store.get(claim.id)));
      expect(read).toEqual(claims.map((claim) => claim.data));
    });

    it('refuses ids it did not make (paths, keys, other shapes) with InvalidClaimIdError, touching nothing', async () => {
      const store = await open(Date.now);
      for (const bad of ['../../etc/passwd', '', 'ABCDEFAB-0000-0000-0000-000000000000', `${id()}/x`, `${id()}\n`, '*']) {
        await expect(store.put(bad, bytes(1))).rejects.toBeInstanceOf(InvalidClaimIdError);
        await expect(store.get(bad)).rejects.toBeInstanceOf(InvalidClaimIdError);
        await expect(store.remove(bad)).rejects.toBeInstanceOf(InvalidClaimIdError);
      }
    });

    if (features.clock) {
      it('never returns an expired claim; a claim without ttl does not expire', async () => {
        const time = clock();
        const store = await open(time.now);
        const [short, long, forever] = [id(), id(), id()];
        await store.put(short, bytes(1), { ttlMs: 1_000 });
        await store.put(long, bytes(2), { ttlMs: 5_000 });
        await store.put(forever, bytes(3));
        time.time += 999;
        expect(await store.get(short)).toEqual(bytes(1));
        time.time += 1;
        expect(await store.get(short)).toBeUndefined();
        expect(await store.get(long)).toEqual(bytes(2));
        time.time += 10 * 365 * 86_400_000;
        expect(await store.get(long)).toBeUndefined();
        expect(await store.get(forever)).toEqual(bytes(3));
      });

      it('a put again renews the expiry', async () => {
        const time = clock();
        const store = await open(time.now);
        const claim = id();
        await store.put(claim, bytes(1), { ttlMs: 1_000 });
        time.time += 900;
        await store.put(claim, bytes(1), { ttlMs: 1_000 });
        time.time += 900;
        expect(await store.get(claim)).toEqual(bytes(1));
      });
    } else {
      it('expires a claim by itself after its ttl', async () => {
        const store = await open(Date.now);
        const [short, forever] = [id(), id()];
        await store.put(short, bytes(1), { ttlMs: 30 });
        await store.put(forever, bytes(2));
        await until(async () => (await store.get(short)) === undefined, () => 'the claim with a 30 ms ttl never expired');
        expect(await store.get(forever)).toEqual(bytes(2));
      });
    }

    if (features.sweeps) {
      it('sweep deletes the expired claims only and says how many', async () => {
        const time = clock();
        const store = await open(time.now);
        const [expired1, expired2, fresh, forever] = [id(), id(), id(), id()];
        await store.put(expired1, bytes(1), { ttlMs: 10 });
        await store.put(expired2, bytes(2), { ttlMs: 20 });
        await store.put(fresh, bytes(3), { ttlMs: 10_000 });
        await store.put(forever, bytes(4));
        time.time += 100;
        expect(await store.sweep()).toBe(2);
        expect(await store.sweep()).toBe(0);
        time.time -= 100; // even with the clock turned back, the swept claims are gone
        expect(await store.get(expired1)).toBeUndefined();
        expect(await store.get(expired2)).toBeUndefined();
        expect(await store.get(fresh)).toEqual(bytes(3));
        expect(await store.get(forever)).toEqual(bytes(4));
      });
    } else {
      it('sweep has nothing to do (the store expires claims itself)', async () => {
        const store = await open(Date.now);
        expect(await store.sweep()).toBe(0);
      });
    }
  });
}

// --- memory ---------------------------------------------------------------------------------------
describeClaimCheckStore('memory', (now) => new MemoryClaimCheckStore({ now }), { clock: true, sweeps: true });

describe('MemoryClaimCheckStore', () => {
  it('refuses a new claim beyond maxEntries with CapacityError after sweeping expired ones, never dropping one', async () => {
    const time = clock();
    const store = new MemoryClaimCheckStore({ maxEntries: 2, now: time.now });
    const [a, b, c] = [id(), id(), id()];
    await store.put(a, bytes(1), { ttlMs: 10 });
    await store.put(b, bytes(2));
    await expect(store.put(c, bytes(3))).rejects.toMatchObject({ code: 'CAPACITY' });
    await store.put(b, bytes(22)); // an existing id may be replaced when full
    time.time += 10; // a expired: swept to make room
    await store.put(c, bytes(3));
    expect([await store.get(b), await store.get(c), store.size]).toEqual([bytes(22), bytes(3), 2]);
  });

  it('keeps a copy: changing the caller’s buffer after put changes nothing', async () => {
    const store = new MemoryClaimCheckStore();
    const claim = id();
    const data = bytes(1, 2);
    await store.put(claim, data);
    data[0] = 9;
    expect(await store.get(claim)).toEqual(bytes(1, 2));
  });
});

// --- filesystem -----------------------------------------------------------------------------------
const directories: string[] = [];
function tempDirectory(): string {
  const directory = mkdtempSync(join(tmpdir(), 'hC-claims-'));
  directories.push(directory);
  return directory;
}
afterAll(() => {
  for (const directory of directories) rmSync(directory, { recursive: true, force: true });
});

describeClaimCheckStore('filesystem', (now) => new FileClaimCheckStore({ directory: join(tempDirectory(), 'claims'), now }), { clock: true, sweeps: true });

describe('FileClaimCheckStore', () => {
  it('writes one file per claim named by the claim id, private to the process user, leaving no temporary file', async () => {
    const directory = join(tempDirectory(), 'nested', 'claims');
    const store = new FileClaimCheckStore({ directory });
    const claim = id();
    await store.put(claim, bytes(7));
    await store.put(claim, bytes(8));
    expect(readdirSync(directory)).toEqual([`${claim}.claim`]);
    expect(statSync(join(directory, `${claim}.claim`)).mode & 0o777).toBe(0o600);
  });

  it('sweep removes temporary files of interrupted writes once stale, never a claim or a foreign file', async () => {
    const directory = tempDirectory();
    const store = new FileClaimCheckStore({ directory, staleTempMs: 0 });
    const claim = id();
    await store.put(claim, bytes(1));
    writeFileSync(join(directory, `.tmp-${id()}-abc`), 'half a claim');
    writeFileSync(join(directory, 'notes.txt'), 'not ours');
    await new Promise((resolve) => setTimeout(resolve, 5)); // the temp file's mtime must be in the past
    expect(await store.sweep()).toBe(0);
    expect(readdirSync(directory).sort()).toEqual([`${claim}.claim`, 'notes.txt'].sort());
  });

  it('reads a damaged claim file (shorter than its header) as missing, and sweeps it', async () => {
    const directory = tempDirectory();
    const store = new FileClaimCheckStore({ directory });
    const claim = id();
    writeFileSync(join(directory, `${claim}.claim`), Buffer.from([1, 2]));
    expect(await store.get(claim)).toBeUndefined();
    expect(await store.sweep()).toBe(1);
  });

  it('sweeps nothing (and does not fail) before its directory exists', async () => {
    const store = new FileClaimCheckStore({ directory: join(tempDirectory(), 'not-yet') });
    expect(await store.sweep()).toBe(0);
    expect(await store.get(id())).toBeUndefined();
  });
});

// --- PostgreSQL -----------------------------------------------------------------------------------
const schema = `hc_claims_${Date.now().toString(36)}_${randomBytes(3).toString('hex')}`;
let db: Database;
let tableCount = 0;

beforeAll(async () => {
  db = await openDatabase({ url: POSTGRES_URL, log: silentLogger, poolSize: 4 }).catch((error: unknown) => {
    throw new Error(`PostgreSQL is not reachable at ${POSTGRES_URL}`, { cause: error });
  });
});
afterAll(async () => {
  await dropSchema(db, schema);
  await db.close();
});

describeClaimCheckStore('PostgreSQL', (now) => PostgresClaimCheckStore.open(db, { schema, table: `hc_claims_${(tableCount += 1)}`, now }), { clock: true, sweeps: true });

describe('PostgresClaimCheckStore', () => {
  it('open creates the table once, idempotently, also when instances start at once', async () => {
    const table = 'hc_claims_open';
    const stores = await Promise.all([1, 2, 3].map(() => PostgresClaimCheckStore.open(db, { schema, table })));
    const claim = id();
    await stores[0]!.put(claim, bytes(5));
    expect(await stores[2]!.get(claim)).toEqual(bytes(5));
    const { rows } = await db.query<{ count: number }>(`SELECT count(*)::int AS count FROM "${schema}"."${table}"`);
    expect(rows[0]!.count).toBe(1);
    expect(claimCheckMigrationStatements({ schema, table }).join('\n')).toContain('expires_at');
  });

  it('refuses a table name that is not a plain identifier', () => {
    expect(() => new PostgresClaimCheckStore(db, { schema, table: 'claims; DROP TABLE x' })).toThrow(/invalid table name/);
  });

  it('carries a claim from one route to another through PostgreSQL, removing it once checked out', async () => {
    const store = await PostgresClaimCheckStore.open(db, { schema, table: 'hc_claims_route' });
    const { kit, stop } = await startTestIntegration({
      routes: [
        from<{ scan: string }>('memory:hC-pg-in', { id: 'hC-pg-checkin' }).claimCheckIn({ store }).to('memory:hC-pg-tickets'),
        from<unknown>('memory:hC-pg-tickets', { id: 'hC-pg-checkout' }).claimCheckOut<{ scan: string }>({ store }).to('memory:hC-pg-out'),
      ],
    });
    try {
      const out = kit.mock<{ scan: string }>('memory:hC-pg-out');
      await kit.sendAll('memory:hC-pg-in', [{ scan: 'page 1' }]);
      const [restored] = await out.expect(1);
      expect(restored!.body).toEqual({ scan: 'page 1' });
      await until(async () => (await db.query<{ count: number }>(`SELECT count(*)::int AS count FROM "${schema}"."hc_claims_route"`)).rows[0]!.count === 0, () => 'the claim was not removed after check-out');
    } finally {
      await stop();
    }
  });
});

// --- Redis ----------------------------------------------------------------------------------------
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const prefix = `hC-claims-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}:`;
let redis: Redis;

beforeAll(async () => {
  redis = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: () => null });
  await redis.connect().catch((error: unknown) => {
    throw new Error(`Redis is not reachable at ${REDIS_URL}`, { cause: error });
  });
});
afterAll(async () => {
  const keys = await redis.keys(`${prefix}*`);
  if (keys.length > 0) await redis.del(...keys);
  redis.disconnect();
});

let redisCount = 0;
describeClaimCheckStore('Redis', () => new RedisClaimCheckStore(redis, { prefix: `${prefix}${(redisCount += 1)}:` }), { clock: false, sweeps: false });

describe('RedisClaimCheckStore', () => {
  it('writes the claim with PX when it has a ttl, without an expiry otherwise', async () => {
    const store = new RedisClaimCheckStore(redis, { prefix: `${prefix}px:` });
    const [short, forever] = [id(), id()];
    await store.put(short, bytes(1), { ttlMs: 60_000 });
    await store.put(forever, bytes(2));
    const ttl = await redis.pttl(`${prefix}px:${short}`);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(60_000);
    expect(await redis.pttl(`${prefix}px:${forever}`)).toBe(-1);
  });

  it('fails check-out of a claim it does not hold with ClaimNotFoundError, dead-lettered, through a route', async () => {
    const store = new RedisClaimCheckStore(redis, { prefix: `${prefix}route:` });
    const { kit, stop } = await startTestIntegration({
      routes: [from<unknown>('memory:hC-redis-tickets', { id: 'hC-redis-checkout' }).claimCheckOut<string>({ store }).to('memory:hC-redis-out').deadLetterChannel('memory:hC-redis-dead')],
    });
    try {
      const dead = kit.mock('memory:hC-redis-dead');
      const out = kit.mock('memory:hC-redis-out');
      await kit.sendAll('memory:hC-redis-tickets', [{ claimCheck: id() }]);
      const [letter] = await dead.expect(1);
      expect(letter!.headers['x-interchange-error-code']).toBe('CLAIM_NOT_FOUND');
      expect(letter!.headers['x-interchange-attempts']).toBe(1);
      expect(out.bodies()).toEqual([]);
    } finally {
      await stop();
    }
  });
});
