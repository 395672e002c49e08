import { InterchangeError, type Message } from '../../src/core/index.ts';
import type { ClaimedDelayedMessage, DelayedMessage, DelayedMessageStore } from '../../src/stores/delayed-message-store.ts';
import type { Database } from './database.ts';
import { resolveTables } from './migrations.ts';
import { DatabaseError } from './postgres-errors.ts';

export interface PostgresDelayedMessageStoreOptions {
  /** Where the table lives (default `public`); a plain lowercase identifier. */
  readonly schema?: string;
  /** The table (default `interchange_delayed_messages`); a plain lowercase identifier. Every delayer shares it, each under its key. */
  readonly table?: string;
}

/** The quoted names of the store's table and index. */
export interface DelayedMessageTables {
  readonly schema: string;
  readonly table: string;
  /** Unqualified (an index lives in its table's schema). */
  readonly index: string;
}

/** Checks and quotes the names. Throws `PostgresConfigurationError` for a name that is not a plain lowercase identifier. */
export function delayedMessageTables({ schema = 'public', table = 'interchange_delayed_messages' }: PostgresDelayedMessageStoreOptions = {}): DelayedMessageTables {
  // resolveTables checks both names as identifiers (the table as the outbox's, unused otherwise)
  const quoted = resolveTables({ schema, outboxTable: table }).schema;
  return { schema: quoted, table: `${quoted}."${table}"`, index: `${table}_available` };
}

/**
 * The DDL, one idempotent statement per entry (`IF NOT EXISTS`), for teams whose migrations run
 * through their own tool. One row per delayed message: its delayer `key` and message `id`, when it is
 * due, when it is next `available_at` (its due time, then the end of a claim or a release's retry
 * time), how often it was claimed, the message as `json` (kept as written), and an insertion `position`
 * that orders equal times.
 * @example for (const statement of delayedMessageMigrationStatements({ schema: 'orders' })) await db.query(statement)
 */
export function delayedMessageMigrationStatements(options: PostgresDelayedMessageStoreOptions = {}): readonly string[] {
  const { schema, table, index } = delayedMessageTables(options);
  return [
    `CREATE SCHEMA IF NOT EXISTS ${schema}`,
    `CREATE TABLE IF NOT EXISTS ${table} (
      key          text    NOT NULL,
      id           text    NOT NULL,
      due_at       bigint  NOT NULL,
      available_at bigint  NOT NULL,
      attempts     integer NOT NULL DEFAULT 0,
      message      json    NOT NULL,
      position     bigint  GENERATED ALWAYS AS IDENTITY,
      PRIMARY KEY (key, id)
    )`,
    `CREATE INDEX IF NOT EXISTS ${index} ON ${table} (key, available_at, position)`,
  ];
}

interface Row {
  key: string;
  id: string;
  due_at: string | number;
  attempts: number;
  message: Message;
  available_at: string | number;
  position: string | number;
}

/**
 * The durable delayer's store on PostgreSQL — node-postgres or PGlite, the same SQL (Spring's
 * `JdbcMessageStore` for a delayer). One table shared by every delayer, each row under its delayer's
 * key. Each method is one statement; `claimDue` takes rows with `FOR UPDATE SKIP LOCKED`, so
 * concurrent claimers never share a message. Times are the callers' epoch ms, in whole milliseconds.
 *
 * Errors: a failed statement rejects with `DatabaseError` (the delayer treats it as transient); bad
 * names throw `PostgresConfigurationError`. The database is the caller's: `close` leaves it open.
 * Tables: `open` creates them, or run `delayedMessageMigrationStatements` yourself and use `new`.
 * @example
 * const store = await PostgresDelayedMessageStore.open(await openDatabase());
 * from('amqp:queue/jobs').delay((m) => new Date(String(m.headers.deliverAt)), { id: 'hold-jobs', store }).to('amqp:exchange/work')
 */
export class PostgresDelayedMessageStore implements DelayedMessageStore {
  readonly tables: DelayedMessageTables;

  constructor(
    private readonly database: Database,
    options: PostgresDelayedMessageStoreOptions = {},
  ) {
    this.tables = delayedMessageTables(options);
  }

