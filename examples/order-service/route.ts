/**
 * order-service — transactional outbox and inbox. Zero setup: with no DATABASE_URL an embedded
 * PostgreSQL (PGlite, in memory) stands in, and with no AMQP_URL the events travel on an in-memory
 * channel. With both set, it runs on real PostgreSQL and RabbitMQ — the same code path.
 *
 *   node ./bin/interchange.js run examples/order-service/route.ts
 *   DATABASE_URL=postgres://postgres@127.0.0.1:5432/test AMQP_URL=amqp://guest:guest@127.0.0.1:5672 \
 *     node ./bin/interchange.js run examples/order-service/route.ts
 *
 * Run from the repository root (the contracts are read from ./schemas). See README.md here.
 */
import { defineIntegration, redactUrl } from 'interchange-eip';
import { openDatabase } from 'interchange-eip/adapters/postgres';
import { createTables, orderService, startService } from './order-service.ts';

const databaseUrl = process.env.DATABASE_URL || undefined;
const amqpUrl = process.env.AMQP_URL || undefined;
const eventsUri = amqpUrl === undefined ? 'memory:order-events' : 'amqp:queue/order-events';

const banner = [
  '┌─ order-service ─────────────────────────────────────────────────────────────',
  databaseUrl === undefined
    ? '│ DATABASE_URL is not set: using an EMBEDDED PGlite database in memory (lost on exit).'
    : `│ DATABASE_URL is set: using PostgreSQL at ${redactUrl(databaseUrl)}`,
  amqpUrl === undefined
    ? '│ AMQP_URL is not set: order.placed@1 events travel on an IN-MEMORY channel (memory:order-events).'
    : `│ AMQP_URL is set: order.placed@1 events go through RabbitMQ (${eventsUri}).`,
  '│ Set both to run against real PostgreSQL and RabbitMQ: same code, same SQL.',
  '└─────────────────────────────────────────────────────────────────────────────',
];
console.log(banner.join('\n'));

const database = await openDatabase({ url: databaseUrl });
await createTables(database);
const { routes, modules } = orderService({ database, eventsUri });

export default defineIntegration({
  routes,
  modules,
  // On stop the integration stops the relay first (a Lifecycle), then the routes drain; the process exit closes the database.
  onStart: (integration) => startService(integration, database, eventsUri),
});
