/**
 * 01 — hello, memory. Zero setup: in-process channels only, nothing to install or configure.
 *
 *   node ./bin/interchange.js run examples/01-hello-memory/route.ts
 *
 * A generator publishes a synthetic order every 50 ms to `memory:orders`. The `orders` route drops
 * empty orders, adds VAT, and sends big orders to `memory:big-orders`, the rest to
 * `memory:orders-processed`; an order it cannot price (a negative total) goes to the dead letter
 * channel `memory:dead-letters` with the error in its headers. The other routes consume those
 * channels so that none of them fills up. Ctrl-C drains what is in flight and prints the counts.
 */
import { createMessage, from, type Integration } from 'interchange-eip';

interface Order {
  readonly orderId: number;
  readonly customer: string;
  /** Net amount in euros. */
  readonly total: number;
}

interface PricedOrder extends Order {
  readonly vat: number;
  readonly gross: number;
}

const VAT_RATE = 0.2;
const BIG_ORDER = 1000;

const cents = (amount: number): number => Math.round(amount * 100) / 100;

function addVat({ body }: { body: Order }): PricedOrder {
  if (body.total < 0) throw new RangeError(`order ${body.orderId} has a negative total (${body.total}): refunds go through the refunds flow`);
  const vat = cents(body.total * VAT_RATE);
  return { ...body, vat, gross: cents(body.total + vat) };
}

export const routes = [
  from<Order>('memory:orders', { id: 'orders' })
    .filter((order) => order.body.total !== 0, { id: 'drop-empty' })
    .transform(addVat, { id: 'add-vat' })
    .choice((route) =>
      route
        .when((order) => order.body.gross >= BIG_ORDER, (big) => big.to('memory:big-orders'))
        .otherwise((small) => small.to('memory:orders-processed')),
    )
    .deadLetterChannel('memory:dead-letters'),

  // Big orders are reviewed: a summary of each goes to the audit channel.
  from<PricedOrder>('memory:big-orders', { id: 'big-order-audit' })
    .transform(({ body }) => ({ orderId: body.orderId, customer: body.customer, gross: body.gross, reason: `gross >= ${BIG_ORDER}` }))
    .to('memory:audit'),

  // The ends of the flow. A pub-sub channel hands each message to every subscriber and, with none
  // (as here), to nobody: these routes stand in for the shipping, audit and operations services.
  from('memory:orders-processed', { id: 'shipping' }).to('memory:shipping?type=pubsub'),
  from('memory:audit', { id: 'audit-log' }).to('memory:audit-log?type=pubsub'),
  from('memory:dead-letters', { id: 'dead-letter-alerts' }).to('memory:ops-alerts?type=pubsub'),
];

const customers = ['ada', 'grace', 'linus', 'barbara', 'ken'];

/** Order n: mostly ordinary, every 10th empty (filtered), every 25th negative (dead-lettered). */
function syntheticOrder(n: number): Order {
  const customer = customers[n % customers.length] ?? 'anonymous';
  if (n % 10 === 0) return { orderId: n, customer, total: 0 };
  if (n % 25 === 0) return { orderId: n, customer, total: -cents(Math.random() * 100) };
  return { orderId: n, customer, total: cents(Math.random() * (Math.random() < 0.2 ? 3000 : 500)) };
}

/** Starts the generator once the routes run; the CLI calls the returned function before stopping them. */
export function onStart(integration: Integration): () => void {
  let n = 0;
  const timer = setInterval(() => {
    n += 1;
    integration.transports.publish('memory:orders', [createMessage(syntheticOrder(n))]).catch((error: unknown) => {
      console.error(`generator: order ${n} not published:`, error);
    });
  }, 50);
  return () => clearInterval(timer);
}
