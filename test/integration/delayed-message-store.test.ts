import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger, type Message } from '../../src/core/index.ts';
import { InMemoryDelayedMessageStore, type DelayedMessageStore } from '../../src/stores/delayed-message-store.ts';
import { delayedMessageMigrationStatements, openDatabase, PostgresConfigurationError, PostgresDelayedMessageStore, type Database } from '../../adapters/postgres/index.ts';
import { RedisDelayedMessageStore } from '../../adapters/redis/index.ts';
import { POSTGRES_URL } from '../unit/postgres/support.ts';

// One contract, every DelayedMessageStore: the in-memory reference, PostgreSQL (127.0.0.1:5432) and
// Redis (127.0.0.1:6379), for real — a test fails when its server is down. Names are unique to this
// run (table `hb_delayed_<run>`, key prefix `hB:<run>:`), dropped at the end.

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const run = `${Date.now().toString(36)}${randomBytes(3).toString('hex')}`;

interface Subject {
  /** A store on a connection of its own (two of them race as two processes would). */
  open(): Promise<DelayedMessageStore>;
}

let keys = 0;
/** A delayer key of its own for each case. */
const uniqueKey = (): string => `hB-route/delay-${(keys += 1)}`;

const message = (id: string, body: unknown = { n: id }, headers: Message['headers'] = {}): Message => ({ id, headers: { timestamp: 1_700_000_000_000, ...headers }, body });

function describeDelayedMessageStore(name: string, subject: () => Subject): void {
  describe(`DelayedMessageStore contract: ${name}`, () => {
    const open = (): Promise<DelayedMessageStore> => subject().open();

    it('holds a message until it is due, then a claim returns it whole (id, headers, body), attempts 1', async () => {
      const store = await open();
      const key = uniqueKey();
      const stored = message('m1', { text: 'héllo', nested: [1, { deep: true }], nothing: null }, { correlationId: 'c-1', delayMs: 500, urgent: true });
      expect(await store.put({ key, message: stored, dueAt: 1_000 })).toBe(true);
      expect(await store.claimDue(key, 999, 10_000, 10)).toEqual([]);
      expect(await store.claimDue(key, 1_000, 10_000, 10)).toEqual([{ key, message: stored, dueAt: 1_000, attempts: 1 }]);
    });

    it('stores an id once per key: a second put changes nothing (the first due time stays); keys are apart', async () => {
      const store = await open();
      const key = uniqueKey();
      const other = uniqueKey();
      expect(await store.put({ key, message: message('same', 'first'), dueAt: 100 })).toBe(true);
      expect(await store.put({ key, message: message('same', 'second'), dueAt: 50 })).toBe(false);
      expect(await store.put({ key: other, message: message('same', 'other'), dueAt: 10 })).toBe(true);
      expect(await store.count(key)).toBe(1);
      expect(await store.claimDue(key, 60, 1_000, 10)).toEqual([]);
      const [claimed] = await store.claimDue(key, 100, 1_000, 10);
      expect(claimed?.message.body).toBe('first');
      expect((await store.claimDue(other, 100, 1_000, 10)).map((c) => c.message.body)).toEqual(['other']);
    });

    it('claims the earliest due first, at most `limit`', async () => {
      const store = await open();
      const key = uniqueKey();
      for (const [id, dueAt] of [['c', 30], ['a', 10], ['d', 40], ['b', 20], ['future', 5_000]] as const) await store.put({ key, message: message(id), dueAt });
      expect((await store.claimDue(key, 100, 1_000, 3)).map((c) => c.message.id)).toEqual(['a', 'b', 'c']);
      expect((await store.claimDue(key, 100, 1_000, 3)).map((c) => c.message.id)).toEqual(['d']);
      expect(await store.claimDue(key, 100, 1_000, 0)).toEqual([]);
    });

    it('a claimed message is held for the lease: claimed again only once it ends, counting the attempt', async () => {
      const store = await open();
      const key = uniqueKey();
      await store.put({ key, message: message('m'), dueAt: 10 });
      expect((await store.claimDue(key, 10, 500, 10)).map((c) => c.attempts)).toEqual([1]);
      expect(await store.claimDue(key, 509, 500, 10)).toEqual([]);
      expect(await store.nextAt(key)).toBe(510);
      expect((await store.claimDue(key, 510, 500, 10)).map((c) => [c.message.id, c.attempts, c.dueAt])).toEqual([['m', 2, 10]]);
    });

    it('release under the current claim makes it available at the time given; a stale claim (other attempts) changes nothing', async () => {
      const store = await open();
      const key = uniqueKey();
      await store.put({ key, message: message('m'), dueAt: 0 });
      await store.claimDue(key, 0, 10_000, 10); // attempts 1
      await store.release(key, 'm', 7, 20); // not its claim
      expect(await store.nextAt(key)).toBe(10_000);
      await store.release(key, 'm', 1, 20);
      expect(await store.nextAt(key)).toBe(20);
      expect(await store.claimDue(key, 19, 10_000, 10)).toEqual([]);
      expect((await store.claimDue(key, 20, 10_000, 10)).map((c) => c.attempts)).toEqual([2]);
      await store.release(key, 'gone', 1, 0); // an unknown id: nothing, no error
      expect(await store.count(key)).toBe(1);
    });

    it('remove forgets a message (idempotent); nextAt and count follow; an empty key has no nextAt', async () => {
      const store = await open();
      const key = uniqueKey();
      expect(await store.nextAt(key)).toBeUndefined();
      expect(await store.count(key)).toBe(0);
      await store.put({ key, message: message('a'), dueAt: 300 });
      await store.put({ key, message: message('b'), dueAt: 200 });
      expect(await store.nextAt(key)).toBe(200);
      expect(await store.count(key)).toBe(2);
      await store.remove(key, 'b');
      await store.remove(key, 'b');
      expect(await store.nextAt(key)).toBe(300);
      await store.remove(key, 'a');
      expect(await store.count(key)).toBe(0);
      expect(await store.nextAt(key)).toBeUndefined();
      expect(await store.put({ key, message: message('a'), dueAt: 1 })).toBe(true); // removed: may be stored again
    });

    it('two stores claiming at once (two connections) never share a message', async () => {
      const [one, two] = [await open(), await open()];
      const key = uniqueKey();
      const total = 60;
      for (let n = 0; n < total; n += 1) await one.put({ key, message: message(`m${n}`), dueAt: n });
      const rounds = await Promise.all(Array.from({ length: 6 }, (_, n) => (n % 2 === 0 ? one : two).claimDue(key, 1_000, 60_000, 15)));
      const ids = rounds.flat().map((claimed) => claimed.message.id);
      expect(new Set(ids).size).toBe(ids.length);
      expect(ids.length).toBeLessThanOrEqual(total);
      expect(ids.length + (await one.claimDue(key, 1_000, 60_000, total)).length).toBe(total);
    });
  });
}

