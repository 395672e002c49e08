import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { createMessage, silentLogger, type Message } from '../../src/core/index.ts';
import { createIntegration } from '../../src/runtime/integration.ts';
import { TransportRegistry } from '../../src/runtime/transport-registry.ts';
import { schemaModule } from '../../src/schema/index.ts';
import { amqpModule, type AmqpTransport } from '../../adapters/amqp/index.ts';
import { migrate, openDatabase, Outbox, OutboxRelay, postgresModule, type Database } from '../../adapters/postgres/index.ts';
import { AMQP_URL, BrokerAdmin, connectedTransport, readUntilQuiet, uniqueName, until } from './amqp-support.ts';
import { assertOrderedPerPartition, dropSchema, POSTGRES_URL, RecordingPublisher, uniqueSchema, type Numbered } from '../unit/postgres/support.ts';

// The outbox against the real PostgreSQL and RabbitMQ: both must be up (these tests fail otherwise).

const admin = new BrokerAdmin();
let db: Database;
const schemas: string[] = [];
const transports: AmqpTransport[] = [];
const relays: OutboxRelay[] = [];

beforeAll(async () => {
  db = await openDatabase({ url: POSTGRES_URL, log: silentLogger });
});
afterEach(async () => {
  await Promise.all(relays.splice(0).map((relay) => relay.stop()));
  await Promise.all(transports.splice(0).map((transport) => transport.close()));
});
afterAll(async () => {
  await admin.close();
  for (const schema of schemas) await dropSchema(db, schema);
  await db.close();
});

async function freshSchema(label: string): Promise<string> {
  const schema = uniqueSchema(label);
  schemas.push(schema);
  await migrate(db, { schema });
  return schema;
}

async function amqpRegistry(): Promise<TransportRegistry> {
  const transport = await connectedTransport();
  transports.push(transport);
  return new TransportRegistry([transport]);
}

const order = (orderId: string) => ({ orderId, customerId: 'c-7', lines: [{ sku: 'SKU-1', quantity: 1, unitPrice: 9.5 }], total: 9.5, currency: 'EUR', placedAt: new Date(0).toISOString() });

it('through the modules: a rolled-back transaction publishes nothing, a committed one exactly its events, validated, ids kept', async () => {
  const schema = await freshSchema('amqp_commit');
  const queue = uniqueName('outbox-commit');
  admin.track({ queues: [queue] });
  const app = createIntegration({ routes: [], logger: silentLogger, modules: [amqpModule({ url: AMQP_URL }), schemaModule(), postgresModule({ database: db, schema, relay: { pollIntervalMs: 100 } })] });
  await app.start(); // starts the relay too (a Lifecycle)
  const relay = app.container.get(OutboxRelay);
  try {
    const outbox = app.container.get(Outbox);
    const destination = `amqp:queue/${queue}`;
    await expect(
      db.transaction(async (tx) => {
        await outbox.add(tx, createMessage(order('rolled-back-1'), { headers: { schema: 'order.placed@1' } }), { destination, partitionKey: 'rolled-back-1' });
        throw new Error('payment declined');
      }),
    ).rejects.toThrow('payment declined');
    const committed: Message[] = ['o-1', 'o-2', 'o-3'].map((id) => createMessage(order(id), { headers: { schema: 'order.placed@1', correlationId: `corr-${id}` } }));
    await db.transaction(async (tx) => {
      for (const message of committed) await outbox.add(tx, message, { destination, partitionKey: (message.body as { orderId: string }).orderId });
    });
    const got = await readUntilQuiet(queue, 3, 20_000);
    expect(got.map((message) => message.id).sort()).toEqual(committed.map((message) => message.id).sort());
    expect(got.map((message) => message.body)).toEqual(expect.arrayContaining(committed.map((message) => message.body)));
    expect(got.every((message) => message.headers.schema === 'order.placed@1' && message.headers.correlationId === `corr-${(message.body as { orderId: string }).orderId}`)).toBe(true);
    expect(await relay.backlog()).toMatchObject({ pending: 0, parked: 0 });
  } finally {
    await app.stop({ drainTimeoutMs: 1_000 }); // stops the relay first
  }
});

