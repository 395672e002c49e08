import { InterchangeError } from '../../src/core/index.ts';
import type {
  AddOutcome,
  CompletedAggregate,
  Completion,
  GroupWrite,
  PersistentAggregationRepository,
  StoredGroup,
} from '../../src/stores/persistent-aggregation-repository.ts';
import type { Database, SqlExecutor } from './database.ts';
import { resolveTables } from './migrations.ts';
import { DatabaseError, PostgresConfigurationError } from './postgres-errors.ts';

export interface PostgresAggregationRepositoryOptions {
  /** The aggregator's namespace in the shared tables (required): instances of one aggregator share it. */
  readonly name: string;
  /** Where the tables live (default `public`); a plain lowercase identifier. */
  readonly schema?: string;
  /** How long folded input ids are remembered (default 24 h). */
  readonly seenRetentionMs?: number;
  /** The clock (epoch ms, default `Date.now`): every time the repository stores or compares is this clock's. */
  readonly now?: () => number;
}

/** The quoted names of the repository's tables. */
export interface AggregationTables {
  readonly schema: string;
  readonly groups: string;
  readonly completed: string;
  readonly seen: string;
}

/** Checks and quotes the table names. Throws `PostgresConfigurationError` for a schema that is not a plain lowercase identifier. */
export function aggregationTables(schema = 'public'): AggregationTables {
  const quoted = resolveTables({ schema }).schema;
  return {
    schema: quoted,
    groups: `${quoted}."interchange_aggregation_groups"`,
    completed: `${quoted}."interchange_aggregation_completed"`,
    seen: `${quoted}."interchange_aggregation_seen"`,
  };
}

/** The indexes `aggregationMigrationStatements` creates (unqualified names, in the repository's schema). */
const AGGREGATION_INDEXES = ['interchange_aggregation_groups_last_at', 'interchange_aggregation_completed_order', 'interchange_aggregation_seen_at'] as const;

/**
 * The DDL, one idempotent statement per entry (`IF NOT EXISTS`): for teams whose migrations run
 * through their own tool. Values and input ids are `json`, not `jsonb`: `json` keeps the text as
 * written, so every JSON value round-trips (jsonb refuses `\u0000` in strings and reorders keys).
 */
export function aggregationMigrationStatements(schema = 'public'): readonly string[] {
  const { schema: quoted, groups, completed, seen } = aggregationTables(schema);
  return [
    `CREATE SCHEMA IF NOT EXISTS ${quoted}`,
    `CREATE TABLE IF NOT EXISTS ${groups} (
      name           text    NOT NULL,
      key            text    NOT NULL,
      value          json,
      input_ids      json    NOT NULL,
      correlation_id text    NOT NULL,
      first_at       bigint  NOT NULL,
      last_at        bigint  NOT NULL,
      version        integer NOT NULL,
      PRIMARY KEY (name, key)
    )`,
    `CREATE INDEX IF NOT EXISTS interchange_aggregation_groups_last_at ON ${groups} (name, last_at)`,
    `CREATE TABLE IF NOT EXISTS ${completed} (
      name           text    NOT NULL,
      id             text    NOT NULL,
      key            text    NOT NULL,
      value          json,
      input_ids      json    NOT NULL,
      correlation_id text    NOT NULL,
      first_at       bigint  NOT NULL,
      last_at        bigint  NOT NULL,
      completed_by   text    NOT NULL,
      completed_at   bigint  NOT NULL,
      attempts       integer NOT NULL,
      claimed_until  bigint  NOT NULL,
      position       bigint  GENERATED ALWAYS AS IDENTITY,
      PRIMARY KEY (name, id)
    )`,
    `CREATE INDEX IF NOT EXISTS interchange_aggregation_completed_order ON ${completed} (name, completed_at, position)`,
    `CREATE TABLE IF NOT EXISTS ${seen} (
      name     text   NOT NULL,
      key      text   NOT NULL,
      input_id text   NOT NULL,
      seen_at  bigint NOT NULL,
      PRIMARY KEY (name, key, input_id)
    )`,
    `CREATE INDEX IF NOT EXISTS interchange_aggregation_seen_at ON ${seen} (name, seen_at)`,
  ];
}

interface GroupRow {
  key: string;
  value: unknown;
  input_ids: string[];
  correlation_id: string;
  first_at: string | number;
  last_at: string | number;
  version: number;
}

