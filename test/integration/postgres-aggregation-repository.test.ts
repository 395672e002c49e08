import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/core/index.ts';
import { ADD_FUNCTION_ARGUMENTS } from '../../adapters/postgres/aggregation-add-function.ts';
import {
  aggregationMigrationStatements,
  aggregationTables,
  DatabaseError,
  openDatabase,
  openEmbeddedDatabase,
  PostgresAggregationRepository,
  PostgresConfigurationError,
  type Database,
  type SqlExecutor,
} from '../../adapters/postgres/index.ts';
import type { AddOutcome, GroupWrite } from '../../src/stores/persistent-aggregation-repository.ts';
import { describeAggregationRepository, type Probe } from '../support/aggregation-repository-suite.ts';
import { dropSchema, POSTGRES_URL, uniqueSchema, until } from '../unit/postgres/support.ts';

// The shared repository suite on a PostgreSQL server (127.0.0.1:5432: fails when it is down) and on
// PGlite in a data directory, each in a schema of its own; every case uses its own `name`.

describeAggregationRepository(
  'PostgreSQL',
  async () => {
    const schema = uniqueSchema('agg');
    const db = await openDatabase({ url: POSTGRES_URL, log: silentLogger });
    return {
      open: ({ namespace, now, seenRetentionMs }) => PostgresAggregationRepository.open<Probe>(db, { name: namespace, schema, now, seenRetentionMs }),
      child: { kind: 'pg', target: POSTGRES_URL, schema },
      cleanup: async () => {
        await dropSchema(db, schema);
        await db.close();
      },
    };
  },
  { crash: true, seenRetention: true },
);

describeAggregationRepository(
  'PGlite',
  async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'interchange-agg-'));
    const schema = 'aggregation';
    let db: Database | undefined = await openEmbeddedDatabase({ dataDir });
    const current = (): Database => {
      if (db === undefined) throw new Error('the PGlite database is closed (the crash child holds it)');
      return db;
    };
    return {
      open: ({ namespace, now, seenRetentionMs }) => PostgresAggregationRepository.open<Probe>(current(), { name: namespace, schema, now, seenRetentionMs }),
      // PGlite is one process: the parent closes its database while the child writes, and reopens it after.
      child: {
        kind: 'pglite',
        target: dataDir,
        schema,
        beforeSpawn: async () => {
          await current().close();
          db = undefined;
        },
        afterExit: async () => {
          db = await openEmbeddedDatabase({ dataDir });
        },
      },
      cleanup: async () => {
        await db?.close();
        rmSync(dataDir, { recursive: true, force: true });
      },
    };
  },
  { crash: true, seenRetention: true },
);

