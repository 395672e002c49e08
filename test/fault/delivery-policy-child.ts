// Child process of delivery-policy-crash.test.ts: one route under a delivery policy,
//   amqp:queue/<in> (prefetch 10) → slow effect (one PostgreSQL row per execution) → amqp:queue/<out>
// Arguments: <amqp url> <database url> <mode> <in queue> <out queue> <effects table> <redis url> <redis prefix> <worker> [<schema>].
// <mode> is a delivery policy, or `effectively-once+inbox`: effectively-once whose effect commits in
// one transaction with its inbox record (`PostgresInbox.handle`, tables in <schema>) and with its
// output, written to the transactional outbox and published by an `OutboxRelay`.
// Prints "started" once consuming, then "effect <n>" after each effect row is committed, until killed.
import pg from 'pg';
import { Redis } from 'ioredis';
import { createMessage, silentLogger } from '../../src/core/index.ts';
import type { DeliveryPolicy, RouteSource } from '../../src/dsl/route-definition.ts';
import { createIntegration } from '../../src/runtime/integration.ts';
import { from } from '../../facade/route-builder.ts';
import { amqpModule } from '../../adapters/amqp/index.ts';
import { RedisIdempotencyStore } from '../../adapters/redis/index.ts';
import { openDatabase, Outbox, OutboxRelay, PostgresInbox } from '../../adapters/postgres/index.ts';

const [amqpUrl = '', databaseUrl = '', mode = 'at-least-once', inQueue = '', outQueue = '', table = '', redisUrl = '', prefix = '', worker = '1', schema = 'public'] = process.argv.slice(2);
const transactional = mode === 'effectively-once+inbox';
const delivery = (transactional ? 'effectively-once' : mode) as DeliveryPolicy;
const db = new pg.Client({ connectionString: databaseUrl });
await db.connect();
const redis = new Redis(redisUrl, { maxRetriesPerRequest: 1 });
// the claim of a crashed consumer holds 1.5 s: then its messages are processed again
const idempotency = delivery === 'effectively-once' ? { idempotency: { store: new RedisIdempotencyStore(redis, { prefix, leaseMs: 1_500 }) } } : {};
const slowly = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 25));
const source = from<{ n: number }>(`amqp:queue/${inQueue}`, { id: 'hH-crash', prefetch: 10, delivery, ...idempotency });

let relay: OutboxRelay | undefined;
let route: RouteSource;
if (transactional) {
  const database = await openDatabase({ url: databaseUrl, log: silentLogger });
  const inbox = new PostgresInbox(database, { consumer: 'hH-effect', schema });
  const outbox = new Outbox({ schema });
  route = source.step(
    'effect',
    inbox.handle<{ n: number }>(
      async (message, tx) => {
        await slowly();
        await tx.query(`INSERT INTO ${table} (message_id, worker) VALUES ($1, $2)`, [message.id, Number(worker)]);
        await outbox.add(tx, createMessage(message.body, { id: message.id }), { destination: `amqp:queue/${outQueue}` });
        process.stdout.write(`effect ${message.body.n}\n`); // committed just after
      },
      { concurrency: 5 },
    ),
    { sends: true },
  );
  relay = new OutboxRelay(database, { publish: (uri, messages) => app.transports.publish(uri, messages) }, { schema, pollIntervalMs: 50, leaseMs: 1_500, migrate: false, log: silentLogger });
} else {
  route = source
    .process(
      async (message) => {
        await slowly();
        await db.query(`INSERT INTO ${table} (message_id, worker) VALUES ($1, $2)`, [message.id, Number(worker)]);
        process.stdout.write(`effect ${message.body.n}\n`);
      },
      { concurrency: 5 },
    )
    .to(`amqp:queue/${outQueue}`);
}

const app = createIntegration({ logger: silentLogger, modules: [amqpModule({ url: amqpUrl, connectTimeoutMs: 5_000 })], routes: [route] });
await app.start();
await relay?.start();
process.stdout.write('started\n');
