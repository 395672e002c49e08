import type { PGlite, Transaction as PgliteTransaction } from '@electric-sql/pglite';
import pg from 'pg';
import { backoffDelay, checkUrlCredentials, consoleLogger, redactUrl, type Logger } from '../../src/core/index.ts';
import { DatabaseError } from './postgres-errors.ts';

/** The rows of a statement and how many rows it touched. */
export interface SqlResult<R> {
  readonly rows: R[];
  readonly rowCount: number;
}

/** Anything that runs one statement: the database, or a transaction of it. */
export interface SqlExecutor {
  query<R extends object = Record<string, unknown>>(text: string, params?: readonly unknown[]): Promise<SqlResult<R>>;
}

/**
 * What the outbox accepts as "the service's own transaction": a `pg` `PoolClient`/`Client` inside
 * `BEGIN`, a PGlite `Transaction`, or a `SqlExecutor` from `Database.transaction`. Only `query` is used.
 */
export interface Queryable {
  query(text: string, values?: unknown[]): Promise<{ rows: unknown[] }>;
}

/**
 * The tiny SQL surface the outbox, relay and inbox need, satisfied by node-postgres (a `Pool`) and
 * by PGlite through thin wrappers: same SQL, same code path.
 *
 * Contract:
 * - `transaction` runs `work` between `BEGIN` and `COMMIT` on one connection; a throw rolls back
 *   and rethrows. On PGlite (one connection) transactions run one at a time.
 * - `listen` delivers `NOTIFY`s on `channel` (a lowercase SQL identifier) on a dedicated connection;
 *   on `pg` it reconnects with backoff after losing it. Notifications may be lost while it is down:
 *   users of `listen` must poll as well.
 * - `close` ends every connection. Idempotent.
 */
export interface Database extends SqlExecutor {
  readonly kind: 'postgres' | 'pglite';
  transaction<T>(work: (tx: SqlExecutor) => Promise<T>): Promise<T>;
  listen(channel: string, onNotify: () => void): Promise<() => Promise<void>>;
  close(): Promise<void>;
}

/** DI token of the `Database` (shares its name with the interface). */
export const Database: unique symbol = Symbol.for('interchange.postgres.Database');

const CHANNEL = /^[a-z_][a-z0-9_]{0,62}$/;

function checkChannel(channel: string): void {
  if (!CHANNEL.test(channel)) throw new DatabaseError(`invalid LISTEN channel '${channel}': lowercase letters, digits and _ only, at most 63`);
}

/** node-postgres, through a `Pool`. */
export class PgDatabase implements Database {
  readonly kind = 'postgres';
  private readonly listeners = new Set<{ stop(): Promise<void> }>();
  private closed = false;

  constructor(
    readonly pool: pg.Pool,
    private readonly connectionString: string | undefined,
    private readonly log: Logger = consoleLogger,
    /** Settings of the dedicated `LISTEN` connections (timeouts, keep-alive), as the pool's. */
    private readonly clientConfig: pg.ClientConfig = {},
  ) {}

  async query<R extends object>(text: string, params?: readonly unknown[]): Promise<SqlResult<R>> {
    const result = await this.pool.query<R & pg.QueryResultRow>(text, params as unknown[] | undefined);
    return { rows: result.rows, rowCount: result.rowCount ?? 0 };
  }

  async transaction<T>(work: (tx: SqlExecutor) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    let broken = false;
    try {
      await client.query('BEGIN');
      const tx: SqlExecutor = {
        query: async <R extends object>(text: string, params?: readonly unknown[]) => {
          const result = await client.query<R & pg.QueryResultRow>(text, params as unknown[] | undefined);
          return { rows: result.rows, rowCount: result.rowCount ?? 0 };
        },
      };
      const value = await work(tx);
      await client.query('COMMIT');
      return value;
    } catch (error) {
      await client.query('ROLLBACK').catch(() => {
        broken = true;
      });
      throw error;
    } finally {
      client.release(broken);
    }
  }

