/**
 * The order service of examples/order-service: placing an order writes the `orders` row and its
 * `order.placed@1` event in one transaction (transactional outbox); the relay publishes the event;
 * a route consumes it through the inbox and updates the `customer_totals` read model (effectively once).
 */
import { createMessage, from, schemaModule, type Integration, type RouteSource } from 'interchange-eip';
import type { OrderPlacedV1 } from '../../schemas/types.generated.ts';
import { inbox, migrate, Outbox, OutboxRelay, postgresModule, type Database, type SqlExecutor } from 'interchange-eip/adapters/postgres';
import type { ContainerModule } from 'inversify';

export const SCHEMA = 'order_service';

export interface OrderServiceOptions {
  readonly database: Database;
  /** Where `order.placed@1` events go: `amqp:queue/order-events` with RabbitMQ, else an in-memory channel. */
  readonly eventsUri: string;
}

/** Creates the service's own tables next to the outbox and inbox (idempotent). */
export async function createTables(database: Database): Promise<void> {
  await migrate(database, { schema: SCHEMA });
  await database.query(`CREATE TABLE IF NOT EXISTS ${SCHEMA}.orders (
    id text PRIMARY KEY, customer_id text NOT NULL, total numeric(12, 2) NOT NULL, currency text NOT NULL, placed_at timestamptz NOT NULL)`);
  await database.query(`CREATE TABLE IF NOT EXISTS ${SCHEMA}.customer_totals (
    customer_id text PRIMARY KEY, orders integer NOT NULL, total numeric(14, 2) NOT NULL)`);
}

/**
 * Places an order: the row and its event commit together or not at all. Throws (and publishes
 * nothing) if the order is invalid for its contract or the transaction fails.
 */
export async function placeOrder(database: Database, outbox: Outbox, order: OrderPlacedV1, eventsUri: string): Promise<void> {
  await database.transaction(async (tx) => {
    await tx.query(`INSERT INTO ${SCHEMA}.orders (id, customer_id, total, currency, placed_at) VALUES ($1, $2, $3, $4, $5)`, [order.orderId, order.customerId, order.total, order.currency, order.placedAt]);
    await outbox.add(tx, createMessage(order, { headers: { schema: 'order.placed@1', correlationId: order.orderId } }), { destination: eventsUri, partitionKey: order.orderId });
  });
}

/** The read model update, in the inbox's transaction: applied once per event, whatever the redeliveries. */
async function addToCustomerTotals(order: OrderPlacedV1, tx: SqlExecutor): Promise<void> {
  await tx.query(
    `INSERT INTO ${SCHEMA}.customer_totals (customer_id, orders, total) VALUES ($1, 1, $2)
     ON CONFLICT (customer_id) DO UPDATE SET orders = customer_totals.orders + 1, total = customer_totals.total + EXCLUDED.total`,
    [order.customerId, order.total],
  );
}

/** The routes and DI modules of the service. */
export function orderService({ database, eventsUri }: OrderServiceOptions): { routes: RouteSource[]; modules: ContainerModule[] } {
  return {
    routes: [
      from(eventsUri, { id: 'customer-totals', contract: 'order.placed@1' })
        .step('inbox', inbox<OrderPlacedV1>({ schema: SCHEMA, consumer: 'customer-totals' }, (message, tx) => addToCustomerTotals(message.body, tx)))
        .to('memory:customer-totals-updated?type=pubsub'),
    ],
    modules: [schemaModule(), postgresModule({ database, schema: SCHEMA, relay: { pollIntervalMs: 500 } })],
  };
}

const customers = ['ada', 'grace', 'linus', 'barbara', 'ken'];

/** Order n of the demo generator; every 10th has a negative price, which its contract refuses: that transaction rolls back, nothing is published. */
export function demoOrder(n: number): OrderPlacedV1 {
  const quantity = 1 + (n % 3);
  const unitPrice = n % 10 === 0 ? -1 : 5 + (n % 7) * 2.5;
  return {
    orderId: `order-${Date.now().toString(36)}-${n}`,
    customerId: customers[n % customers.length] ?? 'anonymous',
    lines: [{ sku: `SKU-${n % 4}`, quantity, unitPrice }],
    total: quantity * unitPrice,
    currency: 'EUR',
    placedAt: new Date().toISOString(),
  };
}

/** The customer totals read model, for display and tests. */
export async function customerTotals(database: Database): Promise<{ customer_id: string; orders: number; total: string }[]> {
  return (await database.query<{ customer_id: string; orders: number; total: string }>(`SELECT customer_id, orders, total::text AS total FROM ${SCHEMA}.customer_totals ORDER BY customer_id`)).rows;
}

/** Starts the demo generator (the relay is a `Lifecycle`: the integration starts and stops it); returns the stop hook. */
export async function startService(integration: Integration & { readonly container: { get<T>(id: abstract new (...args: never[]) => T): T } }, database: Database, eventsUri: string, { everyMs = 200, log = console.log }: { everyMs?: number; log?: (line: string) => void } = {}): Promise<() => Promise<void>> {
  const relay = integration.container.get(OutboxRelay);
  const outbox = integration.container.get(Outbox);
  let n = 0;
  let placed = 0;
  let refused = 0;
  const timer = setInterval(() => {
    n += 1;
    placeOrder(database, outbox, demoOrder(n), eventsUri).then(
      () => {
        placed += 1;
      },
      (error: unknown) => {
        refused += 1;
        log(`order ${n} refused, nothing written or published: ${(error as Error).message.split('\n')[0]}`);
      },
    );
  }, everyMs);
  const report = setInterval(() => {
    void Promise.all([relay.backlog(), customerTotals(database)]).then(([backlog, totals]) => {
      log(`orders placed ${placed}, refused ${refused}; outbox backlog ${backlog.pending}, lag ${backlog.lagMs} ms, parked ${backlog.parked}; read model: ${totals.map((row) => `${row.customer_id} ${row.orders}×/${row.total}`).join(', ')}`);
    });
  }, 5_000);
  return async () => {
    clearInterval(timer);
    clearInterval(report);
  };
}
