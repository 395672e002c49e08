import { afterAll, beforeAll, expect, it } from 'vitest';
import { createMessage, silentLogger } from '../../src/core/index.ts';
import { from } from '../../facade/route-builder.ts';
import { startTestIntegration } from '../../facade/testing/index.ts';
import { amqpModule } from '../../adapters/amqp/index.ts';
import { migrate, openDatabase, Outbox, PostgresInbox, type Database } from '../../adapters/postgres/index.ts';
import { AMQP_URL, BrokerAdmin, readUntilQuiet, uniqueName, until } from './amqp-support.ts';
import { dropSchema, POSTGRES_URL, uniqueSchema, type Numbered } from '../unit/postgres/support.ts';
import { ChildScript } from '../support/child-script.ts';

const admin = new BrokerAdmin();
let db: Database;
const schema = uniqueSchema('kill');

beforeAll(async () => {
  db = await openDatabase({ url: POSTGRES_URL, log: silentLogger });
  await migrate(db, { schema });
});
afterAll(async () => {
  await admin.close();
  await dropSchema(db, schema);
  await db.close();
});

/** Starts the relay child; resolves once it runs. */
async function startRelay(hangAfter: number): Promise<ChildScript> {
  const relay = new ChildScript('test/integration/postgres-relay-child.ts', [POSTGRES_URL, AMQP_URL, schema, String(hangAfter)]);
  await until(() => relay.lines.includes('started'), () => `relay child did not start: ${relay.lines.join(' | ')}`, 30_000);
  return relay;
}

const pending = async (): Promise<number> => Number((await db.query<{ n: string }>(`SELECT count(*) AS n FROM "${schema}".interchange_outbox`)).rows[0]?.n);

/** Runs a second relay until the outbox is empty (it takes the killed relay's rows over once their lease expires), then stops it. */
async function relayUntilEmpty(): Promise<void> {
  const relay = await startRelay(0);
  try {
    await until(async () => (await pending()) === 0, () => `second relay: ${relay.lines.at(-1) ?? 'no output'}`, 60_000);
  } finally {
    await relay.kill('SIGTERM');
  }
}

it('the relay killed with SIGKILL mid-batch and restarted: every committed event published, 0 lost, the duplicates absorbed by the inbox', async () => {
  const queue = uniqueName('outbox-kill');
  admin.track({ queues: [queue] });
  await (await admin.channel()).assertQueue(queue, { durable: true });
  const outbox = new Outbox({ schema });
  const total = 3000;
  const keys = ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'];
  const events = Array.from({ length: total }, (_, n) => createMessage<Numbered>({ key: keys[n % keys.length] as string, seq: Math.floor(n / keys.length) }));
  for (let start = 0; start < total; start += 250) {
    await db.transaction((tx) => outbox.addAll(tx, events.slice(start, start + 250), (message) => ({ destination: `amqp:queue/${queue}`, partitionKey: (message.body as Numbered).key })));
  }

  // First relay: hangs inside a batch once 1,000 messages are confirmed by RabbitMQ, and is killed there.
  const first = await startRelay(1000);
  await until(() => first.lines.includes('hanging'), () => `first relay: ${first.lines.at(-1) ?? 'no output'}`, 30_000);
  await first.kill();
  const confirmedBeforeKill = Number(first.lines.filter((line) => line.startsWith('confirmed ')).at(-1)?.split(' ')[1]);
  expect(await pending()).toBeGreaterThan(total - confirmedBeforeKill); // its last batch was confirmed, not deleted

  // Restarted: takes the dead relay's rows over once their lease expires, and finishes.
  await relayUntilEmpty();

  // What RabbitMQ holds, through a route with the inbox: each event applied once, the duplicates dropped.
  await db.query(`CREATE TABLE "${schema}".applied (message_id text PRIMARY KEY, times integer NOT NULL)`);
  const inbox = new PostgresInbox(db, { schema, consumer: 'kill-test' });
  const { app, stop } = await startTestIntegration({
    routes: [
      from<Numbered>(`amqp:queue/${queue}`, { id: 'consumer' })
        .step('inbox', inbox.handle<Numbered>(async (message, tx) => {
          await tx.query(`INSERT INTO "${schema}".applied (message_id, times) VALUES ($1, 1) ON CONFLICT (message_id) DO UPDATE SET times = applied.times + 1`, [message.id]);
        }, { concurrency: 8 }))
        .to('memory:applied?type=pubsub'),
    ],
    modules: [amqpModule({ url: AMQP_URL })],
  });
  let metrics;
  try {
    await until(async () => Number((await db.query<{ n: string }>(`SELECT count(*) AS n FROM "${schema}".applied`)).rows[0]?.n) === total, () => 'not every event applied', 60_000);
    await until(
      () => {
        const now = app.metrics().consumer;
        return now !== undefined && now.received >= total && now.received === now.completed + now.filtered && now.inFlight === 0;
      },
      () => JSON.stringify(app.metrics().consumer),
      30_000,
    );
    metrics = app.metrics().consumer;
  } finally {
    await stop({ drainTimeoutMs: 5_000 });
  }
  const { rows: applied } = await db.query<{ message_id: string; times: number }>(`SELECT message_id, times FROM "${schema}".applied`);
  expect(new Set(applied.map((row) => row.message_id))).toEqual(new Set(events.map((event) => event.id))); // 0 lost
  expect(applied.every((row) => row.times === 1)).toBe(true); // none applied twice
  const delivered = metrics?.received ?? 0;
  const duplicates = delivered - total;
  expect(duplicates).toBeGreaterThan(0); // the killed batch was published again…
  expect(duplicates).toBeLessThanOrEqual(200); // …and only the batches in flight (batchSize 100 × concurrency 2 in the child)
  expect(metrics?.filtered).toBe(duplicates); // …and the inbox absorbed every copy
  expect(metrics?.completed).toBe(total);
});

it('per-partition order survives the kill (first occurrences, as RabbitMQ holds them)', async () => {
  // Checked on a fresh queue so the previous test's consumer does not interfere.
  const queue = uniqueName('outbox-kill-order');
  admin.track({ queues: [queue] });
  await (await admin.channel()).assertQueue(queue, { durable: true });
  const outbox = new Outbox({ schema });
  const keys = ['a', 'b', 'c', 'd'];
  const total = 1200;
  const events = Array.from({ length: total }, (_, n) => createMessage<Numbered>({ key: keys[n % keys.length] as string, seq: Math.floor(n / keys.length) }));
  await db.transaction((tx) => outbox.addAll(tx, events, (message) => ({ destination: `amqp:queue/${queue}`, partitionKey: (message.body as Numbered).key })));
  const first = await startRelay(500);
  await until(() => first.lines.includes('hanging'), () => `first relay: ${first.lines.at(-1) ?? 'no output'}`, 30_000);
  await first.kill();
  await relayUntilEmpty();
  const got = await readUntilQuiet(queue, total, 60_000);
  const seen = new Set<string>();
  const firsts: Numbered[] = [];
  for (const message of got) {
    if (seen.has(message.id)) continue;
    seen.add(message.id);
    firsts.push(message.body as Numbered);
  }
  expect(seen.size).toBe(total);
  for (const key of keys) {
    const seqs = firsts.filter((body) => body.key === key).map((body) => body.seq);
    expect(seqs).toEqual([...seqs].sort((x, y) => x - y));
    expect(seqs).toHaveLength(total / keys.length);
  }
});