  /**
   * Creates the table and its index if absent (idempotent; processes starting at once are serialised
   * by the same advisory lock as `migrate`; nothing is locked when both exist), then the store.
   */
  static async open(database: Database, options: PostgresDelayedMessageStoreOptions = {}): Promise<PostgresDelayedMessageStore> {
    const store = new PostgresDelayedMessageStore(database, options);
    const { schema, table, index } = store.tables;
    const missing = await store.run('checking its table', async () => {
      const { rows } = await database.query<{ missing: number }>(`SELECT (SELECT count(*)::int FROM unnest($1::text[]) AS relation WHERE to_regclass(relation) IS NULL) AS missing`, [[table, `${schema}."${index}"`]]);
      return rows[0]?.missing !== 0;
    });
    if (!missing) return store;
    await store.run('creating its table', () =>
      database.transaction(async (tx) => {
        await tx.query(`SELECT pg_advisory_xact_lock(hashtext('interchange.migrate'))`);
        for (const statement of delayedMessageMigrationStatements(options)) await tx.query(statement);
      }),
    );
    return store;
  }

  put({ key, message, dueAt }: DelayedMessage): Promise<boolean> {
    return this.run('put', async () => {
      const at = Math.floor(dueAt);
      const { rowCount } = await this.database.query(
        `INSERT INTO ${this.tables.table} (key, id, due_at, available_at, message) VALUES ($1, $2, $3, $3, $4::json) ON CONFLICT (key, id) DO NOTHING`,
        [key, message.id, at, JSON.stringify(message)],
      );
      return rowCount === 1;
    });
  }

  claimDue(key: string, now: number, leaseMs: number, limit: number): Promise<ClaimedDelayedMessage[]> {
    return this.run('claimDue', async () => {
      const { table } = this.tables;
      const { rows } = await this.database.query<Row>(
        `WITH picked AS (
           SELECT id, available_at FROM ${table} WHERE key = $1 AND available_at <= $2::bigint
           ORDER BY available_at, position LIMIT $3 FOR UPDATE SKIP LOCKED
         )
         UPDATE ${table} d SET attempts = d.attempts + 1, available_at = $2::bigint + $4::bigint
         FROM picked WHERE d.key = $1 AND d.id = picked.id
         RETURNING d.key, d.id, d.due_at, d.attempts, d.message, picked.available_at, d.position`,
        [key, Math.floor(now), Math.max(0, Math.floor(limit)), Math.ceil(leaseMs)],
      );
      rows.sort((a, b) => Number(a.available_at) - Number(b.available_at) || Number(a.position) - Number(b.position));
      return rows.map((row) => ({ key: row.key, message: row.message, dueAt: Number(row.due_at), attempts: row.attempts }));
    });
  }

  nextAt(key: string): Promise<number | undefined> {
    return this.run('nextAt', async () => {
      const { rows } = await this.database.query<{ next: string | number | null }>(`SELECT min(available_at) AS next FROM ${this.tables.table} WHERE key = $1`, [key]);
      const next = rows[0]?.next;
      return next === null || next === undefined ? undefined : Number(next);
    });
  }

  remove(key: string, id: string): Promise<void> {
    return this.run('remove', async () => {
      await this.database.query(`DELETE FROM ${this.tables.table} WHERE key = $1 AND id = $2`, [key, id]);
    });
  }

  release(key: string, id: string, attempts: number, at: number): Promise<void> {
    return this.run('release', async () => {
      await this.database.query(`UPDATE ${this.tables.table} SET available_at = $4 WHERE key = $1 AND id = $2 AND attempts = $3`, [key, id, attempts, Math.floor(at)]);
    });
  }

  count(key: string): Promise<number> {
    return this.run('count', async () => {
      const { rows } = await this.database.query<{ n: string | number }>(`SELECT count(*) AS n FROM ${this.tables.table} WHERE key = $1`, [key]);
      return Number(rows[0]?.n ?? 0);
    });
  }

  /** The database is the caller's: nothing to release. */
  close(): Promise<void> {
    return Promise.resolve();
  }

  /** Runs one statement; a failure that is not already typed becomes a `DatabaseError` naming it. */
  private async run<T>(operation: string, work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (error) {
      if (error instanceof InterchangeError) throw error;
      throw new DatabaseError(`delayed message store ${this.tables.table}: ${operation} failed: ${(error as Error).message}`, { cause: error });
    }
  }
}
