import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMessage, type Message } from '../../../src/core/index.ts';
import { from } from '../../../facade/route-builder.ts';
import { startTestIntegration } from '../../../facade/testing/index.ts';
import { inbox, migrate, PostgresInbox, postgresModule, type Database } from '../../../adapters/postgres/index.ts';
import { idempotencyStoreCases } from './idempotency-store.cases.ts';
import { dropSchema, uniqueSchema } from './support.ts';

/**
 * The inbox (idempotent consumer in PostgreSQL), written once and run against PGlite and PostgreSQL.
 */
export function inboxCases({ open }: { readonly open: () => Promise<Database> }): void {
  let db: Database;
  const schemas: string[] = [];

  beforeAll(async () => {
    db = await open();
  }, 60_000);
  afterAll(async () => {
    for (const schema of schemas.splice(0)) await dropSchema(db, schema);
    await db.close();
  });

  const setup = async (label: string): Promise<string> => {
    const schema = uniqueSchema(label);
    schemas.push(schema);
    await migrate(db, { schema });
    await db.query(`CREATE TABLE "${schema}".order_view (order_id text PRIMARY KEY, applied integer NOT NULL)`);
    return schema;
  };
  /** The handler under test: counts how often it was applied, in the inbox's transaction. */
  const apply = (schema: string) => async (message: Message<{ orderId: string }>, tx: { query(text: string, params?: readonly unknown[]): Promise<unknown> }): Promise<void> => {
    await tx.query(`INSERT INTO "${schema}".order_view (order_id, applied) VALUES ($1, 1) ON CONFLICT (order_id) DO UPDATE SET applied = order_view.applied + 1`, [message.body.orderId]);
  };
  const applied = async (schema: string, orderId: string): Promise<number> =>
    Number((await db.query<{ applied: number }>(`SELECT applied FROM "${schema}".order_view WHERE order_id = $1`, [orderId])).rows[0]?.applied ?? 0);

  describe('inbox', { timeout: 60_000 }, () => {

    it('in a route: a redelivered message is applied once and the copies are acked as filtered', async () => {
      const schema = await setup('route');
      const { app, kit, stop } = await startTestIntegration({
        routes: [from<{ orderId: string }>('memory:order-events', { id: 'read-model' }).step('inbox', inbox({ schema, consumer: 'order-view' }, apply(schema))).to('memory:applied')],
        modules: [postgresModule({ database: db, schema, relay: false })],
      });
      try {
        const out = kit.mock('memory:applied');
        const event = createMessage({ orderId: 'o-1' });
        await kit.sendMessages('memory:order-events', [event, event, event]);
        await out.expect(1);
        await expect.poll(() => app.metrics()['read-model']?.filtered).toBe(2);
        expect(await applied(schema, 'o-1')).toBe(1);
        expect(out.received.map((message) => message.id)).toEqual([event.id]);
      } finally {
        await stop();
      }
    });

    it('a handler that fails rolls back its writes and the inbox record: the redelivery applies it', async () => {
      const schema = await setup('rollback');
      const store = new PostgresInbox(db, { schema, consumer: 'order-view' });
      const event = createMessage({ orderId: 'o-2' });
      await expect(
        store.process(event, async (message, tx) => {
          await apply(schema)(message, tx);
          throw new Error('crashed after writing');
        }),
      ).rejects.toThrow('crashed after writing');
      expect(await applied(schema, 'o-2')).toBe(0);
      expect(await store.has(event.id)).toBe(false);
      expect(await store.process(event, apply(schema))).toBe('processed');
      expect(await store.process(event, apply(schema))).toBe('duplicate');
      expect(await applied(schema, 'o-2')).toBe(1);
    });

    it('copies handled at the same time: exactly one applies', async () => {
      const schema = await setup('concurrent');
      const store = new PostgresInbox(db, { schema, consumer: 'order-view' });
      const event = createMessage({ orderId: 'o-3' });
      const outcomes = await Promise.all(Array.from({ length: 5 }, () => store.process(event, apply(schema))));
      expect(outcomes.filter((outcome) => outcome === 'processed')).toHaveLength(1);
      expect(await applied(schema, 'o-3')).toBe(1);
    });

    it('consumers are independent, and old records are cleaned up', async () => {
      const schema = await setup('consumers');
      const first = new PostgresInbox(db, { schema, consumer: 'first' });
      const second = new PostgresInbox(db, { schema, consumer: 'second' });
      const event = createMessage({ orderId: 'o-4' });
      expect(await first.process(event, async () => {})).toBe('processed');
      expect(await second.process(event, async () => {})).toBe('processed');
      expect(await first.cleanup(0)).toBe(1);
      expect(await first.has(event.id)).toBe(false);
      expect(await second.has(event.id)).toBe(true);
    });
  });

  let counter = 0;
  idempotencyStoreCases('PostgresInbox', async (leaseMs) => {
    const schema = await setup('store');
    counter += 1;
    return new PostgresInbox(db, { schema, consumer: `store-${counter}`, leaseMs });
  });
}