  /**
   * Listens on a dedicated `pg.Client`. The first connection must succeed: if it fails (connect or
   * `LISTEN`), its client is ended and `listen` rejects, with nothing left running (the caller
   * retries). Once listening, a lost connection is reopened with backoff until `stop`/`close`.
   */
  async listen(channel: string, onNotify: () => void): Promise<() => Promise<void>> {
    checkChannel(channel);
    if (this.closed) throw new DatabaseError(`cannot LISTEN on '${channel}': the database is closed`);
    let client: pg.Client | undefined;
    let stopped = false;
    let attempt = 0;
    let timer: NodeJS.Timeout | undefined;
    const open = async (): Promise<void> => {
      const next = new pg.Client({ ...this.clientConfig, ...(this.connectionString === undefined ? {} : { connectionString: this.connectionString }) });
      next.on('notification', (notification) => {
        if (notification.channel === channel) onNotify();
      });
      // Only the connection in use reopens: a failed open ends its client (which emits 'end') and rejects.
      const lost = (): void => {
        if (client === next) reopen();
      };
      next.on('error', lost);
      next.on('end', lost);
      try {
        await next.connect();
        await next.query(`LISTEN ${channel}`);
      } catch (error) {
        await next.end().catch(() => undefined);
        throw error;
      }
      if (stopped) {
        await next.end().catch(() => undefined);
        return;
      }
      client = next;
      attempt = 0;
      onNotify(); // anything inserted while we were not listening
    };
    const reopen = (): void => {
      if (stopped || timer !== undefined) return;
      const lost = client;
      client = undefined;
      void lost?.end().catch(() => undefined);
      const delay = backoffDelay(attempt++, { initialMs: 100, maxMs: 5_000 });
      timer = setTimeout(() => {
        timer = undefined;
        open().catch((error: unknown) => {
          this.log.warn('postgres: LISTEN connection failed, retrying', { channel, error: (error as Error).message });
          reopen();
        });
      }, delay);
    };
    const handle = {
      stop: async (): Promise<void> => {
        stopped = true;
        if (timer !== undefined) clearTimeout(timer);
        timer = undefined;
        this.listeners.delete(handle);
        const last = client;
        client = undefined;
        await last?.end().catch(() => undefined);
      },
    };
    this.listeners.add(handle); // close() during the first open stops it too
    try {
      await open();
    } catch (error) {
      await handle.stop();
      throw error;
    }
    return handle.stop;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all([...this.listeners].map((listener) => listener.stop()));
    await this.pool.end();
  }

  toString(): string {
    return `postgres ${this.connectionString === undefined ? '(PG* environment)' : redactUrl(this.connectionString)}`;
  }
}

/** PGlite: PostgreSQL in WASM, in process (in memory, or in a data directory). One connection. */
export class PgliteDatabase implements Database {
  readonly kind = 'pglite';
  private closed = false;

  constructor(readonly db: PGlite) {}

  async query<R extends object>(text: string, params?: readonly unknown[]): Promise<SqlResult<R>> {
    return toResult(await this.db.query<R>(text, params as unknown[] | undefined));
  }

  transaction<T>(work: (tx: SqlExecutor) => Promise<T>): Promise<T> {
    return this.db.transaction((tx: PgliteTransaction) =>
      work({ query: async <R extends object>(text: string, params?: readonly unknown[]) => toResult(await tx.query<R>(text, params as unknown[] | undefined)) }),
    );
  }

  async listen(channel: string, onNotify: () => void): Promise<() => Promise<void>> {
    checkChannel(channel);
    const unlisten = await this.db.listen(channel, () => onNotify());
    return async () => {
      if (!this.closed) await unlisten();
    };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.db.close();
  }

  toString(): string {
    return 'pglite (embedded)';
  }
}

function toResult<R>(result: { rows: R[]; affectedRows?: number }): SqlResult<R> {
  return { rows: result.rows, rowCount: result.affectedRows || result.rows.length };
}

