import { afterAll, expect, it } from 'vitest';
import { createMessage, parseEndpoint, silentLogger, type Delivery } from '../../src/core/index.ts';
import { openDatabase, PgQueueTransport, type Database, type PgQueueStatus } from '../../adapters/postgres/index.ts';
import { LinkProxy } from '../support/link-proxy.ts';
import { POSTGRES_URL, sleep, uniqueSchema, until } from '../unit/postgres/support.ts';

// The TCP link to the SHARED PostgreSQL cut for 2 s under a fixed-rate publisher and a consumer (both
// through the proxy): the shared server itself is never restarted. The promise (docs/transports/postgres-queue.md):
// 0 lost; duplicates only from a publish whose COMMIT was on the wire at the cut (retried: its
// outcome is unknown) and from deliveries whose ack could not be written before their lease ran out —
// at most the publishes in flight at the cut plus the consumer's prefetch.
const proxy = new LinkProxy(5432);
const schema = uniqueSchema('hp_pgq_cut');
let admin: Database | undefined;
afterAll(async () => {
  await proxy.cut();
  await admin?.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  await admin?.close();
});

const RATE_PER_SECOND = 250;
const SECONDS = 8;
const PREFETCH = 20;

it('the link to PostgreSQL cut mid-stream under a fixed-rate publisher: every publish settles, 0 lost, duplicates within the promise', async () => {
  admin = await openDatabase({ url: POSTGRES_URL, log: silentLogger });
  await proxy.start();
  const url = POSTGRES_URL.replace(/@[^/]+\//, `@127.0.0.1:${proxy.port}/`);
  const uri = parseEndpoint(`pgqueue:hP-cut-${Date.now().toString(36)}?visibilityTimeoutMs=5000`);
  const publisher = new PgQueueTransport({ url, schema, log: silentLogger, publishTimeoutMs: 60_000 });
  const consumer = new PgQueueTransport({ url, schema, log: silentLogger, pollIntervalMs: 200 });
  await publisher.connect();
  await consumer.connect();
  const states: PgQueueStatus['state'][] = [];
  publisher.status$.subscribe((status) => states.push(status.state));
  const received: string[] = [];
  const subscription = consumer.consume(uri, { prefetch: PREFETCH }).subscribe((delivery: Delivery) => {
    received.push(delivery.message.id);
    setTimeout(() => delivery.ack(), 2);
  });

  const published = new Set<string>();
  const failed: unknown[] = [];
  const pending = new Set<Promise<void>>();
  let inFlightAtCut = -1;
  const total = RATE_PER_SECOND * SECONDS;
  const started = Date.now();
  try {
    for (let n = 0; n < total; n += 1) {
      const due = started + (n * 1000) / RATE_PER_SECOND;
      if (due > Date.now()) await sleep(due - Date.now());
      if (n === Math.floor(total / 3)) {
        inFlightAtCut = pending.size;
        void proxy.cut().then(() => sleep(2_000)).then(() => proxy.start());
      }
      const message = createMessage({ n });
      const publishing = publisher.publish(uri, [message]).then(
        () => {
          published.add(message.id);
        },
        (error: unknown) => {
          failed.push(error);
        },
      );
      pending.add(publishing);
      void publishing.finally(() => pending.delete(publishing));
    }
    await Promise.all([...pending]);
    await until(() => published.size > 0 && [...published].every((id) => received.includes(id)), () => `received ${new Set(received).size} of ${published.size}`, 60_000);
    await until(async () => {
      const depth = await publisher.depth(uri);
      return depth.ready + depth.invisible === 0;
    }, () => 'queue not drained', 30_000);
  } finally {
    subscription.unsubscribe();
    await consumer.close();
    await publisher.close();
  }

  const distinct = new Set(received);
  const lost = [...published].filter((id) => !distinct.has(id)).length;
  const duplicates = received.length - distinct.size;
  console.log(`pgqueue link cut: ${total} published at ${RATE_PER_SECOND}/s, ${failed.length} failed, ${received.length} received, ${distinct.size} distinct, ${lost} lost, ${duplicates} duplicates (${inFlightAtCut} publishes in flight at the cut)`);
  expect(failed).toEqual([]);
  expect(published.size).toBe(total);
  expect(lost).toBe(0);
  expect(duplicates).toBeLessThanOrEqual(inFlightAtCut + PREFETCH);
  expect(states).toContain('reconnecting');
  expect(states.at(-1)).toBe('closed');
});
