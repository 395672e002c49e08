import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { migrationScript, openDatabase, Outbox, OutboxRelay } from '../../adapters/postgres/index.ts';
import { createMessage, silentLogger } from '../../src/core/index.ts';
import { inboxCases } from '../unit/postgres/inbox.cases.ts';
import { outboxCases } from '../unit/postgres/outbox.cases.ts';
import { dropSchema, POSTGRES_URL, RecordingPublisher, uniqueSchema } from '../unit/postgres/support.ts';

// The suites the unit tests run on PGlite, here against the real PostgreSQL server (127.0.0.1:5432):
// several relays really run in parallel here, on their own connections. Fails when PostgreSQL is down.
const open = () => openDatabase({ url: POSTGRES_URL, log: silentLogger });

describe('PostgreSQL', () => {
  describe('outbox and relay', () => outboxCases({ open, events: 5000 }));
  describe('inbox', () => inboxCases({ open }));

  it("runs the documented migration script as is (twice), and accepts a plain node-postgres client inside the service's own BEGIN/COMMIT", async () => {
    const db = await open();
    const schema = uniqueSchema('native');
    const pool = new pg.Pool({ connectionString: POSTGRES_URL, max: 1 });
    try {
      await pool.query(migrationScript({ schema }));
      await pool.query(migrationScript({ schema }));
      await pool.query(`CREATE TABLE "${schema}".things (id text PRIMARY KEY)`);
      const outbox = new Outbox({ schema });
      const kept = createMessage({ kept: true });
      const client = await pool.connect();
      try {
        await client.query('BEGIN');
        await client.query(`INSERT INTO "${schema}".things VALUES ('t-1')`);
        await outbox.add(client, createMessage({ kept: false }), { destination: 'memory:things' });
        await client.query('ROLLBACK');
        await client.query('BEGIN');
        await client.query(`INSERT INTO "${schema}".things VALUES ('t-2')`);
        await outbox.add(client, kept, { destination: 'memory:things' });
        await client.query('COMMIT');
      } finally {
        client.release();
      }
      const publisher = new RecordingPublisher();
      const relay = new OutboxRelay(db, publisher, { schema, migrate: false, log: silentLogger });
      while ((await relay.runOnce()) > 0);
      expect(publisher.confirmed).toEqual([kept]);
    } finally {
      await pool.end();
      await dropSchema(db, schema);
      await db.close();
    }
  });
});