export interface OpenDatabaseOptions {
  /** `postgres://…`; default `DATABASE_URL`. Without either, an embedded PGlite stands in. */
  readonly url?: string;
  /** PGlite only: keep the database in this directory (default: in memory). */
  readonly dataDir?: string;
  /** pg only: pool size (default 10). */
  readonly poolSize?: number;
  /**
   * pg only: a statement without an answer within this rejects and its connection is discarded
   * (`pg`'s `query_timeout`; the server may still complete it). Default: none — a link that drops
   * packets without a reset then hangs a statement until TCP gives up (about 15 minutes).
   */
  readonly queryTimeoutMs?: number;
  /** pg only: a connection (or a wait for a free one in the pool) not made within this fails (`connectionTimeoutMillis`). Default: none. */
  readonly connectionTimeoutMs?: number;
  /** pg only: TCP keep-alive on every connection, probing after this long idle (`keepAlive`, `keepAliveInitialDelayMillis`). Default: off. */
  readonly keepAliveMs?: number;
  readonly log?: Logger;
}

/**
 * Opens PostgreSQL at `url` (or `DATABASE_URL`) through a `pg` pool — checked with one query, so an
 * unreachable database fails here with `DatabaseError`, a URL whose user info needs percent-encoding
 * with `EndpointError` — or, when neither is set, an embedded PGlite,
 * announced on the log: the same SQL runs on both. `queryTimeoutMs`, `connectionTimeoutMs` and
 * `keepAliveMs` (all off by default) bound statements and connections on a link that goes silent;
 * they apply to the pool and to `listen`'s connections.
 * @example const db = await openDatabase(); // PGlite unless DATABASE_URL is set
 */
export async function openDatabase({
  url = process.env.DATABASE_URL || undefined,
  dataDir,
  poolSize = 10,
  queryTimeoutMs,
  connectionTimeoutMs,
  keepAliveMs,
  log = consoleLogger,
}: OpenDatabaseOptions = {}): Promise<Database> {
  if (url === undefined) {
    log.info(`postgres: no DATABASE_URL: using an embedded PGlite database${dataDir === undefined ? ' in memory (lost on exit)' : ` in ${dataDir}`}; set DATABASE_URL to use PostgreSQL`);
    return openEmbeddedDatabase({ dataDir });
  }
  checkUrlCredentials(url, 'the PostgreSQL URL');
  const clientConfig: pg.ClientConfig = {
    ...(queryTimeoutMs === undefined ? {} : { query_timeout: queryTimeoutMs }),
    ...(connectionTimeoutMs === undefined ? {} : { connectionTimeoutMillis: connectionTimeoutMs }),
    ...(keepAliveMs === undefined ? {} : { keepAlive: true, keepAliveInitialDelayMillis: keepAliveMs }),
  };
  const pool = new pg.Pool({ ...clientConfig, connectionString: url, max: poolSize });
  pool.on('error', (error) => log.warn('postgres: idle connection failed', { error: error.message }));
  const db = new PgDatabase(pool, url, log, clientConfig);
  try {
    await pool.query('SELECT 1');
  } catch (cause) {
    await pool.end().catch(() => undefined);
    throw new DatabaseError(`PostgreSQL is not reachable at ${redactUrl(url)}: ${(cause as Error).message}`, { cause });
  }
  return db;
}

/**
 * An embedded PGlite database (PostgreSQL compiled to WASM, in this process), whatever `DATABASE_URL` says.
 * @example const db = await openEmbeddedDatabase({ dataDir: '.data/outbox' })
 */
export async function openEmbeddedDatabase({ dataDir }: { readonly dataDir?: string } = {}): Promise<PgliteDatabase> {
  const { PGlite } = await import('@electric-sql/pglite');
  return new PgliteDatabase(await PGlite.create(dataDir === undefined ? {} : { dataDir }));
}