it('three concurrent relays on 10,000 events: every event published, none by two relays at once, order kept per partition', async () => {
  const schema = await freshSchema('amqp_trio');
  const queue = uniqueName('outbox-trio');
  admin.track({ queues: [queue] });
  await (await admin.channel()).assertQueue(queue, { durable: true });
  const outbox = new Outbox({ schema });
  const total = 10_000;
  const keys = Array.from({ length: 32 }, (_, n) => `order-${n}`);
  const next = new Map<string, number>();
  const events = Array.from({ length: total }, (_, n) => {
    const key = keys[(n * 7919) % keys.length] as string;
    const seq = next.get(key) ?? 0;
    next.set(key, seq + 1);
    return createMessage<Numbered>({ key, seq });
  });
  for (let start = 0; start < total; start += 500) {
    await db.transaction((tx) => outbox.addAll(tx, events.slice(start, start + 500), (message) => ({ destination: `amqp:queue/${queue}`, partitionKey: (message.body as Numbered).key })));
  }
  // One recorder over the three relays: it sees every publish while it is in flight.
  const recorders: RecordingPublisher[] = [];
  const shared = { inFlight: new Set<string>(), violations: [] as string[] };
  for (let n = 0; n < 3; n += 1) {
    const registry = await amqpRegistry();
    const recorder = new RecordingPublisher({
      async publish(uri, messages) {
        const mine = messages.map((message) => (message.body as Numbered).key);
        for (const key of new Set(mine)) {
          if (shared.inFlight.has(key)) shared.violations.push(`partition ${key} in flight in two relays`);
          shared.inFlight.add(key);
        }
        try {
          await registry.publish(uri, messages);
        } finally {
          for (const key of new Set(mine)) shared.inFlight.delete(key);
        }
      },
    });
    recorders.push(recorder);
    relays.push(new OutboxRelay(db, recorder, { schema, migrate: false, batchSize: 100, log: silentLogger, relayId: `relay-${n}` }));
  }
  await Promise.all(relays.map((relay) => relay.start()));
  const confirmed = (): number => recorders.reduce((sum, recorder) => sum + recorder.confirmed.length, 0);
  await until(() => confirmed() >= total, () => `${confirmed()} of ${total} confirmed`, 120_000);
  const got = await readUntilQuiet(queue, total, 60_000);

  expect(shared.violations).toEqual([]);
  expect(recorders.flatMap((recorder) => recorder.violations)).toEqual([]);
  expect(got).toHaveLength(total); // no failures, so no duplicates either
  expect(new Set(got.map((message) => message.id))).toEqual(new Set(events.map((event) => event.id)));
  const byKey = assertOrderedPerPartition(got.map((message) => message.body as Numbered));
  for (const key of keys) expect(byKey.get(key)).toHaveLength(next.get(key) ?? 0);
  const published = relays.map((relay) => relay.stats.published);
  expect(published.reduce((sum, n) => sum + n, 0)).toBe(total);
  expect(published.every((n) => n > 0)).toBe(true);
  expect(await relays[0]?.backlog()).toMatchObject({ pending: 0, parked: 0 });
});

it('a poison row (RabbitMQ returns it unroutable every time) is parked with its error after maxAttempts; the rest is published', async () => {
  const schema = await freshSchema('amqp_poison');
  const queue = uniqueName('outbox-poison');
  const exchange = uniqueName('outbox-nowhere');
  admin.track({ queues: [queue], exchanges: [exchange] });
  await (await admin.channel()).assertExchange(exchange, 'fanout', { durable: false }); // bound to no queue
  const outbox = new Outbox({ schema });
  const poison = createMessage({ n: 0 });
  await outbox.add(db, poison, { destination: `amqp:exchange/${exchange}`, partitionKey: 'p' });
  await outbox.add(db, createMessage({ n: 1 }), { destination: `amqp:queue/${queue}`, partitionKey: 'p' });
  await outbox.add(db, createMessage({ n: 2 }), { destination: `amqp:queue/${queue}`, partitionKey: 'q' });
  const relay = new OutboxRelay(db, await amqpRegistry(), { schema, migrate: false, maxAttempts: 3, backoff: { initialMs: 20, maxMs: 50 }, pollIntervalMs: 50, log: silentLogger });
  relays.push(relay);
  await relay.start();
  await until(async () => (await relay.backlog()).parked === 1, () => 'not parked', 30_000);
  const [parked] = await relay.parked();
  expect(parked).toMatchObject({ messageId: poison.id, attempts: 3, partitionKey: 'p' });
  expect(parked?.lastError).toMatch(/^UNROUTABLE: /);
  const got = await readUntilQuiet(queue, 2, 20_000);
  expect(got.map((message) => message.body)).toEqual(expect.arrayContaining([{ n: 1 }, { n: 2 }]));
  expect(relay.stats).toMatchObject({ failed: 3, parked: 1, published: 2 });
});
