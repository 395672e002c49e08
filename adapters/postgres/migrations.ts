import type { SqlExecutor } from './database.ts';
import { PostgresConfigurationError } from './postgres-errors.ts';

/** Where the outbox and inbox live. Every test (or service) may use its own schema. */
export interface TableNames {
  /** Default `public`. */
  readonly schema?: string;
  /** Default `interchange_outbox`. */
  readonly outboxTable?: string;
  /** Default `interchange_inbox`. */
  readonly inboxTable?: string;
}

/** Resolved, quoted names of every database object the adapter uses. */
export interface ResolvedTables {
  readonly schema: string;
  /** `"schema"."interchange_outbox"` */
  readonly outbox: string;
  readonly inbox: string;
  /** The claim function (see `migrationStatements`). */
  readonly claim: string;
  /** The function that deletes (or marks) published rows. */
  readonly sent: string;
  /** The `NOTIFY` channel a committed insert into the outbox signals (an unquoted lowercase identifier). */
  readonly channel: string;
  /** Namespace of the relay's partition advisory locks, as an SQL expression. */
  readonly lockSpace: string;
}

const IDENTIFIER = /^[a-z_][a-z0-9_]{0,50}$/;

function checked(kind: string, name: string): string {
  if (!IDENTIFIER.test(name)) throw new PostgresConfigurationError(`invalid ${kind} name '${name}': lowercase letters, digits and _ only, at most 51, not starting with a digit`);
  return name;
}

/** Checks and quotes the names. Throws `PostgresConfigurationError` for a name that is not a plain lowercase identifier. */
export function resolveTables({ schema = 'public', outboxTable = 'interchange_outbox', inboxTable = 'interchange_inbox' }: TableNames = {}): ResolvedTables {
  checked('schema', schema);
  checked('table', outboxTable);
  checked('table', inboxTable);
  const channel = `${schema}_${outboxTable}`.slice(0, 63);
  return {
    schema: `"${schema}"`,
    outbox: `"${schema}"."${outboxTable}"`,
    inbox: `"${schema}"."${inboxTable}"`,
    claim: `"${schema}"."${outboxTable}_claim"`,
    sent: `"${schema}"."${outboxTable}_sent"`,
    channel,
    lockSpace: `hashtext('${schema}.${outboxTable}')`,
  };
}

/**
 * The DDL, one statement per entry; every statement is idempotent (`IF NOT EXISTS`, `OR REPLACE`),
 * so running it again — by several processes at once, too: `migrate` serialises them with an
 * advisory lock — changes nothing.
 *
 * Outbox: one row per message. `position` (a sequence) is the order rows are published in, per
 * partition key. A row is pending while `sent_at` and `parked_at` are null; a relay publishing a
 * partition leases the partition's head row (`locked_by`, `locked_until`); a failed attempt counts in `attempts`, keeps
 * `last_error` and waits until `next_attempt_at`; a row that keeps failing gets `parked_at` and is
 * left aside (not deleted) for an operator. An `AFTER INSERT … FOR EACH STATEMENT` trigger
 * `NOTIFY`s the relay when the inserting transaction commits.
 *
 * Claim function: see `outbox-relay.ts` for why it is shaped this way.
 *
 * Inbox: one row per (consumer, message id) processed; `processed_at` null means claimed and in
 * progress until `lease_until` (the non-transactional `IdempotencyStore` use).
 */