interface CompletedRow extends Omit<GroupRow, 'version'> {
  id: string;
  completed_by: string;
  completed_at: string | number;
  attempts: number;
}

/** Ends a transaction with a rollback and an outcome (not an error). */
class Outcome {
  constructor(readonly kind: 'duplicate' | 'conflict') {}
}

const GROUP_COLUMNS = 'key, value, input_ids, correlation_id, first_at, last_at, version';
const COMPLETED_COLUMNS = 'id, key, value, input_ids, correlation_id, first_at, last_at, completed_by, completed_at, attempts';
/** Seen ids are pruned at most this often per instance (they are ignored once older than the retention anyway). */
const PRUNE_EVERY_MS = 60_000;
/** Seen ids deleted per pruning statement, so one prune never holds locks for long. */
const PRUNE_BATCH = 10_000;

/**
 * The durable, shared aggregation repository on PostgreSQL — node-postgres or PGlite, the same SQL
 * (Camel's JdbcAggregationRepository). Three tables shared by every aggregator, each row under the
 * aggregator's `name`: open groups, completed aggregates not yet confirmed, and the input ids folded
 * in (for duplicate detection, kept `seenRetentionMs`).
 *
 * Concurrency: each method is one transaction or one statement. `add` inserts the seen id first (a
 * concurrent copy of the same input waits on its row and then finds it: `duplicate`), then writes the
 * group only at the expected version (a conditional `UPDATE`/`DELETE`, or `INSERT … ON CONFLICT DO
 * NOTHING` for version 0: a concurrent writer waits on the row and then matches nothing: `conflict`);
 * either outcome rolls the whole transaction back. `claimUnconfirmed` takes rows with `FOR UPDATE SKIP
 * LOCKED`, so concurrent claimers never share an aggregate. Times are the `now` clock's in whole
 * milliseconds (fractions are dropped), compared in SQL.
 *
 * Errors: a failed statement rejects with `DatabaseError` (transient: the aggregator redelivers the
 * input); invalid options throw `PostgresConfigurationError`. The database is the caller's: `close`
 * leaves it open. Tables: `open` creates them, or run `aggregationMigrationStatements` yourself.
 * @example
 * const repository = await PostgresAggregationRepository.open<Order[]>(await openDatabase(), { name: 'order-batches' });
 */
