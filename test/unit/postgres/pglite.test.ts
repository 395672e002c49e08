import { describe, expect, it } from 'vitest';
import { migrate, openEmbeddedDatabase, Outbox, OutboxRelay } from '../../../adapters/postgres/index.ts';
import { createMessage, silentLogger } from '../../../src/core/index.ts';
import { inboxCases } from './inbox.cases.ts';
import { outboxCases } from './outbox.cases.ts';
import { RecordingPublisher } from './support.ts';

// The shared suites against the embedded database (PGlite, in memory): what runs with no DATABASE_URL.
const open = () => openEmbeddedDatabase();

describe('PGlite', () => {
  describe('outbox and relay', () => outboxCases({ open, events: 1500 }));
  describe('inbox', () => inboxCases({ open }));

  it("accepts PGlite's own transaction object as the service's transaction", async () => {
    const db = await open();
    try {
      await migrate(db, { schema: 'native' });
      const outbox = new Outbox({ schema: 'native' });
      const message = createMessage({ native: true });
      await db.db.transaction(async (tx) => {
        await tx.query('CREATE TABLE native.things (id text PRIMARY KEY)');
        await tx.query(`INSERT INTO native.things VALUES ('t-1')`);
        await outbox.add(tx, message, { destination: 'memory:things' });
      });
      const publisher = new RecordingPublisher();
      expect(await new OutboxRelay(db, publisher, { schema: 'native', migrate: false, log: silentLogger }).runOnce()).toBe(1);
      expect(publisher.confirmed).toEqual([message]);
    } finally {
      await db.close();
    }
  }, 60_000);
});