describe('PostgresAggregationRepository', () => {
  it('opens on fresh tables from several callers at once, and on tables that exist; close leaves the database open', async () => {
    const schema = uniqueSchema('aggopen');
    const server = await openDatabase({ url: POSTGRES_URL, log: silentLogger });
    try {
      const repositories = await Promise.all(Array.from({ length: 4 }, (_, n) => PostgresAggregationRepository.open<Probe>(server, { name: `n${n}`, schema })));
      expect(await Promise.all(repositories.map((repository) => repository.counts()))).toEqual(repositories.map(() => ({ open: 0, completed: 0 })));
      const { rows } = await server.query<{ table_name: string }>(`SELECT table_name FROM information_schema.tables WHERE table_schema = $1 ORDER BY table_name`, [schema]);
      expect(rows.map((row) => row.table_name)).toEqual(['interchange_aggregation_completed', 'interchange_aggregation_groups', 'interchange_aggregation_seen']);
      await PostgresAggregationRepository.open<Probe>(server, { name: 'again', schema });
      await repositories[0]?.close();
      expect((await server.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
    } finally {
      await dropSchema(server, schema);
      await server.close();
    }
  });

  describe('on a PostgreSQL server', () => {
    let server: Database;
    const schema = uniqueSchema('aggadd');
    beforeAll(async () => {
      server = await openDatabase({ url: POSTGRES_URL, log: silentLogger });
    });
    afterAll(async () => {
      await dropSchema(server, schema);
      await server?.close();
    });

    /** A first input at version 0 (one input per group: completing it when `complete`). */
    const first = (key: string, inputId: string, complete: boolean): GroupWrite<Probe> => ({
      key,
      inputIds: [inputId],
      expectedVersion: 0,
      next: { key, value: { inputs: [inputId] }, inputIds: [inputId], correlationId: inputId, firstAt: 1, lastAt: 1 },
      completion: complete ? { id: `agg-${inputId}`, completedBy: 'size', leaseMs: 60_000 } : undefined,
    });

    /** The repository seen through `tx`: its writes stay uncommitted until the transaction ends. */
    const within = (tx: SqlExecutor): Database => ({
      kind: 'postgres',
      query: <R extends object>(text: string, params?: readonly unknown[]) => tx.query<R>(text, params),
      transaction: () => Promise.reject(new Error('not in a test transaction')),
      listen: () => Promise.reject(new Error('not in a test transaction')),
      close: () => Promise.resolve(),
    });

    /**
     * Runs `write` in a transaction left open while `second` (the same write, unless given) goes through
     * another connection, until that one waits on a lock; then commits. The second write's outcome.
     */
    const racing = async (name: string, write: GroupWrite<Probe>, secondWrite = write): Promise<{ first: string; second: AddOutcome<Probe> }> => {
      const other = await PostgresAggregationRepository.open<Probe>(server, { name, schema });
      let second: Promise<AddOutcome<Probe>> | undefined;
      const firstOutcome = await server.transaction(async (tx) => {
        const outcome = await new PostgresAggregationRepository<Probe>(within(tx), { name, schema }).add(write);
        second = other.add(secondWrite);
        second.catch(() => undefined); // awaited below; not unhandled should the wait time out
        const waiting = async (): Promise<boolean> =>
          (await server.query(`SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE $1`, [`%${other.tables.add}%`])).rows.length > 0;
        await until(waiting, () => 'the second add never waited on the first');
        return outcome;
      });
      return { first: firstOutcome.kind, second: await second! };
    };

    it('the same first input completing its group twice at once: the second waits for the first, then is a duplicate (one aggregate)', async () => {
      const repository = await PostgresAggregationRepository.open<Probe>(server, { name: 'race-complete', schema });
      expect(await racing('race-complete', first('k', 'i1', true))).toEqual({ first: 'completed', second: { kind: 'duplicate', inputIds: ['i1'] } });
      expect(await repository.counts()).toEqual({ open: 0, completed: 1 });
      expect(await repository.add(first('k', 'i1', true))).toEqual({ kind: 'duplicate', inputIds: ['i1'] });
    });

    it('the same first input folded twice at once: the second waits for the first, then conflicts (and is a duplicate on retry)', async () => {
      const repository = await PostgresAggregationRepository.open<Probe>(server, { name: 'race-fold', schema });
      expect(await racing('race-fold', first('k', 'i1', false))).toEqual({ first: 'added', second: { kind: 'conflict' } });
      const stored = await repository.get('k');
      expect(stored).toMatchObject({ inputIds: ['i1'] });
      expect(await repository.add({ ...first('k', 'i1', false), expectedVersion: stored?.version ?? 0 })).toEqual({ kind: 'duplicate', inputIds: ['i1'] });
    });

    it('a first batch completing its group while an overlapping first batch waits: the second names the overlap alone and writes nothing', async () => {
      const repository = await PostgresAggregationRepository.open<Probe>(server, { name: 'race-batch', schema });
      const { first: firstKind, second } = await racing('race-batch', batch('k', ['i1', 'i2', 'i3'], 0, true), batch('k', ['i0', 'i2', 'i4', 'i3'], 0, true));
      expect({ firstKind, second }).toEqual({ firstKind: 'completed', second: { kind: 'duplicate', inputIds: ['i2', 'i3'] } });
      expect(await repository.counts()).toEqual({ open: 0, completed: 1 });
      expect(await seenIds(server, schema, 'race-batch')).toEqual(['i1', 'i2', 'i3']);
      expect((await repository.add(batch('k', ['i0', 'i4'], 0, true))).kind).toBe('completed');
      expect(await seenIds(server, schema, 'race-batch')).toEqual(['i0', 'i1', 'i2', 'i3', 'i4']);
    });

    it('a batch with one seen id among several names exactly that id and writes nothing', async () => {
      await batchWithOneSeen(server, schema);
    });

    it('tables made before the batch add function get it at open (the one-input function stays, for instances not yet upgraded); until then add fails with DatabaseError', async () => {
      const repository = await PostgresAggregationRepository.open<Probe>(server, { name: 'upgrade', schema });
      await server.query(`DROP FUNCTION ${repository.tables.add}`);
      // a stand-in for the one-input function of an installation from before
      const oneInput = `"${schema}".interchange_aggregation_add(text, text, text, integer, json, json, text, bigint, bigint, bigint, bigint, text, text, bigint)`;
      await server.query(`CREATE FUNCTION ${oneInput} RETURNS text LANGUAGE sql AS $$ SELECT 'added' $$`);
      await expect(repository.add(first('k', 'i1', false))).rejects.toThrow(DatabaseError);
      const upgraded = await PostgresAggregationRepository.open<Probe>(server, { name: 'upgrade', schema });
      expect((await server.query(`SELECT to_regprocedure($1) IS NOT NULL AS kept`, [oneInput])).rows).toEqual([{ kept: true }]);
      const added = await upgraded.add(first('k', 'i1', false));
      expect(added.kind).toBe('added');
      expect((await repository.add(first('k', 'i2', true))).kind).toBe('conflict');
      expect(await repository.get('k')).toMatchObject({ inputIds: ['i1'], version: added.kind === 'added' ? added.group.version : -1 });
    });

    it('an add function of the first batch shape (no version returned) is replaced at open; until then add fails with DatabaseError', async () => {
      const repository = await PostgresAggregationRepository.open<Probe>(server, { name: 'upgrade-version', schema });
      const signature = `${repository.tables.add}(${ADD_FUNCTION_ARGUMENTS})`;
      const result = async (): Promise<unknown> =>
        (await server.query<{ result: string }>(`SELECT pg_get_function_arguments(to_regprocedure($1)) AS result`, [signature])).rows[0]?.result;
      // a stand-in for the batch function as an installation of before made it: OUT (outcome, seen_ids)
      await server.query(`DROP FUNCTION ${signature}`);
      await server.query(
        `CREATE FUNCTION ${repository.tables.add}(p_name text, p_key text, p_write_ids text[], p_expected integer, p_value json, p_input_ids json,
           p_correlation_id text, p_first_at bigint, p_last_at bigint, p_now bigint, p_seen_cutoff bigint, p_completion_id text, p_completed_by text,
           p_claimed_until bigint, OUT outcome text, OUT seen_ids text[]) LANGUAGE sql AS $$ SELECT 'added', NULL::text[] $$`,
      );
      await expect(repository.add(first('k', 'i1', false))).rejects.toThrow(DatabaseError);
      expect(await repository.counts()).toEqual({ open: 0, completed: 0 });
      const upgraded = await PostgresAggregationRepository.open<Probe>(server, { name: 'upgrade-version', schema });
      expect(await result()).toMatch(/OUT outcome text, OUT seen_ids text\[\], OUT version integer$/);
      const added = await upgraded.add(first('k', 'i1', false));
      if (added.kind !== 'added') throw new Error(`expected added, got ${added.kind}`);
      expect(await repository.get('k')).toEqual(added.group);
      const next = await repository.add({ ...batch('k', ['i1', 'i2'], added.group.version), inputIds: ['i2'] });
      expect(next).toMatchObject({ kind: 'added', group: { version: added.group.version + 1 } });
      // current: opening again (and the migration statements run again) leaves the function as it is
      const oid = async (): Promise<unknown> => (await server.query<{ oid: number }>(`SELECT to_regprocedure($1)::oid AS oid`, [signature])).rows[0]?.oid;
      const before = await oid();
      await PostgresAggregationRepository.open<Probe>(server, { name: 'upgrade-version', schema });
      await server.transaction(async (tx) => {
        for (const statement of aggregationMigrationStatements(schema)) await tx.query(statement);
      });
      expect(await oid()).toBe(before);
    });

    it('a new group starts at a random version (not 1), and every later write is +1', async () => {
      const repository = await PostgresAggregationRepository.open<Probe>(server, { name: 'random-start', schema });
      const starts = new Set<number>();
      for (let round = 0; round < 8; round++) {
        const created = await repository.add(batch(`k${round}`, [`a${round}`], 0));
        if (created.kind !== 'added') throw new Error(`expected added, got ${created.kind}`);
        const start = created.group.version;
        expect(Number.isInteger(start) && start >= 1 && start <= 2 ** 30).toBe(true);
        starts.add(start);
        expect(await repository.get(`k${round}`)).toMatchObject({ version: start });
        expect(await repository.add(batch(`k${round}`, [`b${round}`], start))).toMatchObject({ kind: 'added', group: { version: start + 1 } });
        expect(await repository.get(`k${round}`)).toMatchObject({ version: start + 1 });
      }
      expect(starts.size).toBeGreaterThan(1); // 8 draws in 2^30: equal only by a (negligible) chance
    });
  });

  describe('on PGlite', () => {
    let db: Database;
    beforeAll(async () => {
      db = await openEmbeddedDatabase();
    }, 30_000);
    afterAll(async () => {
      await db?.close();
    });

    it('a batch with one seen id among several names exactly that id and writes nothing', async () => {
      await batchWithOneSeen(db, 'batchseen');
    });

    it('deletes seen input ids older than the retention (when adding, and when listing expired groups)', async () => {
      let t = 1_000_000;
      const repository = await PostgresAggregationRepository.open<Probe>(db, { name: 'prune', schema: 'prune', seenRetentionMs: 1_000, now: () => t });
      const seen = async (): Promise<number> => Number((await db.query<{ n: string | number }>('SELECT count(*) AS n FROM prune.interchange_aggregation_seen')).rows[0]?.n);
      const add = (n: number) =>
        repository.add({ key: 'k', inputIds: [`i${n}`], expectedVersion: 0, next: { key: 'k', value: { inputs: [`i${n}`] }, inputIds: [`i${n}`], correlationId: 'c', firstAt: t, lastAt: t }, completion: { id: `a${n}`, completedBy: 'size', leaseMs: 0 } });
      await add(1);
      await add(2);
      expect(await seen()).toBe(2);
      t += 1_000;
      await add(3); // forgets i1 and i2, then remembers i3
      expect(await seen()).toBe(1);
      expect((await add(3)).kind).toBe('duplicate');
      t += 1_000;
      expect(await repository.expired(t, 10)).toEqual([]);
      expect(await seen()).toBe(0);
    });

    it('refuses a missing name, an invalid schema or retention with PostgresConfigurationError; a failed statement is a DatabaseError', async () => {
      expect(() => new PostgresAggregationRepository(db, { name: '' })).toThrow(PostgresConfigurationError);
      expect(() => new PostgresAggregationRepository(db, { name: 'x', schema: 'Robert"); DROP TABLE x;--' })).toThrow(PostgresConfigurationError);
      expect(() => new PostgresAggregationRepository(db, { name: 'x', seenRetentionMs: -1 })).toThrow(PostgresConfigurationError);
      expect(aggregationTables('orders').groups).toBe('"orders"."interchange_aggregation_groups"');
      const unmigrated = new PostgresAggregationRepository<Probe>(db, { name: 'x', schema: 'nowhere' });
      await expect(unmigrated.get('k')).rejects.toThrow(DatabaseError);
      await expect(unmigrated.get('k')).rejects.toThrow(/aggregation repository 'x': get failed/);
    });
  });
});

/** A write folding `inputIds` into a new group (`expectedVersion` 0) or onto one at `expectedVersion`; completing it when `complete`. */
function batch(key: string, inputIds: readonly string[], expectedVersion: number, complete = false): GroupWrite<Probe> {
  return {
    key,
    inputIds,
    expectedVersion,
    next: { key, value: { inputs: inputIds }, inputIds, correlationId: inputIds[0] ?? key, firstAt: 1, lastAt: 2 },
    completion: complete ? { id: `agg-${inputIds.join('-')}`, completedBy: 'size', leaseMs: 60_000 } : undefined,
  };
}

/** The input ids recorded as seen for aggregator `name`, sorted. */
async function seenIds(db: Database, schema: string, name: string): Promise<string[]> {
  const { rows } = await db.query<{ input_id: string }>(`SELECT input_id FROM ${aggregationTables(schema).seen} WHERE name = $1 ORDER BY input_id`, [name]);
  return rows.map((row) => row.input_id);
}

/** Checks, in the database itself, that a batch with one seen id is a duplicate naming it, and that nothing (group, aggregates, seen ids) was written. */
async function batchWithOneSeen(db: Database, schema: string): Promise<void> {
  const name = 'batch-seen';
  const repository = await PostgresAggregationRepository.open<Probe>(db, { name, schema });
  expect((await repository.add(batch('k', ['a', 'b'], 0))).kind).toBe('added');
  const before = await db.query<{ version: number }>(`SELECT value::text, input_ids::text, version FROM ${repository.tables.groups} WHERE name = $1 AND key = 'k'`, [name]);
  const version = before.rows[0]?.version ?? 0;
  expect(await repository.add(batch('k', ['c', 'b', 'd'], version, true))).toEqual({ kind: 'duplicate', inputIds: ['b'] });
  expect(await repository.add(batch('k', ['c', 'd', 'a'], version))).toEqual({ kind: 'duplicate', inputIds: ['a'] });
  expect(await repository.add(batch('other', ['x', 'b'], 0))).toMatchObject({ kind: 'added' }); // seen ids are per key
  expect((await db.query(`SELECT value::text, input_ids::text, version FROM ${repository.tables.groups} WHERE name = $1 AND key = 'k'`, [name])).rows).toEqual(before.rows);
  expect(await repository.counts()).toEqual({ open: 2, completed: 0 });
  expect(await seenIds(db, schema, name)).toEqual(['a', 'b', 'b', 'x']);
  // without the seen one, the rest folds in (the next version) and is remembered
  expect(await repository.add(batch('k', ['c', 'd'], version))).toMatchObject({ kind: 'added', group: { version: version + 1 } });
  expect(await seenIds(db, schema, name)).toEqual(['a', 'b', 'b', 'c', 'd', 'x']);
}
