import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createMessage, EndpointError, InterchangeError, silentLogger, type Message } from '../../../src/core/index.ts';
import { SchemaValidationError } from '../../../src/schema/index.ts';
import { migrate, Outbox, OutboxMessageError, OutboxRelay, PostgresConfigurationError, type Database, type OutboxRelayOptions } from '../../../adapters/postgres/index.ts';
import { shippedRegistry } from '../schema/fixtures.ts';
import { assertOrderedPerPartition, dropSchema, RecordingPublisher, sleep, uniqueSchema, until, type Numbered } from './support.ts';

export interface OutboxSuiteOptions {
  /** Opens the database under test (PGlite, or the real server). */
  readonly open: () => Promise<Database>;
  /** Events in the concurrent-relays case. */
  readonly events: number;
}

const placed = (orderId: string) => ({
  orderId,
  customerId: 'c-1',
  lines: [{ sku: 'A-1', quantity: 2, unitPrice: 5 }],
  total: 10,
  currency: 'EUR',
  placedAt: '2026-01-01T10:00:00Z',
});

/**
 * The outbox and relay behaviour every database must show: written once, run against PGlite
 * (test/unit/postgres/pglite.test.ts) and against PostgreSQL (test/integration/postgres-outbox.test.ts).
 */
export function outboxCases({ open, events }: OutboxSuiteOptions): void {
  let db: Database;
  let schema: string;
  const relays: OutboxRelay[] = [];

  beforeAll(async () => {
    db = await open();
  }, 60_000);
  afterAll(async () => {
    await db.close();
  });
  afterEach(async () => {
    await Promise.all(relays.splice(0).map((relay) => relay.stop()));
    await dropSchema(db, schema);
  });

  const setup = async (label: string): Promise<Outbox> => {
    schema = uniqueSchema(label);
    await migrate(db, { schema });
    return new Outbox({ schema, registry: shippedRegistry() });
  };
  const relay = (publisher: RecordingPublisher, options: OutboxRelayOptions = {}): OutboxRelay => {
    const created = new OutboxRelay(db, publisher, { schema, log: silentLogger, migrate: false, pollIntervalMs: 50, ...options });
    relays.push(created);
    return created;
  };
  /** Runs rounds until one finds nothing to do. */
  const drain = async (target: OutboxRelay): Promise<void> => {
    while ((await target.runOnce()) > 0);
  };
  const rows = async (): Promise<number> => Number((await db.query<{ n: string | number }>(`SELECT count(*) AS n FROM "${schema}".interchange_outbox`)).rows[0]?.n);

  describe('outbox', { timeout: 120_000 }, () => {
    it('migrations are idempotent, also when several processes run them at once', async () => {
      schema = uniqueSchema('migrate');
      await Promise.all([migrate(db, { schema }), migrate(db, { schema }), migrate(db, { schema })]);
      await migrate(db, { schema });
      const { rows: tables } = await db.query<{ name: string }>(`SELECT table_name AS name FROM information_schema.tables WHERE table_schema = $1 ORDER BY 1`, [schema]);
      expect(tables.map((table) => table.name)).toEqual(['interchange_inbox', 'interchange_outbox']);
    });

    it('a rolled-back transaction publishes nothing; a committed one publishes exactly its messages, ids and headers kept', async () => {
      const outbox = await setup('commit');
      await expect(
        db.transaction(async (tx) => {
          await outbox.add(tx, createMessage({ rolledBack: 1 }), { destination: 'memory:events' });
          await outbox.add(tx, createMessage({ rolledBack: 2 }), { destination: 'memory:events' });
          throw new Error('the service failed after writing');
        }),
      ).rejects.toThrow('the service failed');
      const json = createMessage({ n: 1 }, { headers: { correlationId: 'corr-1', tenant: 'acme', priority: 3, urgent: true } });
      const bytes = createMessage(Buffer.from([0, 1, 2, 255]), { headers: { contentType: 'application/octet-stream' } });
      await db.transaction(async (tx) => {
        await outbox.add(tx, json, { destination: 'memory:events', partitionKey: 'p' });
        await outbox.add(tx, bytes, { destination: 'memory:blobs', partitionKey: 'p' });
      });
      const publisher = new RecordingPublisher();
      await drain(relay(publisher));
      expect(publisher.confirmed).toEqual([json, bytes]);
      expect(await rows()).toBe(0);
    });

    it('validates each body against its contract before insert', async () => {
      const outbox = await setup('contract');
      const invalid = createMessage({ ...placed('o-1'), total: -1 }, { headers: { schema: 'order.placed@1' } });
      await expect(outbox.add(db, invalid, { destination: 'memory:orders' })).rejects.toBeInstanceOf(SchemaValidationError);
      await expect(outbox.add(db, createMessage(placed('o-2')), { destination: 'memory:orders', contract: 'no.such@1' })).rejects.toThrow(/no\.such@1/);
      await expect(new Outbox({ schema }).add(db, createMessage(placed('o-3')), { destination: 'memory:orders', contract: 'order.placed@1' })).rejects.toBeInstanceOf(PostgresConfigurationError);
      await expect(new Outbox({ schema, requireContract: true }).add(db, createMessage({}), { destination: 'memory:orders' })).rejects.toBeInstanceOf(OutboxMessageError);
      await expect(outbox.add(db, createMessage({}), { destination: 'memory:orders/{id}' })).rejects.toBeInstanceOf(OutboxMessageError);
      await expect(outbox.add(db, createMessage({}), { destination: 'no scheme' })).rejects.toBeInstanceOf(EndpointError);
      await expect(outbox.add(db, createMessage(undefined), { destination: 'memory:orders' })).rejects.toBeInstanceOf(OutboxMessageError);
      expect(await rows()).toBe(0);

      await outbox.add(db, createMessage(placed('o-4')), { destination: 'memory:orders', contract: 'order.placed@1' });
      const publisher = new RecordingPublisher();
      await drain(relay(publisher));
      expect(publisher.confirmed.map((message) => message.headers.schema)).toEqual(['order.placed@1']);
    });

    it(`several relays share ${events} events: each published once, never two at once, in order per partition`, async () => {
      const outbox = await setup('relays');
      const keys = Array.from({ length: 24 }, (_, n) => `key-${n}`);
      const next = new Map<string, number>();
      for (let start = 0; start < events; start += 100) {
        const batch = Array.from({ length: Math.min(100, events - start) }, (_, n) => {
          const key = keys[(start + n) % 7 === 0 ? 0 : (start + n) % keys.length] as string; // key-0 is a hot partition
          const seq = next.get(key) ?? 0;
          next.set(key, seq + 1);
          return createMessage<Numbered>({ key, seq });
        });
        await db.transaction((tx) => outbox.addAll(tx, batch, (message) => ({ destination: 'memory:events', partitionKey: (message.body as Numbered).key })));
      }
      const publisher = new RecordingPublisher(undefined, { delayMs: 2 });
      const trio = [relay(publisher, { batchSize: 50, scanSize: 300 }), relay(publisher, { batchSize: 50, scanSize: 300 }), relay(publisher, { batchSize: 50, scanSize: 300 })];
      await Promise.all(trio.map((one) => one.start()));
      await until(() => publisher.confirmed.length >= events, () => `${publisher.confirmed.length} of ${events} published`, 120_000);
      await Promise.all(trio.map((one) => one.stop()));

      expect(publisher.violations).toEqual([]);
      expect(new Set(publisher.confirmed.map((message) => message.id)).size).toBe(events);
      expect(publisher.confirmed).toHaveLength(events);
      const byKey = assertOrderedPerPartition(publisher.bodies<Numbered>());
      expect([...byKey.values()].reduce((sum, list) => sum + list.length, 0)).toBe(events);
      expect(trio.reduce((sum, one) => sum + one.stats.published, 0)).toBe(events);
      expect(trio.filter((one) => one.stats.published > 0).length).toBeGreaterThanOrEqual(2);
      expect(await rows()).toBe(0);
    });

    it('a failed publish is retried after a backoff, and later rows of its partition wait for it', async () => {
      const outbox = await setup('retry');
      const add = (key: string, seq: number): Promise<void> => outbox.add(db, createMessage<Numbered>({ key, seq }), { destination: 'memory:events', partitionKey: key });
      await add('a', 0);
      await add('a', 1);
      await add('b', 0);
      const publisher = new RecordingPublisher(undefined, { fail: (message, attempt) => ((message.body as Numbered).key === 'a' && (message.body as Numbered).seq === 0 && attempt <= 2 ? new Error('broker hiccup') : undefined) });
      const worker = relay(publisher, { backoff: { initialMs: 10, maxMs: 20 } });
      await worker.start();
      await until(() => publisher.confirmed.length === 3, () => `${publisher.confirmed.length} of 3 published`);
      expect(publisher.bodies<Numbered>().filter((body) => body.key === 'a')).toEqual([{ key: 'a', seq: 0 }, { key: 'a', seq: 1 }]);
      // The run [a0, a1] failed, then a0 alone (the culprit search): one failed attempt recorded; the third try succeeded.
      expect(worker.stats.failed).toBe(1);
      expect([...publisher.attempts.values()].sort()).toEqual([1, 1, 3]);
      expect(worker.stats.parked).toBe(0);
      await until(async () => (await rows()) === 0, () => 'rows left');
    });

    it('a poison row is parked with its error after maxAttempts; its partition and the others go on', async () => {
      const outbox = await setup('poison');
      const add = (key: string, seq: number): Promise<void> => outbox.add(db, createMessage<Numbered>({ key, seq }), { destination: 'memory:events', partitionKey: key });
      await add('a', 0);
      await add('a', 1);
      await add('b', 0);
      await add('c', 0);
      const publisher = new RecordingPublisher(undefined, {
        fail: (message) => {
          const body = message.body as Numbered;
          if (body.key === 'a' && body.seq === 0) return new Error('cannot be delivered');
          if (body.key === 'c') return new InterchangeError('POISON', 'malformed for this destination', { permanent: true });
          return undefined;
        },
      });
      const worker = relay(publisher, { maxAttempts: 3, backoff: { initialMs: 5, maxMs: 10 } });
      await worker.start();
      await until(async () => (await worker.backlog()).parked === 2 && publisher.confirmed.length === 2, () => `parked/published not reached`);
      expect(publisher.bodies<Numbered>().sort((x, y) => x.key.localeCompare(y.key))).toEqual([{ key: 'a', seq: 1 }, { key: 'b', seq: 0 }]);
      const parked = await worker.parked();
      expect(parked.map(({ partitionKey, attempts }) => ({ partitionKey, attempts }))).toEqual([
        { partitionKey: 'a', attempts: 3 },
        { partitionKey: 'c', attempts: 1 },
      ]);
      expect(parked[0]?.lastError).toContain('cannot be delivered');
      expect(parked[1]?.lastError).toBe('POISON: malformed for this destination');
      expect(worker.stats).toMatchObject({ failed: 4, parked: 2, published: 2 });
      expect(await worker.backlog()).toMatchObject({ pending: 0, parked: 2 });

      await worker.stop();
      expect(await worker.unpark([parked[0]?.position ?? ''])).toBe(1);
      expect(await worker.backlog()).toMatchObject({ pending: 1, parked: 1 });
    });

    it('keeps sent rows when asked to, and the cleanup deletes them after the retention', async () => {
      const outbox = await setup('retention');
      for (let n = 0; n < 3; n += 1) await outbox.add(db, createMessage({ n }), { destination: 'memory:events' });
      const publisher = new RecordingPublisher();
      const worker = relay(publisher, { retention: { keepSentMs: 0 } });
      await drain(worker);
      expect(publisher.confirmed).toHaveLength(3);
      expect(Number((await db.query<{ n: string }>(`SELECT count(*) AS n FROM "${schema}".interchange_outbox WHERE sent_at IS NOT NULL`)).rows[0]?.n)).toBe(3);
      expect(await worker.backlog()).toMatchObject({ pending: 0 });
      expect(await worker.cleanup()).toBe(3);
      expect(await rows()).toBe(0);
    });

    it('a commit wakes a waiting relay through NOTIFY, without waiting for the poll', async () => {
      const outbox = await setup('notify');
      const publisher = new RecordingPublisher();
      const worker = relay(publisher, { pollIntervalMs: 600_000 });
      await worker.start();
      await sleep(100); // its first round found nothing: it now waits for a NOTIFY (or ten minutes)
      await db.transaction((tx) => outbox.add(tx, createMessage({ hello: 'notify' }), { destination: 'memory:events' }));
      await until(() => publisher.confirmed.length === 1, () => 'the relay was not woken', 15_000);
      expect(publisher.bodies()).toEqual([{ hello: 'notify' }]);
    });

    it("rows claimed by a relay that died are republished by another once the lease expires, not before", async () => {
      const outbox = await setup('lease');
      for (let n = 0; n < 4; n += 1) await outbox.add(db, createMessage<Numbered>({ key: 'k', seq: n }), { destination: 'memory:events', partitionKey: 'k' });
      const { rows: claimed } = await db.query(`SELECT * FROM "${schema}".interchange_outbox_claim('dead-relay', 2, 100, 400)`);
      expect(claimed).toHaveLength(2);
      const publisher = new RecordingPublisher();
      const live = relay(publisher);
      expect(await live.runOnce()).toBe(0); // the partition's head is leased: nothing overtakes it
      expect(await live.backlog()).toMatchObject({ pending: 4, inFlight: 1 });
      await until(async () => (await live.runOnce()) > 0, () => 'lease never expired', 10_000);
      await drain(live);
      expect(publisher.bodies<Numbered>().map((body) => body.seq)).toEqual([0, 1, 2, 3]);
    });

    it('reports backlog and lag', async () => {
      const outbox = await setup('backlog');
      const worker = relay(new RecordingPublisher());
      expect(await worker.backlog()).toEqual({ pending: 0, inFlight: 0, parked: 0, lagMs: 0 });
      await db.transaction((tx) => outbox.addAll(tx, [createMessage(1), createMessage(2), createMessage(3)], { destination: 'memory:events' }));
      await sleep(20);
      const backlog = await worker.backlog();
      expect(backlog).toMatchObject({ pending: 3, inFlight: 0, parked: 0 });
      expect(backlog.lagMs).toBeGreaterThan(0);
    });

    it('publishes the rows of one partition in order across destinations', async () => {
      const outbox = await setup('destinations');
      const messages: Message[] = [];
      for (let n = 0; n < 12; n += 1) messages.push(createMessage<Numbered>({ key: 'k', seq: n }));
      await db.transaction((tx) => outbox.addAll(tx, messages, (message) => ({ destination: `memory:d${(message.body as Numbered).seq % 3 === 0 ? 'a' : 'b'}`, partitionKey: 'k' })));
      const publisher = new RecordingPublisher();
      await drain(relay(publisher));
      expect(publisher.bodies<Numbered>().map((body) => body.seq)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
    });
  });
}