describeDelayedMessageStore('in memory', () => {
  const store = new InMemoryDelayedMessageStore();
  return { open: () => Promise.resolve(store) };
});

// PostgreSQL: a table of its own in `public`, created by the first `open` (and opened again by the others).
const table = `hb_delayed_${run}`;
const databases: Database[] = [];
let pgMain: Database;
beforeAll(async () => {
  pgMain = await openDatabase({ url: POSTGRES_URL, log: silentLogger });
  databases.push(pgMain);
});
afterAll(async () => {
  await pgMain.query(`DROP TABLE IF EXISTS public."${table}"`);
  for (const database of databases) await database.close();
});
describeDelayedMessageStore('PostgreSQL', () => ({
  open: async () => {
    const database = await openDatabase({ url: POSTGRES_URL, log: silentLogger, poolSize: 2 });
    databases.push(database);
    return PostgresDelayedMessageStore.open(database, { table });
  },
}));

// Redis: keys under `hB:<run>:`, deleted at the end.
const prefix = `hB:${run}:`;
const connections: Redis[] = [];
afterAll(async () => {
  const cleaner = connections[0];
  if (cleaner !== undefined) {
    const found = await cleaner.keys(`${prefix}*`);
    if (found.length > 0) await cleaner.del(...found);
  }
  for (const connection of connections) connection.disconnect();
});
describeDelayedMessageStore('Redis', () => ({
  open: async () => {
    const connection = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: () => null });
    await connection.connect().catch((error: unknown) => {
      throw new Error(`Redis is not reachable at ${REDIS_URL}`, { cause: error });
    });
    connections.push(connection);
    return new RedisDelayedMessageStore(connection, { prefix });
  },
}));

describe('PostgresDelayedMessageStore', () => {
  it('open creates the table from several callers at once, and opens it when it exists', async () => {
    const own = `hb_delayed_open_${run}`;
    try {
      const stores = await Promise.all(Array.from({ length: 4 }, () => PostgresDelayedMessageStore.open(pgMain, { table: own })));
      expect(stores).toHaveLength(4);
      const again = await PostgresDelayedMessageStore.open(pgMain, { table: own });
      expect(await again.put({ key: 'k', message: message('x'), dueAt: 1 })).toBe(true);
      expect(delayedMessageMigrationStatements({ table: own }).join('\n')).toContain(`"public"."${own}"`);
    } finally {
      await pgMain.query(`DROP TABLE IF EXISTS public."${own}"`);
    }
  });

  it('refuses a table or schema name that is not a plain lowercase identifier', () => {
    expect(() => new PostgresDelayedMessageStore(pgMain, { table: 'Bad-Name' })).toThrow(PostgresConfigurationError);
    expect(() => new PostgresDelayedMessageStore(pgMain, { schema: 'x"; DROP' })).toThrow(PostgresConfigurationError);
  });
});
