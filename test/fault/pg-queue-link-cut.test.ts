import { createServer, connect as tcpConnect, type Server, type Socket } from 'node:net';
import { afterAll, expect, it } from 'vitest';
import { createMessage, parseEndpoint, silentLogger, TimeoutError, type Delivery } from '../../src/core/index.ts';
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

/**
 * A TCP proxy to PostgreSQL that can turn into a black hole: connections stay open, what is sent is
 * read and dropped, nothing ever comes back (a partition that drops packets without a reset). Connections
 * made after `restore` forward again; those black-holed stay dead, as behind a real partition.
 */
class BlackHoleProxy {
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  private silent = false;
  private readonly dead = new Set<Socket>();
  port = 0;

  async start(): Promise<void> {
    const server = createServer((client) => {
      this.sockets.add(client);
      client.on('error', () => undefined);
      client.on('close', () => this.sockets.delete(client));
      if (this.silent) {
        this.swallow(client);
        return;
      }
      const upstream = tcpConnect(5432, '127.0.0.1');
      this.sockets.add(upstream);
      upstream.on('error', () => undefined);
      upstream.on('close', () => this.sockets.delete(upstream));
      client.pipe(upstream).pipe(client);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    this.port = (server.address() as { port: number }).port;
    this.server = server;
  }

  /** Every connection, open or new, goes silent. */
  blackHole(): void {
    this.silent = true;
    for (const socket of this.sockets) this.swallow(socket);
  }

  restore(): void {
    this.silent = false;
  }

  async stop(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => (this.server === undefined ? resolve() : this.server.close(() => resolve())));
  }

  private swallow(socket: Socket): void {
    if (this.dead.has(socket)) return;
    this.dead.add(socket);
    socket.unpipe();
    socket.removeAllListeners('data');
    socket.on('data', () => undefined);
    socket.resume();
  }
}

it('a black-holed link (no reset): publish rejects with TimeoutError within publishTimeoutMs, the consumer recovers when the link is back', async () => {
  admin ??= await openDatabase({ url: POSTGRES_URL, log: silentLogger });
  const hole = new BlackHoleProxy();
  await hole.start();
  const url = POSTGRES_URL.replace(/@[^/]+\//, `@127.0.0.1:${hole.port}/`);
  const uri = parseEndpoint(`pgqueue:hP-hole-${Date.now().toString(36)}?visibilityTimeoutMs=3000`);
  const options = { url, schema, log: silentLogger, pollIntervalMs: 200, statementTimeoutMs: 1_000 } as const;
  const publisher = new PgQueueTransport({ ...options, publishTimeoutMs: 2_000 });
  const consumer = new PgQueueTransport(options);
  await publisher.connect();
  await consumer.connect();
  const received: unknown[] = [];
  const subscription = consumer.consume(uri).subscribe((delivery: Delivery) => {
    received.push(delivery.message.body);
    delivery.ack();
  });
  try {
    await publisher.publish(uri, [createMessage({ n: 1 })]);
    await until(() => received.length === 1, () => 'first message not received');

    hole.blackHole();
    const started = Date.now();
    const outcome = await publisher.publish(uri, [createMessage({ n: 2 })]).then(
      () => 'committed',
      (error: unknown) => error,
    );
    expect(outcome).toBeInstanceOf(TimeoutError);
    expect(Date.now() - started).toBeLessThan(10_000); // bounded by publishTimeoutMs, not by TCP (~15 min)

    hole.restore();
    await publisher.publish(uri, [createMessage({ n: 3 })]);
    await until(() => received.some((body) => (body as { n: number }).n === 3), () => `received ${JSON.stringify(received)}`, 30_000);
    await until(async () => {
      const depth = await publisher.depth(uri);
      return depth.ready + depth.invisible === 0;
    }, () => 'acks never reached the table', 30_000);
  } finally {
    subscription.unsubscribe();
    await Promise.race([Promise.all([consumer.close(), publisher.close()]), sleep(20_000).then(() => Promise.reject(new Error('close() hung on the black-holed link')))]);
    await hole.stop();
  }
});
