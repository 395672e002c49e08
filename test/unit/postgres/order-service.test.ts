import { afterAll, beforeAll, expect, it } from 'vitest';
import { createMessage } from '../../../src/core/index.ts';
import { SchemaValidationError } from '../../../src/schema/index.ts';
import { startTestIntegration, type TestIntegration } from '../../../facade/testing/index.ts';
import { openEmbeddedDatabase, Outbox, type Database } from '../../../adapters/postgres/index.ts';
import { createTables, customerTotals, demoOrder, orderService, placeOrder, SCHEMA } from '../../../examples/order-service/order-service.ts';

// examples/order-service in its zero-setup form: PGlite and an in-memory channel.
const eventsUri = 'memory:order-events';
let database: Database;
let running: TestIntegration;

beforeAll(async () => {
  database = await openEmbeddedDatabase();
  await createTables(database);
  await createTables(database); // idempotent
  running = await startTestIntegration(orderService({ database, eventsUri })); // the relay is a Lifecycle: started with the integration
}, 60_000);
afterAll(async () => {
  await running.stop({ drainTimeoutMs: 1_000 });
  await database.close();
});

it('places orders atomically with their events, and the read model applies each event once', async () => {
  const outbox = running.app.container.get(Outbox);
  const first = { ...demoOrder(1), customerId: 'ada', total: 10, lines: [{ sku: 'A', quantity: 2, unitPrice: 5 }] };
  const second = { ...demoOrder(2), customerId: 'ada', total: 7.5, lines: [{ sku: 'B', quantity: 1, unitPrice: 7.5 }] };
  const invalid = demoOrder(10); // negative price: refused by order.placed@1
  await placeOrder(database, outbox, first, eventsUri);
  await placeOrder(database, outbox, second, eventsUri);
  await expect(placeOrder(database, outbox, invalid, eventsUri)).rejects.toBeInstanceOf(SchemaValidationError);

  await expect.poll(() => customerTotals(database), { timeout: 10_000 }).toEqual([{ customer_id: 'ada', orders: 2, total: '17.50' }]);
  const { rows: orders } = await database.query<{ id: string }>(`SELECT id FROM ${SCHEMA}.orders ORDER BY id`);
  expect(orders.map((row) => row.id).sort()).toEqual([first.orderId, second.orderId].sort()); // the refused order's row rolled back too

  // A redelivered event (same id) is absorbed by the inbox.
  const route = () => running.app.metrics()['customer-totals'];
  const event = createMessage(first, { id: 'redelivered-1', headers: { schema: 'order.placed@1' } });
  await running.kit.sendMessages(eventsUri, [event, event]);
  await expect.poll(() => route()?.filtered, { timeout: 10_000 }).toBe(1);
  expect(await customerTotals(database)).toEqual([{ customer_id: 'ada', orders: 3, total: '27.50' }]);
}, 30_000);