export class PostgresAggregationRepository<A> implements PersistentAggregationRepository<A> {
  readonly name: string;
  readonly tables: AggregationTables;
  private readonly retentionMs: number;
  private readonly now: () => number;
  private prunedAt = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly database: Database,
    { name, schema = 'public', seenRetentionMs = 24 * 60 * 60 * 1000, now = Date.now }: PostgresAggregationRepositoryOptions,
  ) {
    if (typeof name !== 'string' || name.length === 0) throw new PostgresConfigurationError('the aggregation repository needs a name (its namespace in the shared tables)');
    if (Number.isNaN(seenRetentionMs) || seenRetentionMs < 0) throw new PostgresConfigurationError(`seenRetentionMs must be a number >= 0 (Infinity: never forget), not ${seenRetentionMs}`);
    this.name = name;
    this.tables = aggregationTables(schema);
    this.retentionMs = seenRetentionMs;
    this.now = now;
  }

  /**
   * Creates the tables if absent (idempotent; several processes starting at once are serialised by the
   * same advisory lock as `migrate`), then the repository.
   */
  static async open<A>(database: Database, options: PostgresAggregationRepositoryOptions): Promise<PostgresAggregationRepository<A>> {
    const repository = new PostgresAggregationRepository<A>(database, options);
    // Already there (another instance made them): no DDL at all. `CREATE … IF NOT EXISTS` still takes
    // table locks, and against instances already folding into these tables that can deadlock.
    if (await repository.run('checking its tables', () => repository.tablesExist())) return repository;
    await repository.run('creating its tables', () =>
      database.transaction(async (tx) => {
        await tx.query(`SELECT pg_advisory_xact_lock(hashtext('interchange.migrate'))`);
        for (const statement of aggregationMigrationStatements(options.schema)) await tx.query(statement);
      }),
    );
    return repository;
  }

  /** Whether every table and index of the repository exists (read from the catalog: no lock taken). */
  private async tablesExist(): Promise<boolean> {
    const { schema } = this.tables;
    const names = [this.tables.groups, this.tables.completed, this.tables.seen, ...AGGREGATION_INDEXES.map((index) => `${schema}.${index}`)];
    const { rows } = await this.database.query<{ missing: number }>(`SELECT count(*)::int AS missing FROM unnest($1::text[]) AS relation WHERE to_regclass(relation) IS NULL`, [names]);
    return rows[0]?.missing === 0;
  }

  get(key: string): Promise<StoredGroup<A> | undefined> {
    return this.run('get', async () => {
      const { rows } = await this.database.query<GroupRow>(`SELECT ${GROUP_COLUMNS} FROM ${this.tables.groups} WHERE name = $1 AND key = $2`, [this.name, key]);
      return rows[0] === undefined ? undefined : toGroup<A>(rows[0]);
    });
  }

  async add(write: GroupWrite<A>): Promise<AddOutcome<A>> {
    const now = this.clock();
    await this.pruneIfDue(now);
    const next = copied(write.next);
    const group: StoredGroup<A> = { ...next, key: write.key, firstAt: Math.floor(next.firstAt), lastAt: Math.floor(next.lastAt), version: write.expectedVersion + 1 };
    try {
      return await this.run('add', () =>
        this.database.transaction(async (tx): Promise<AddOutcome<A>> => {
          await this.remember(tx, write.key, write.inputId, now);
          if (write.completion === undefined) {
            await this.writeGroup(tx, group, write.expectedVersion);
            return { kind: 'added', group };
          }
          if (write.expectedVersion === 0) {
            // A group of one input: its row is written and removed, which makes a concurrent first write wait on it.
            await this.writeGroup(tx, group, 0);
            await tx.query(`DELETE FROM ${this.tables.groups} WHERE name = $1 AND key = $2`, [this.name, write.key]);
          }
          const aggregate = await this.store(tx, group, write.completion, now, write.expectedVersion === 0 ? undefined : write.expectedVersion);
          if (aggregate === undefined) throw new Outcome('conflict');
          return { kind: 'completed', aggregate };
        }),
      );
    } catch (error) {
      if (error instanceof Outcome) return { kind: error.kind };
      throw error;
    }
  }

  complete(key: string, expectedVersion: number, completion: Completion): Promise<CompletedAggregate<A> | undefined> {
    return this.run('complete', async () => {
      const { rows } = await this.database.query<CompletedRow>(
        `WITH gone AS (DELETE FROM ${this.tables.groups} WHERE name = $1 AND key = $2 AND version = $3 RETURNING *)
         INSERT INTO ${this.tables.completed} AS c (name, id, key, value, input_ids, correlation_id, first_at, last_at, completed_by, completed_at, attempts, claimed_until)
         SELECT name, $4::text, key, value, input_ids, correlation_id, first_at, last_at, $5::text, $6::bigint, 1, $6::bigint + $7::bigint FROM gone
         ${OVERWRITE}
         RETURNING ${COMPLETED_COLUMNS}`,
        [this.name, key, expectedVersion, completion.id, completion.completedBy, this.clock(), Math.ceil(completion.leaseMs)],
      );
      return rows[0] === undefined ? undefined : toAggregate<A>(rows[0]);
    });
  }

  confirm(id: string): Promise<void> {
    return this.run('confirm', async () => {
      await this.database.query(`DELETE FROM ${this.tables.completed} WHERE name = $1 AND id = $2`, [this.name, id]);
    });
  }

  release(id: string): Promise<void> {
    return this.run('release', async () => {
      await this.database.query(`UPDATE ${this.tables.completed} SET claimed_until = 0 WHERE name = $1 AND id = $2`, [this.name, id]);
    });
  }

  async expired(before: number, limit: number): Promise<StoredGroup<A>[]> {
    await this.pruneIfDue(this.clock());
    return this.run('expired', async () => {
      const { rows } = await this.database.query<GroupRow>(
        `SELECT ${GROUP_COLUMNS} FROM ${this.tables.groups} WHERE name = $1 AND last_at <= $2 ORDER BY last_at, key LIMIT $3`,
        [this.name, Math.floor(before), Math.max(0, Math.floor(limit))],
      );
      return rows.map((row) => toGroup<A>(row));
    });
  }

  claimUnconfirmed(leaseMs: number, limit: number): Promise<CompletedAggregate<A>[]> {
    return this.run('claimUnconfirmed', async () => {
      const now = this.clock();
      const { rows } = await this.database.query<CompletedRow & { position: string | number }>(
        `WITH picked AS (
           SELECT id FROM ${this.tables.completed} WHERE name = $1 AND claimed_until <= $2::bigint
           ORDER BY completed_at, position LIMIT $3 FOR UPDATE SKIP LOCKED
         )
         UPDATE ${this.tables.completed} c SET attempts = c.attempts + 1, claimed_until = $2::bigint + $4::bigint
         FROM picked WHERE c.name = $1 AND c.id = picked.id
         RETURNING ${COMPLETED_COLUMNS.split(', ').map((column) => `c.${column}`).join(', ')}, c.position`,
        [this.name, now, Math.max(0, Math.floor(limit)), Math.ceil(leaseMs)],
      );
      const order = (row: CompletedRow & { position: string | number }): [number, number] => [Number(row.completed_at), Number(row.position)];
      rows.sort((a, b) => order(a)[0] - order(b)[0] || order(a)[1] - order(b)[1]);
      return rows.map((row) => toAggregate<A>(row));
    });
  }

  counts(): Promise<{ readonly open: number; readonly completed: number }> {
    return this.run('counts', async () => {
      const { rows } = await this.database.query<{ open: string | number; completed: string | number }>(
        `SELECT (SELECT count(*) FROM ${this.tables.groups} WHERE name = $1) AS open, (SELECT count(*) FROM ${this.tables.completed} WHERE name = $1) AS completed`,
        [this.name],
      );
      return { open: Number(rows[0]?.open ?? 0), completed: Number(rows[0]?.completed ?? 0) };
    });
  }

  /** The database is the caller's: nothing to release. */
  close(): Promise<void> {
    return Promise.resolve();
  }

  /** Records the input id, or rolls back with `duplicate`. An id older than the retention counts as unseen (and is re-stamped). */
  private async remember(tx: SqlExecutor, key: string, inputId: string, now: number): Promise<void> {
    const { rowCount } = await tx.query(
      `INSERT INTO ${this.tables.seen} AS s (name, key, input_id, seen_at) VALUES ($1, $2, $3, $4)
       ON CONFLICT (name, key, input_id) DO UPDATE SET seen_at = EXCLUDED.seen_at WHERE s.seen_at <= $5`,
      [this.name, key, inputId, now, this.seenCutoff(now)],
    );
    if (rowCount === 0) throw new Outcome('duplicate');
  }

  /** Writes the open group at `expectedVersion + 1`, or rolls back with `conflict`. */
  private async writeGroup(tx: SqlExecutor, group: StoredGroup<A>, expectedVersion: number): Promise<void> {
    const values = [this.name, group.key, json(group.value), json(group.inputIds), group.correlationId, group.firstAt, group.lastAt, group.version];
    const { rowCount } =
      expectedVersion === 0
        ? await tx.query(
            `INSERT INTO ${this.tables.groups} (name, key, value, input_ids, correlation_id, first_at, last_at, version)
             VALUES ($1, $2, $3::json, $4::json, $5, $6, $7, $8) ON CONFLICT (name, key) DO NOTHING`,
            values,
          )
        : await tx.query(
            `UPDATE ${this.tables.groups} SET value = $3::json, input_ids = $4::json, correlation_id = $5, first_at = $6, last_at = $7, version = $8
             WHERE name = $1 AND key = $2 AND version = $9`,
            [...values, expectedVersion],
          );
    if (rowCount === 0) throw new Outcome('conflict');
  }

  /**
   * Stores the completed aggregate, claimed for `leaseMs`. With `removeVersion`, in the same statement
   * removes the open group at that version, and stores nothing (undefined) when it is not there.
   */
  private async store(tx: SqlExecutor, group: StoredGroup<A>, completion: Completion, now: number, removeVersion?: number): Promise<CompletedAggregate<A> | undefined> {
    const aggregate: CompletedAggregate<A> = {
      id: completion.id,
      key: group.key,
      value: group.value,
      inputIds: group.inputIds,
      correlationId: group.correlationId,
      firstAt: group.firstAt,
      lastAt: group.lastAt,
      completedBy: completion.completedBy,
      completedAt: now,
      attempts: 1,
    };
    const values = [this.name, aggregate.id, aggregate.key, json(aggregate.value), json(aggregate.inputIds), aggregate.correlationId, aggregate.firstAt, aggregate.lastAt, aggregate.completedBy, now, now + Math.ceil(completion.leaseMs)];
    const insert = `INSERT INTO ${this.tables.completed} AS c (name, id, key, value, input_ids, correlation_id, first_at, last_at, completed_by, completed_at, attempts, claimed_until)`;
    const { rowCount } =
      removeVersion === undefined
        ? await tx.query(`${insert} VALUES ($1, $2, $3, $4::json, $5::json, $6, $7, $8, $9, $10, 1, $11) ${OVERWRITE}`, values)
        : await tx.query(
            `WITH gone AS (DELETE FROM ${this.tables.groups} WHERE name = $1 AND key = $3 AND version = $12 RETURNING key)
             ${insert} SELECT $1::text, $2::text, $3::text, $4::json, $5::json, $6::text, $7::bigint, $8::bigint, $9::text, $10::bigint, 1, $11::bigint FROM gone ${OVERWRITE}`,
            [...values, removeVersion],
          );
    return rowCount === 0 ? undefined : aggregate;
  }

  /** Forgets seen ids older than the retention, at most every `PRUNE_EVERY_MS` per instance, in bounded batches. */
  private async pruneIfDue(now: number): Promise<void> {
    if (!Number.isFinite(this.retentionMs) || now - this.prunedAt < Math.min(PRUNE_EVERY_MS, this.retentionMs)) return;
    this.prunedAt = now;
    await this.run('pruning seen input ids', () =>
      this.database.query(
        `DELETE FROM ${this.tables.seen} WHERE ctid IN (SELECT ctid FROM ${this.tables.seen} WHERE name = $1 AND seen_at <= $2 LIMIT ${PRUNE_BATCH})`,
        [this.name, this.seenCutoff(now)],
      ),
    );
  }

  /** Seen ids stamped at or before this are forgotten. */
  private seenCutoff(now: number): number {
    return Number.isFinite(this.retentionMs) ? now - Math.ceil(this.retentionMs) : Number.MIN_SAFE_INTEGER;
  }

  /** The clock in whole milliseconds (the tables keep bigint). */
  private clock(): number {
    return Math.floor(this.now());
  }

  /** Runs one store operation; a failure that is not already typed becomes a `DatabaseError` naming it. */
  private async run<T>(operation: string, work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (error) {
      if (error instanceof Outcome || error instanceof InterchangeError) throw error;
      throw new DatabaseError(`aggregation repository '${this.name}': ${operation} failed: ${(error as Error).message}`, { cause: error });
    }
  }
}

