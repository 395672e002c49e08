import type { SqlExecutor } from './database.ts';
import { PG_QUEUE_DEFAULTS } from './pg-queue-options.ts';
import { PostgresConfigurationError } from './postgres-errors.ts';

/** Where the queue tables live. */
export interface PgQueueTableNames {
  /** Default `public`. */
  readonly schema?: string;
  /** Default `interchange_queue`; the dead letters go to `<table>_dead`. */
  readonly table?: string;
}

/** The resolved, quoted names of the queue's database objects. */
export interface PgQueueTables {
  /** Unquoted schema and table names (they name the `NOTIFY` channels). */
  readonly schemaName: string;
  readonly tableName: string;
  readonly schema: string;
  /** `"schema"."interchange_queue"`: one row per message waiting or in flight. */
  readonly queue: string;
  /** `"schema"."interchange_queue_dead"`: dead letters, with the reason. */
  readonly dead: string;
  /** The function that deletes acknowledged rows (without waiting for the WAL flush). */
  readonly ack: string;
  /** The function that claims and leases visible rows (without waiting for the WAL flush). */
  readonly claim: string;
}

const IDENTIFIER = /^[a-z_][a-z0-9_]{0,50}$/;

/**
 * Checks and quotes the names. Throws `PostgresConfigurationError` for a name that is not a plain lowercase identifier.
 * @example pgQueueTables({ schema: 'orders' }).queue // '"orders"."interchange_queue"'
 */
export function pgQueueTables({ schema = PG_QUEUE_DEFAULTS.schema, table = PG_QUEUE_DEFAULTS.table }: PgQueueTableNames = {}): PgQueueTables {
  for (const [kind, name] of [['schema', schema], ['table', table]] as const) {
    if (!IDENTIFIER.test(name)) throw new PostgresConfigurationError(`invalid pgqueue ${kind} name '${name}': lowercase letters, digits and _ only, at most 51, not starting with a digit`);
  }
  return {
    schemaName: schema,
    tableName: table,
    schema: `"${schema}"`,
    queue: `"${schema}"."${table}"`,
    dead: `"${schema}"."${table}_dead"`,
    ack: `"${schema}"."${table}_ack"`,
    claim: `"${schema}"."${table}_claim"`,
  };
}

/**
 * The DDL, one idempotent statement per entry (`IF NOT EXISTS`, `OR REPLACE`), for teams whose
 * migrations run through their own tool (then start the transport with `migrate: false`).
 *
 * Queue table: one row per message, all queues in one table (`queue` column: a new queue needs no
 * DDL; its primary key (`queue`, `id`) is the one index, and serves every queue). `id` (an identity)
 * is the FIFO order. A row is visible to a claim
 * when `visible_at <= now()`; a claim sets `visible_at` to the end of its lease and counts
 * `deliveries` — the pair (`id`, `deliveries`) names that one claim, so a consumer whose lease ran out
 * and was claimed again by another can no longer ack or nack it. Body: `body` (`json`, kept as
 * written: every JSON value round-trips, `\u0000` included, unlike `jsonb`) or `body_bytes` (`bytea`).
 *
 * Dead-letter table: the row as it was, its `deliveries`, the `reason` and `dead_at`.
 *
 * Claim function: first deletes the acknowledged claims it is given (the acks of the batch before,
 * so that a busy consumer writes one statement per batch, not two), then takes up to `p_limit` visible rows of a queue, oldest first, skipping rows another
 * claim holds (`FOR UPDATE SKIP LOCKED`), leases them (`visible_at`) and counts a delivery — updating
 * the row itself is what keeps a concurrent claim off it (its re-check sees the new `visible_at`). The
 * body of a row over `p_max_bytes` is not returned. It always walks the `(queue, id)` index in order
 * (its primary key, the only index; sequential and bitmap scans off for it): an estimate made while the
 * table was small must not turn a claim of 100 rows into a scan and sort of the whole backlog, nor a
 * walk of an `id` index over other queues' rows (measured, 20,000 rows: 5 to 150 ms a claim instead of
 * about 1 ms) — which is why the key is (`queue`, `id`) and every statement names the queue. The table's fillfactor leaves room on each page so
 * that the lease's update stays on the page (a HOT update: no index entry written).
 *
 * Ack and claim functions commit without waiting for the WAL flush: a PostgreSQL crash can only forget
 * a delete (the message is delivered again) or a lease (the message is visible again at once): a
 * duplicate, never a loss. Publishing (the insert) keeps its durability: it resolves once flushed.
 */
