import { assertClaimId, type ClaimCheckStore, type ClaimPutOptions } from '../../src/stores/claim-check-store.ts';
import type { Database } from './database.ts';
import { resolveTables } from './migrations.ts';
import { PostgresConfigurationError } from './postgres-errors.ts';

export interface PostgresClaimCheckStoreOptions {
  /** Where the table lives (default `public`); a plain lowercase identifier. */
  readonly schema?: string;
  /** The table (default `interchange_claim_check`); a plain lowercase identifier. Give each store its own, or share one. */
  readonly table?: string;
  /** The clock (epoch ms, default `Date.now`) that expiries are set and compared with; the database's clock is never used. */
  readonly now?: () => number;
}

const IDENTIFIER = /^[a-z_][a-z0-9_]{0,50}$/;

/** The quoted name of the claim table. Throws `PostgresConfigurationError` for a name that is not a plain lowercase identifier. */
export function claimCheckTable({ schema = 'public', table = 'interchange_claim_check' }: Pick<PostgresClaimCheckStoreOptions, 'schema' | 'table'> = {}): { readonly schema: string; readonly table: string; readonly index: string } {
  if (!IDENTIFIER.test(table)) throw new PostgresConfigurationError(`invalid table name '${table}': lowercase letters, digits and _ only, at most 51, not starting with a digit`);
  const quoted = resolveTables({ schema }).schema;
  return { schema: quoted, table: `${quoted}."${table}"`, index: `${table}_expires_at` };
}

/**
 * The DDL, one idempotent statement per entry (`IF NOT EXISTS`): for teams whose migrations run
 * through their own tool. One row per claim: its id, the bytes (`bytea`), when it was written and
 * when it expires (`NULL`: never), indexed for `sweep`.
 * @example for (const statement of claimCheckMigrationStatements({ schema: 'app' })) await db.query(statement)
 */
export function claimCheckMigrationStatements(options: Pick<PostgresClaimCheckStoreOptions, 'schema' | 'table'> = {}): readonly string[] {
  const { schema, table, index } = claimCheckTable(options);
  return [
    `CREATE SCHEMA IF NOT EXISTS ${schema}`,
    `CREATE TABLE IF NOT EXISTS ${table} (
      id         text   PRIMARY KEY,
      data       bytea  NOT NULL,
      created_at bigint NOT NULL,
      expires_at bigint
    )`,
    `CREATE INDEX IF NOT EXISTS ${index} ON ${table} (expires_at) WHERE expires_at IS NOT NULL`,
  ];
}

/**
 * Claim check store in PostgreSQL (a `pg` pool or PGlite, through `Database`), shared by every
 * instance of a route: `put` is an upsert committed before it resolves; `get` never returns an
 * expired row; `sweep` deletes expired rows (the check-in step's `sweepEveryMs` runs it, or call it
 * yourself — expired rows are only invisible until then). The database is the caller's: the store never closes it.
 * @example
 * const store = await PostgresClaimCheckStore.open(await openDatabase({ url }), { schema: 'app' });
 * from('amqp:queue/scans').claimCheckIn({ store, ttlMs: 86_400_000 }).to('amqp:queue/ocr')
 */
export class PostgresClaimCheckStore implements ClaimCheckStore {
  private readonly table: string;
  private readonly now: () => number;

  constructor(
    private readonly database: Database,
    { schema, table, now = Date.now }: PostgresClaimCheckStoreOptions = {},
  ) {
    this.table = claimCheckTable({ schema, table }).table;
    this.now = now;
  }

  /**
   * Creates the table if absent (idempotent; several processes starting at once are serialised by the
   * advisory lock `migrate` takes), then the store.
   */
  static async open(database: Database, options: PostgresClaimCheckStoreOptions = {}): Promise<PostgresClaimCheckStore> {
    const store = new PostgresClaimCheckStore(database, options);
    const { rows } = await database.query<{ present: boolean }>('SELECT to_regclass($1) IS NOT NULL AS present', [store.table]);
    if (rows[0]?.present === true) return store;
    await database.transaction(async (tx) => {
      await tx.query(`SELECT pg_advisory_xact_lock(hashtext('interchange.migrate'))`);
      for (const statement of claimCheckMigrationStatements(options)) await tx.query(statement);
    });
    return store;
  }

  async put(id: string, data: Uint8Array, { ttlMs }: ClaimPutOptions = {}): Promise<void> {
    assertClaimId(id);
    const now = this.now();
    await this.database.query(
      `INSERT INTO ${this.table} (id, data, created_at, expires_at) VALUES ($1, $2, $3, $4)
       ON CONFLICT (id) DO UPDATE SET data = EXCLUDED.data, created_at = EXCLUDED.created_at, expires_at = EXCLUDED.expires_at`,
      [id, Buffer.from(data.buffer, data.byteOffset, data.byteLength), now, ttlMs === undefined ? null : now + ttlMs],
    );
  }

  async get(id: string): Promise<Uint8Array | undefined> {
    assertClaimId(id);
    const { rows } = await this.database.query<{ data: Uint8Array }>(`SELECT data FROM ${this.table} WHERE id = $1 AND (expires_at IS NULL OR expires_at > $2)`, [id, this.now()]);
    const data = rows[0]?.data;
    return data === undefined ? undefined : new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  }

  async remove(id: string): Promise<void> {
    assertClaimId(id);
    await this.database.query(`DELETE FROM ${this.table} WHERE id = $1`, [id]);
  }

  async sweep(): Promise<number> {
    const { rowCount } = await this.database.query(`DELETE FROM ${this.table} WHERE expires_at IS NOT NULL AND expires_at <= $1`, [this.now()]);
    return rowCount;
  }
}
