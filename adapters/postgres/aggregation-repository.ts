import { InterchangeError } from '../../src/core/index.ts';
import {
  completedAggregateOf,
  type AddOutcome,
  type CompletedAggregate,
  type Completion,
  type GroupWrite,
  type PersistentAggregationRepository,
  type StoredGroup,
} from '../../src/stores/persistent-aggregation-repository.ts';
import {
  ADD_FUNCTION_ARGUMENTS,
  ADD_FUNCTION_NAME,
  ADD_FUNCTION_RESULT,
  addFunctionResultExpression,
  addFunctionStatement,
  dropOutdatedAddFunctionStatement,
  OVERWRITE_COMPLETED,
} from './aggregation-add-function.ts';
import type { Database } from './database.ts';
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
  /** The function `add` calls: the whole fold of a batch in one statement (see `addFunctionStatement`). */
  readonly add: string;
}

/** Checks and quotes the table names. Throws `PostgresConfigurationError` for a schema that is not a plain lowercase identifier. */
export function aggregationTables(schema = 'public'): AggregationTables {
  const quoted = resolveTables({ schema }).schema;
  return {
    schema: quoted,
    groups: `${quoted}."interchange_aggregation_groups"`,
    completed: `${quoted}."interchange_aggregation_completed"`,
    seen: `${quoted}."interchange_aggregation_seen"`,
    add: `${quoted}."${ADD_FUNCTION_NAME}"`,
  };
}

/** The indexes `aggregationMigrationStatements` creates (unqualified names, in the repository's schema). */
const AGGREGATION_INDEXES = ['interchange_aggregation_groups_last_at', 'interchange_aggregation_completed_order', 'interchange_aggregation_seen_at'] as const;

/**
 * The DDL, one idempotent statement per entry (`IF NOT EXISTS`, `OR REPLACE`, and an add function
 * of an older result type dropped right before the current one is created: run them in one
 * transaction): for teams whose migrations run through their own tool. Values and input ids are
 * `json`, not `jsonb`: `json` keeps the text as written, so every JSON value round-trips (jsonb refuses `\u0000` in strings and reorders keys).
 */
export function aggregationMigrationStatements(schema = 'public'): readonly string[] {
  const tables = aggregationTables(schema);
  const { schema: quoted, groups, completed, seen } = tables;
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
    ...addFunctionStatements(tables),
  ];
}