export function pgQueueMigrationStatements(tables: PgQueueTables): readonly string[] {
  const { schema, queue, dead, ack, claim, tableName } = tables;
  return [
    `CREATE SCHEMA IF NOT EXISTS ${schema}`,
    `CREATE TABLE IF NOT EXISTS ${queue} (
      id          bigint      GENERATED ALWAYS AS IDENTITY,
      queue       text        NOT NULL,
      message_id  text        NOT NULL,
      headers     json        NOT NULL DEFAULT '{}',
      body        json,
      body_bytes  bytea,
      enqueued_at timestamptz NOT NULL DEFAULT now(),
      visible_at  timestamptz NOT NULL DEFAULT '-infinity',
      deliveries  integer     NOT NULL DEFAULT 0,
      last_error  text,
      PRIMARY KEY (queue, id)
    ) WITH (fillfactor = 80)`,
    `CREATE TABLE IF NOT EXISTS ${dead} (
      id          bigint      PRIMARY KEY,
      queue       text        NOT NULL,
      message_id  text        NOT NULL,
      headers     json        NOT NULL DEFAULT '{}',
      body        json,
      body_bytes  bytea,
      enqueued_at timestamptz NOT NULL,
      deliveries  integer     NOT NULL,
      reason      text        NOT NULL,
      dead_at     timestamptz NOT NULL DEFAULT now()
    )`,
    `CREATE INDEX IF NOT EXISTS "${tableName}_dead_queue" ON ${dead} (queue, id)`,
    `CREATE OR REPLACE FUNCTION ${ack}(p_queue text, p_ids bigint[], p_deliveries integer[]) RETURNS integer LANGUAGE plpgsql VOLATILE AS $fn$
    DECLARE
      settled integer;
    BEGIN
      PERFORM set_config('synchronous_commit', 'off', true);
      DELETE FROM ${queue} q USING unnest(p_ids, p_deliveries) AS a(id, deliveries) WHERE q.queue = p_queue AND q.id = a.id AND q.deliveries = a.deliveries;
      GET DIAGNOSTICS settled = ROW_COUNT;
      RETURN settled;
    END $fn$`,
    `CREATE OR REPLACE FUNCTION ${claim}(p_queue text, p_limit integer, p_visibility_ms integer, p_max_bytes integer, p_ack_ids bigint[], p_ack_deliveries integer[])
    RETURNS TABLE (id text, message_id text, headers json, body json, body_bytes bytea, deliveries integer, size bigint)
    LANGUAGE plpgsql VOLATILE SET enable_seqscan = off SET enable_bitmapscan = off AS $fn$
    #variable_conflict use_column
    BEGIN
      PERFORM set_config('synchronous_commit', 'off', true);
      IF cardinality(p_ack_ids) > 0 THEN
        DELETE FROM ${queue} q USING unnest(p_ack_ids, p_ack_deliveries) AS a(id, deliveries) WHERE q.queue = p_queue AND q.id = a.id AND q.deliveries = a.deliveries;
      END IF;
      RETURN QUERY
      WITH picked AS (
        SELECT q.id FROM ${queue} q WHERE q.queue = p_queue AND q.visible_at <= now() ORDER BY q.id LIMIT p_limit FOR UPDATE SKIP LOCKED
      ), claimed AS (
        UPDATE ${queue} q SET visible_at = now() + make_interval(secs => p_visibility_ms / 1000.0), deliveries = q.deliveries + 1
        FROM picked WHERE q.queue = p_queue AND q.id = picked.id
        RETURNING q.id, q.message_id, q.headers, q.body, q.body_bytes, q.deliveries,
                  octet_length(q.headers::text) + coalesce(octet_length(q.body::text), 0) + coalesce(octet_length(q.body_bytes), 0) AS size
      )
      SELECT c.id::text, c.message_id, CASE WHEN c.size <= p_max_bytes THEN c.headers END, CASE WHEN c.size <= p_max_bytes THEN c.body END,
             CASE WHEN c.size <= p_max_bytes THEN c.body_bytes END, c.deliveries, c.size::bigint
      FROM claimed c ORDER BY c.id;
    END $fn$`,
  ];
}

/**
 * The same DDL as one script (Flyway, Liquibase, node-pg-migrate): run it, then start the transport with `migrate: false`.
 * @example writeFileSync('V8__interchange_queue.sql', pgQueueMigrationScript({ schema: 'jobs' }))
 */
export function pgQueueMigrationScript(names: PgQueueTableNames = {}): string {
  return `${pgQueueMigrationStatements(pgQueueTables(names)).join(';\n\n')};\n`;
}

/**
 * Creates (or completes) the queue tables in one transaction, serialised across processes by an advisory lock. Idempotent.
 * @example await migratePgQueue(db, { schema: 'jobs' })
 */
export async function migratePgQueue(db: { transaction<T>(work: (tx: SqlExecutor) => Promise<T>): Promise<T> }, names: PgQueueTableNames = {}): Promise<PgQueueTables> {
  const tables = pgQueueTables(names);
  await db.transaction(async (tx) => {
    await tx.query(`SELECT pg_advisory_xact_lock(hashtext('interchange.migrate'))`);
    for (const statement of pgQueueMigrationStatements(tables)) await tx.query(statement);
  });
  return tables;
}