export function migrationStatements(tables: ResolvedTables): readonly string[] {
  const { schema, outbox, inbox, claim, sent, channel, lockSpace } = tables;
  const bare = (quoted: string): string => quoted.slice(quoted.lastIndexOf('.') + 2, -1);
  const outboxName = bare(outbox);
  const inboxName = bare(inbox);
  return [
    `CREATE SCHEMA IF NOT EXISTS ${schema}`,
    `CREATE TABLE IF NOT EXISTS ${outbox} (
      position        bigserial   PRIMARY KEY,
      message_id      text        NOT NULL,
      destination     text        NOT NULL,
      partition_key   text        NOT NULL,
      headers         jsonb       NOT NULL DEFAULT '{}',
      body            jsonb,
      body_bytes      bytea,
      created_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
      attempts        integer     NOT NULL DEFAULT 0,
      next_attempt_at timestamptz NOT NULL DEFAULT '-infinity',
      locked_by       text,
      locked_until    timestamptz,
      last_error      text,
      parked_at       timestamptz,
      sent_at         timestamptz
    )`,
    `CREATE INDEX IF NOT EXISTS ${outboxName}_pending ON ${outbox} (position) WHERE sent_at IS NULL AND parked_at IS NULL`,
    `CREATE INDEX IF NOT EXISTS ${outboxName}_partition ON ${outbox} (partition_key, position) WHERE sent_at IS NULL AND parked_at IS NULL`,
    `CREATE INDEX IF NOT EXISTS ${outboxName}_sent ON ${outbox} (sent_at) WHERE sent_at IS NOT NULL`,
    `CREATE INDEX IF NOT EXISTS ${outboxName}_parked ON ${outbox} (parked_at) WHERE parked_at IS NOT NULL`,
    `CREATE OR REPLACE FUNCTION ${schema}."${outboxName}_notify"() RETURNS trigger LANGUAGE plpgsql AS $fn$
    BEGIN
      PERFORM pg_notify('${channel}', '');
      RETURN NULL;
    END $fn$`,
    `CREATE OR REPLACE TRIGGER "${outboxName}_notify" AFTER INSERT ON ${outbox} FOR EACH STATEMENT EXECUTE FUNCTION ${schema}."${outboxName}_notify"()`,
    // Claims at most p_batch rows: whole prefixes of partitions whose rows are due and not leased,
    // leasing each partition's head row. See outbox-relay.ts for why it is shaped this way.
    `CREATE OR REPLACE FUNCTION ${claim}(p_relay text, p_batch integer, p_scan integer, p_lease_ms integer)
    RETURNS SETOF ${outbox} LANGUAGE plpgsql VOLATILE AS $fn$
    DECLARE
      candidate record;
      chosen_keys text[] := '{}';
      chosen_limits integer[] := '{}';
      total integer := 0;
    BEGIN
      -- Leases commit durably: a lease forgotten by a PostgreSQL crash while its relay still
      -- publishes would let a second relay publish the same partition at the same time.
      FOR candidate IN
        SELECT g.partition_key, g.n FROM (
          SELECT w.partition_key, count(*)::integer AS n, min(w.position) AS head,
                 bool_and(w.next_attempt_at <= now() AND (w.locked_until IS NULL OR w.locked_until <= now())) AS free
          FROM (SELECT o.partition_key, o.position, o.next_attempt_at, o.locked_until FROM ${outbox} o
                WHERE o.sent_at IS NULL AND o.parked_at IS NULL ORDER BY o.position LIMIT p_scan) w
          GROUP BY w.partition_key
        ) g
        WHERE g.free
        ORDER BY g.head
      LOOP
        CONTINUE WHEN NOT pg_try_advisory_xact_lock(${lockSpace}, hashtext(candidate.partition_key));
        chosen_keys := chosen_keys || candidate.partition_key;
        chosen_limits := chosen_limits || candidate.n;
        total := total + candidate.n;
        EXIT WHEN total >= p_batch;
      END LOOP;
      IF cardinality(chosen_keys) = 0 THEN
        RETURN;
      END IF;
      -- A new statement of a VOLATILE function takes a new snapshot: taken after the partition locks,
      -- it sees every lease and delete committed by the relay that held a partition before.
      RETURN QUERY
      WITH candidates AS (
        SELECT r.*,
               bool_and(r.next_attempt_at <= now() AND (r.locked_until IS NULL OR r.locked_until <= now()))
                 OVER (PARTITION BY r.partition_key ORDER BY r.position) AS ok,
               row_number() OVER (PARTITION BY r.partition_key ORDER BY r.position) AS rn
        FROM unnest(chosen_keys, chosen_limits) AS k(key, lim)
        CROSS JOIN LATERAL (
          SELECT o.* FROM ${outbox} o
          WHERE o.partition_key = k.key AND o.sent_at IS NULL AND o.parked_at IS NULL
          ORDER BY o.position LIMIT k.lim
        ) r
      ), taken AS (
        SELECT c.* FROM candidates c WHERE c.ok ORDER BY c.position LIMIT p_batch
      ), heads AS (
        SELECT o.position FROM ${outbox} o JOIN taken t ON t.position = o.position AND t.rn = 1
        FOR UPDATE OF o SKIP LOCKED
      ), leased AS (
        UPDATE ${outbox} o SET locked_by = p_relay, locked_until = now() + make_interval(secs => p_lease_ms / 1000.0)
        FROM heads h WHERE o.position = h.position
        RETURNING o.partition_key
      )
      SELECT t.position, t.message_id, t.destination, t.partition_key, t.headers, t.body, t.body_bytes, t.created_at,
             t.attempts, t.next_attempt_at, p_relay, t.locked_until, t.last_error, t.parked_at, t.sent_at
      FROM taken t WHERE t.partition_key IN (SELECT l.partition_key FROM leased l)
      ORDER BY t.position;
    END $fn$`,
    // Settles published rows: deletes them, or marks them sent (retention). Commits without waiting
    // for the WAL flush: a crash can only forget a delete, and the row is published again (a
    // duplicate, never a loss); the services' own transactions keep their durability.
    `CREATE OR REPLACE FUNCTION ${sent}(p_positions bigint[], p_keep boolean) RETURNS integer LANGUAGE plpgsql VOLATILE AS $fn$
    DECLARE
      settled integer;
    BEGIN
      PERFORM set_config('synchronous_commit', 'off', true);
      IF p_keep THEN
        UPDATE ${outbox} SET sent_at = now(), locked_by = NULL, locked_until = NULL WHERE position = ANY(p_positions);
      ELSE
        DELETE FROM ${outbox} WHERE position = ANY(p_positions);
      END IF;
      GET DIAGNOSTICS settled = ROW_COUNT;
      RETURN settled;
    END $fn$`,
    `CREATE TABLE IF NOT EXISTS ${inbox} (
      consumer     text        NOT NULL,
      message_id   text        NOT NULL,
      received_at  timestamptz NOT NULL DEFAULT now(),
      processed_at timestamptz,
      lease_until  timestamptz,
      PRIMARY KEY (consumer, message_id)
    )`,
    `CREATE INDEX IF NOT EXISTS ${inboxName}_processed ON ${inbox} (processed_at)`,
  ];
}

/**
 * The same DDL as one script, for teams whose migrations run through their own tool (Flyway,
 * Liquibase, node-pg-migrate): run it, then start relays with `migrate: false`.
 * @example writeFileSync('V7__interchange_outbox.sql', migrationScript({ schema: 'orders' }))
 */
export function migrationScript(names: TableNames = {}): string {
  return `${migrationStatements(resolveTables(names)).join(';\n\n')};\n`;
}

/**
 * Creates (or completes) the outbox and inbox in one transaction, serialised across processes by an
 * advisory lock. Idempotent: safe at every start.
 * @example await migrate(db, { schema: 'orders' })
 */
export async function migrate(db: { transaction<T>(work: (tx: SqlExecutor) => Promise<T>): Promise<T> }, names: TableNames = {}): Promise<ResolvedTables> {
  const tables = resolveTables(names);
  await db.transaction(async (tx) => {
    await tx.query(`SELECT pg_advisory_xact_lock(hashtext('interchange.migrate'))`);
    for (const statement of migrationStatements(tables)) await tx.query(statement);
  });
  return tables;
}
