import type { Queryable, SqlExecutor, SqlResult } from './database.ts';
import type { PgQueueClaimedRow, PgQueueRowValues } from './pg-queue-codec.ts';
import type { PgQueueTables } from './pg-queue-migrations.ts';
import { DatabaseError } from './postgres-errors.ts';

/** One claim of one row: its id and its deliveries count at that claim (the token every settlement names). */
export interface PgQueueClaim {
  readonly rowId: string;
  readonly deliveries: number;
}

/** A queue's depth, counted in its table. */
export interface PgQueueDepth {
  /** Messages a claim would take now. */
  readonly ready: number;
  /** Messages claimed and not yet settled (their lease running), or waiting for their redelivery backoff. */
  readonly invisible: number;
  /** Messages in the dead-letter table. */
  readonly dead: number;
}

/** A dead letter, as an operator sees it. */
export interface PgQueueDeadLetter {
  readonly rowId: string;
  readonly messageId: string;
  readonly deliveries: number;
  readonly reason: string;
  readonly deadAt: Date;
}

/**
 * The SQL of the queue, one statement per operation (each its own transaction unless run on a caller's
 * `tx`). Every settlement names its claims by (`id`, `deliveries`): a claim whose lease ran out and
 * was taken by another consumer is no longer this consumer's to settle, and its statement matches
 * nothing. Plain class, no state but the names.
 */
export class PgQueueStore {
  constructor(
    private readonly db: SqlExecutor,
    readonly tables: PgQueueTables,
  ) {}

  /**
   * The statements on `db`, each rejecting with `DatabaseError` (transient: retried like a lost link)
   * when it has no answer within `timeoutMs`: a link that drops packets without a reset would
   * otherwise hang it until TCP gives up. The statement itself is abandoned, not cancelled: the
   * server may still complete it (a claim's rows then come back when their lease runs out).
   */
  static bounded(db: SqlExecutor, tables: PgQueueTables, timeoutMs: number): PgQueueStore {
    return new PgQueueStore(
      {
        query: <R extends object>(text: string, params?: readonly unknown[]): Promise<SqlResult<R>> =>
          answeredWithin(db.query<R>(text, params), timeoutMs, () => new DatabaseError(`pgqueue: statement not answered within ${timeoutMs} ms (statementTimeoutMs): the link to PostgreSQL is silent`)),
      },
      tables,
    );
  }

  /** The same statements on a caller's connection or transaction (only `insert` is meant for it). */
  static on(tx: Queryable, tables: PgQueueTables): PgQueueStore {
    return new PgQueueStore(
      {
        query: async <R extends object>(text: string, params?: readonly unknown[]) => {
          const result = (await tx.query(text, params === undefined ? undefined : [...params])) as { rows: R[]; rowCount?: number | null };
          return { rows: result.rows, rowCount: result.rowCount ?? result.rows.length };
        },
      },
      tables,
    );
  }

  /**
   * Inserts `rows` into `queue` in this order (ids ascending) and notifies `channel`, in one statement:
   * the notification goes out when the statement's transaction commits (at once, or at the caller's
   * COMMIT when run on its `tx`).
   */
  async insert(queue: string, channel: string, rows: readonly PgQueueRowValues[]): Promise<void> {
    if (rows.length === 0) return;
    const ids: string[] = [];
    const headers: string[] = [];
    const bodies: (string | null)[] = [];
    const bytes: (Uint8Array | null)[] = [];
    for (const row of rows) {
      ids.push(row.id);
      headers.push(row.headers);
      bodies.push(row.body);
      bytes.push(row.bytes === null ? null : Buffer.from(row.bytes.buffer, row.bytes.byteOffset, row.bytes.byteLength));
    }
    await this.db.query(
      `WITH inserted AS (
         INSERT INTO ${this.tables.queue} (queue, message_id, headers, body, body_bytes)
         SELECT $1, m.id, m.headers::json, m.body::json, m.bytes FROM unnest($2::text[], $3::text[], $4::text[], $5::bytea[]) WITH ORDINALITY AS m(id, headers, body, bytes, ord)
         ORDER BY m.ord
       )
       SELECT pg_notify($6, '')`,
      [queue, ids, headers, bodies, bytes, channel],
    );
  }

  /**
   * Claims up to `limit` visible rows of `queue`, oldest first, skipping rows other claims hold
   * (`FOR UPDATE SKIP LOCKED`), and leases them for `visibilityMs` (`visible_at`), counting a
   * delivery (the claim function, see `pgQueueMigrationStatements`), after deleting the acknowledged
   * claims `acks` in the same statement. The body of a row over
   * `maxBytes` is not read. Rows come back in id order.
   */
  async claim(queue: string, limit: number, visibilityMs: number, maxBytes: number, acks: readonly PgQueueClaim[] = []): Promise<PgQueueClaimedRow[]> {
    const { rows } = await this.db.query<PgQueueClaimedRow>(`SELECT * FROM ${this.tables.claim}($1, $2, $3, $4, $5::bigint[], $6::integer[])`, [
      queue,
      limit,
      visibilityMs,
      maxBytes,
      acks.map((claim) => claim.rowId),
      acks.map((claim) => claim.deliveries),
    ]);
    return rows;
  }

  /** Deletes acknowledged claims (see the ack function: no wait for the WAL flush). Resolves with how many rows went. */
  async ack(queue: string, claims: readonly PgQueueClaim[]): Promise<number> {
    if (claims.length === 0) return 0;
    const { rows } = await this.db.query<{ settled: number }>(`SELECT ${this.tables.ack}($1, $2::bigint[], $3::integer[]) AS settled`, [queue, claims.map((claim) => claim.rowId), claims.map((claim) => claim.deliveries)]);
    return rows[0]?.settled ?? 0;
  }

