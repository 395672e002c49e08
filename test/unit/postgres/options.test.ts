import { describe, expect, it } from 'vitest';
import { migrationScript, PostgresConfigurationError, postgresModule, resolveTables, validatePostgresOptions, openEmbeddedDatabase } from '../../../adapters/postgres/index.ts';

describe('PostgreSQL adapter options', () => {
  it('refuses invalid options with every problem listed', () => {
    expect(() => validatePostgresOptions({ relay: { batchSize: 0, leaseMs: 10 } })).toThrow(PostgresConfigurationError);
    expect(() => validatePostgresOptions({ relay: { batchSize: 0, leaseMs: 10 } })).toThrow(/batchSize.*leaseMs|leaseMs.*batchSize/);
    expect(() => validatePostgresOptions({ schema: 'Orders; DROP TABLE x' })).toThrow(PostgresConfigurationError);
    expect(() => validatePostgresOptions({ relay: { retention: { keepSentMs: 60_000 }, concurrency: 4 } })).not.toThrow();
    expect(() => validatePostgresOptions({ relay: false })).not.toThrow();
  });

  it('accepts only plain lowercase identifiers for schema and tables (they are spliced into SQL)', () => {
    expect(resolveTables({ schema: 'orders' })).toMatchObject({ outbox: '"orders"."interchange_outbox"', inbox: '"orders"."interchange_inbox"', channel: 'orders_interchange_outbox' });
    for (const bad of ['Orders', 'a"b', '1abc', 'x'.repeat(60), 'a b']) expect(() => resolveTables({ schema: bad })).toThrow(PostgresConfigurationError);
    expect(() => resolveTables({ outboxTable: 'out-box' })).toThrow(PostgresConfigurationError);
  });

  it('the migration script is idempotent DDL only', () => {
    const script = migrationScript({ schema: 'orders' });
    for (const statement of script.split(/;\n\n/)) {
      expect(statement.trim()).toMatch(/^CREATE (SCHEMA IF NOT EXISTS|TABLE IF NOT EXISTS|INDEX IF NOT EXISTS|OR REPLACE (FUNCTION|TRIGGER))/);
    }
  });

  it('postgresModule validates its options when it is created', async () => {
    const database = await openEmbeddedDatabase();
    try {
      expect(() => postgresModule({ database, relay: { pollIntervalMs: -1 } })).toThrow(PostgresConfigurationError);
      expect(postgresModule({ database })).toBeDefined();
    } finally {
      await database.close();
    }
  }, 60_000);
});