/** A completion overwrites an unconfirmed aggregate of the same id, as the reference implementation does. */
const OVERWRITE = `ON CONFLICT (name, id) DO UPDATE SET key = EXCLUDED.key, value = EXCLUDED.value, input_ids = EXCLUDED.input_ids,
  correlation_id = EXCLUDED.correlation_id, first_at = EXCLUDED.first_at, last_at = EXCLUDED.last_at, completed_by = EXCLUDED.completed_by,
  completed_at = EXCLUDED.completed_at, attempts = 1, claimed_until = EXCLUDED.claimed_until`;

function toGroup<A>(row: GroupRow): StoredGroup<A> {
  return {
    key: row.key,
    value: row.value as A,
    inputIds: row.input_ids,
    correlationId: row.correlation_id,
    firstAt: Number(row.first_at),
    lastAt: Number(row.last_at),
    version: row.version,
  };
}

function toAggregate<A>(row: CompletedRow): CompletedAggregate<A> {
  return {
    id: row.id,
    key: row.key,
    value: row.value as A,
    inputIds: row.input_ids,
    correlationId: row.correlation_id,
    firstAt: Number(row.first_at),
    lastAt: Number(row.last_at),
    completedBy: row.completed_by,
    completedAt: Number(row.completed_at),
    attempts: row.attempts,
  };
}

/** A value as the JSON text stored (pg would turn a JS array into an SQL array). */
function json(value: unknown): string | null {
  return JSON.stringify(value) ?? null;
}

function copied<T>(value: T): T {
  return JSON.parse(JSON.stringify(value)) as T;
}