  /**
   * Makes claims visible again after `delayMs` (a nack: `error` kept in `last_error`; a handover:
   * delay 0), and notifies `channel`. `undo` also takes back the delivery the claim counted (rows
   * claimed but never handed to the consumer).
   */
  async release(queue: string, claims: readonly PgQueueClaim[], channel: string, { delayMs = 0, error, undo = false }: { delayMs?: number; error?: string; undo?: boolean } = {}): Promise<void> {
    if (claims.length === 0) return;
    await this.db.query(
      `WITH released AS (
         UPDATE ${this.tables.queue} q SET visible_at = now() + make_interval(secs => $3::float8 / 1000),
           deliveries = q.deliveries - CASE WHEN $5::boolean THEN 1 ELSE 0 END, last_error = coalesce($4, q.last_error)
         FROM unnest($1::bigint[], $2::integer[]) AS c(id, deliveries) WHERE q.queue = $7 AND q.id = c.id AND q.deliveries = c.deliveries
         RETURNING 1
       )
       SELECT pg_notify($6, '') WHERE EXISTS (SELECT 1 FROM released)`,
      [claims.map((claim) => claim.rowId), claims.map((claim) => claim.deliveries), delayMs, error ?? null, undo, channel, queue],
    );
  }

  /** Extends the leases of claims still held to `visibilityMs` from now. */
  async extend(queue: string, claims: readonly PgQueueClaim[], visibilityMs: number): Promise<void> {
    if (claims.length === 0) return;
    await this.db.query(
      `UPDATE ${this.tables.queue} q SET visible_at = now() + make_interval(secs => $3::float8 / 1000)
       FROM unnest($1::bigint[], $2::integer[]) AS c(id, deliveries) WHERE q.queue = $4 AND q.id = c.id AND q.deliveries = c.deliveries`,
      [claims.map((claim) => claim.rowId), claims.map((claim) => claim.deliveries), visibilityMs, queue],
    );
  }

  /** Moves a claimed row to the dead-letter table with `reason`, in one statement. Resolves false when the claim was no longer this one's. */
  async deadLetter(queue: string, claim: PgQueueClaim, reason: string): Promise<boolean> {
    const { rowCount } = await this.db.query(
      `WITH gone AS (DELETE FROM ${this.tables.queue} WHERE queue = $4 AND id = $1::bigint AND deliveries = $2 RETURNING *)
       INSERT INTO ${this.tables.dead} (id, queue, message_id, headers, body, body_bytes, enqueued_at, deliveries, reason)
       SELECT id, queue, message_id, headers, body, body_bytes, enqueued_at, deliveries, $3 FROM gone`,
      [claim.rowId, claim.deliveries, reason.slice(0, 4000), queue],
    );
    return rowCount > 0;
  }

  /** Counts the queue's rows: ready, invisible (leased or backing off), dead. */
  async depth(queue: string): Promise<PgQueueDepth> {
    const { rows } = await this.db.query<{ ready: string | number; invisible: string | number; dead: string | number }>(
      `SELECT count(*) FILTER (WHERE visible_at <= now()) AS ready, count(*) FILTER (WHERE visible_at > now()) AS invisible,
              (SELECT count(*) FROM ${this.tables.dead} WHERE queue = $1) AS dead
       FROM ${this.tables.queue} WHERE queue = $1`,
      [queue],
    );
    const row = rows[0];
    return { ready: Number(row?.ready ?? 0), invisible: Number(row?.invisible ?? 0), dead: Number(row?.dead ?? 0) };
  }

  /** The queue's dead letters, oldest first. */
  async deadLetters(queue: string, limit: number): Promise<PgQueueDeadLetter[]> {
    const { rows } = await this.db.query<{ id: string; message_id: string; deliveries: number; reason: string; dead_at: Date }>(
      `SELECT id::text AS id, message_id, deliveries, reason, dead_at FROM ${this.tables.dead} WHERE queue = $1 ORDER BY id LIMIT $2`,
      [queue, limit],
    );
    return rows.map((row) => ({ rowId: row.id, messageId: row.message_id, deliveries: row.deliveries, reason: row.reason, deadAt: new Date(row.dead_at) }));
  }

  /** Puts dead letters of `queue` (all, or those at `rowIds`) back at the queue's tail, deliveries reset; notifies `channel`. Resolves with how many. */
  async requeueDead(queue: string, channel: string, rowIds?: readonly string[]): Promise<number> {
    const { rows } = await this.db.query<{ moved: string | number }>(
      `WITH gone AS (DELETE FROM ${this.tables.dead} WHERE queue = $1 AND ($2::bigint[] IS NULL OR id = ANY($2::bigint[])) RETURNING *),
       moved AS (
         INSERT INTO ${this.tables.queue} (queue, message_id, headers, body, body_bytes)
         SELECT queue, message_id, headers, body, body_bytes FROM gone ORDER BY id
         RETURNING 1
       )
       SELECT count(*) AS moved, pg_notify($3, '') FROM moved`,
      [queue, rowIds === undefined ? null : [...rowIds], channel],
    );
    return Number(rows[0]?.moved ?? 0);
  }
}

/** `work`, or a rejection with `timeout()` if it has not settled within `ms` (`work` keeps running). */
export function answeredWithin<T>(work: Promise<T>, ms: number, timeout: () => Error): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(timeout()), Math.max(0, ms));
    void work.then(resolve, reject).finally(() => clearTimeout(timer));
  });
}