/** The add function's DDL: an outdated one (other OUT columns) dropped, then the current one created. */
function addFunctionStatements(tables: AggregationTables): readonly string[] {
  return [dropOutdatedAddFunctionStatement(tables.add), addFunctionStatement(tables)];
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
 * Concurrency: each method is one statement (one round trip). `add` calls a PL/pgSQL function created
 * with the tables: it checks the write's input ids, then writes the group only at the expected version (a
 * conditional `UPDATE`/`DELETE`, or `INSERT … ON CONFLICT DO NOTHING` for version 0: a concurrent
 * writer waits on the row and then matches nothing: `conflict`), and returns `duplicate` or
 * `conflict` leaving nothing written (see `addFunctionStatement`). `claimUnconfirmed` takes rows with
 * `FOR UPDATE SKIP LOCKED`, so concurrent claimers never share an aggregate. Times are the `now`
 * clock's in whole milliseconds (fractions are dropped), compared in SQL.
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
   * Creates the tables and the add function if absent (idempotent; several processes starting at once
   * are serialised by the same advisory lock as `migrate`), then the repository. Tables made before the
   * function existed, or before it folded batches (`interchange_aggregation_add`, one id per write), get
   * the batch function alone; a batch function of other OUT columns (before it returned the version it
   * wrote) is replaced.
   */
  static async open<A>(database: Database, options: PostgresAggregationRepositoryOptions): Promise<PostgresAggregationRepository<A>> {
    const repository = new PostgresAggregationRepository<A>(database, options);
    // Already there (another instance made them): no DDL at all. `CREATE … IF NOT EXISTS` still takes
    // table locks, and against instances already folding into these tables that can deadlock.
    const missing = await repository.run('checking its tables', () => repository.missing());
    if (!missing.relations && !missing.function) return repository;
    const statements = missing.relations ? aggregationMigrationStatements(options.schema) : addFunctionStatements(repository.tables);
    await repository.run('creating its tables', () =>
      database.transaction(async (tx) => {
        await tx.query(`SELECT pg_advisory_xact_lock(hashtext('interchange.migrate'))`);
        for (const statement of statements) await tx.query(statement);
      }),
    );
    return repository;
  }

  /**
   * Whether a table or index of the repository is missing, and whether its add function is missing or
   * outdated (OUT columns other than `ADD_FUNCTION_RESULT`). Read from the catalog: no lock taken.
   */
  private async missing(): Promise<{ relations: boolean; function: boolean }> {
    const { schema } = this.tables;
    const names = [this.tables.groups, this.tables.completed, this.tables.seen, ...AGGREGATION_INDEXES.map((index) => `${schema}.${index}`)];
    const { rows } = await this.database.query<{ relations: number; result: string | null }>(
      `SELECT (SELECT count(*)::int FROM unnest($1::text[]) AS relation WHERE to_regclass(relation) IS NULL) AS relations, ${addFunctionResultExpression('$2::text')} AS result`,
      [names, `${this.tables.add}(${ADD_FUNCTION_ARGUMENTS})`],
    );
    return { relations: rows[0]?.relations !== 0, function: rows[0]?.result !== ADD_FUNCTION_RESULT };
  }

  get(key: string): Promise<StoredGroup<A> | undefined> {
    return this.run('get', async () => {
      const { rows } = await this.database.query<GroupRow>(`SELECT ${GROUP_COLUMNS} FROM ${this.tables.groups} WHERE name = $1 AND key = $2`, [this.name, key]);
      return rows[0] === undefined ? undefined : toGroup<A>(rows[0]);
    });
  }

  /**
   * One statement: the add function (see `addFunctionStatement`); values travel as parameters, as JSON
   * text, the input ids as a `text[]` (a repeated id is folded once).
   */
  async add(write: GroupWrite<A>): Promise<AddOutcome<A>> {
    const now = this.clock();
    await this.pruneIfDue(now);
    const next = copied(write.next);
    // Its version is the function's to tell (random for a new group).
    const group: Omit<StoredGroup<A>, 'version'> = { ...next, key: write.key, firstAt: Math.floor(next.firstAt), lastAt: Math.floor(next.lastAt) };
    const { completion } = write;
    const result = await this.run('add', async () => {
      const { rows } = await this.database.query<{ outcome: string; seen_ids: string[] | null; version: number | null }>(
        `SELECT outcome, seen_ids, version FROM ${this.tables.add}($1::text, $2::text, $3::text[], $4::integer, $5::json, $6::json, $7::text, $8::bigint, $9::bigint, $10::bigint, $11::bigint, $12::text, $13::text, $14::bigint)`,
        [
          this.name,
          write.key,
          [...new Set(write.inputIds)],
          write.expectedVersion,
          json(group.value),
          json(group.inputIds),
          group.correlationId,
          group.firstAt,
          group.lastAt,
          now,
          this.seenCutoff(now),
          completion?.id ?? null,
          completion?.completedBy ?? null,
          completion === undefined ? null : now + Math.ceil(completion.leaseMs),
        ],
      );
      return rows[0];
    });
    switch (result?.outcome) {
      case 'added':
        if (typeof result.version !== 'number') break;
        return { kind: 'added', group: { ...group, version: result.version } };
      case 'completed':
        if (completion === undefined) break;
        return { kind: 'completed', aggregate: completedAggregateOf(group, completion, now) };
      case 'duplicate':
        if (!Array.isArray(result.seen_ids)) break;
        return { kind: 'duplicate', inputIds: result.seen_ids };
      case 'conflict':
        return { kind: 'conflict' };
    }
    throw new DatabaseError(`aggregation repository '${this.name}': add failed: the add function returned ${JSON.stringify(result ?? null)}`);
  }

  complete(key: string, expectedVersion: number, completion: Completion): Promise<CompletedAggregate<A> | undefined> {
    return this.run('complete', async () => {
      const { rows } = await this.database.query<CompletedRow>(
        `WITH gone AS (DELETE FROM ${this.tables.groups} WHERE name = $1 AND key = $2 AND version = $3 RETURNING *)
         INSERT INTO ${this.tables.completed} AS c (name, id, key, value, input_ids, correlation_id, first_at, last_at, completed_by, completed_at, attempts, claimed_until)
         SELECT name, $4::text, key, value, input_ids, correlation_id, first_at, last_at, $5::text, $6::bigint, 1, $6::bigint + $7::bigint FROM gone
         ${OVERWRITE_COMPLETED}
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
      if (error instanceof InterchangeError) throw error;
      throw new DatabaseError(`aggregation repository '${this.name}': ${operation} failed: ${(error as Error).message}`, { cause: error });
    }
  }
}

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
