import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { RedisStreamsTransport } from '../../adapters/redis/index.ts';
import { createMessage, parseEndpoint, silentLogger, type Delivery } from '../../src/core/index.ts';
import { freePort } from '../support/free-port.ts';
import { accepting } from '../support/mosquitto-process.ts';
import { sleep, until } from '../support/wait.ts';

// A Redis of this test's own (its own loopback port and data directory: never the machine's on 6379),
// with `appendonly yes` and `appendfsync always`, killed with SIGKILL mid-stream and started again on
// the same data while a publisher writes at a fixed rate and a consumer group reads and acks.
//
// The promise (docs/transports/redis-streams.md): every publish that resolved is delivered (none lost:
// the AOF is fsynced before Redis answers); publishes made during the outage wait and resolve after it;
// duplicates are allowed (at-least-once) and bounded — an XADD whose reply the crash lost is resent by
// ioredis (written twice), an entry whose XACK the crash lost is delivered again — so at most the
// publishes in flight at the crash plus the consumer's prefetch.

const RATE_PER_SECOND = 400;
const PREFETCH = 50;

class OwnRedis {
  private child: ChildProcess | undefined;
  readonly dir = mkdtempSync(join(tmpdir(), 'hR-redis-fault-'));
  constructor(readonly port: number) {}

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    if (await accepting(this.port)) throw new Error(`port ${this.port} is taken: cannot start a Redis of our own there`);
    const child = spawn('redis-server', ['--port', String(this.port), '--bind', '127.0.0.1', '--dir', this.dir, '--appendonly', 'yes', '--appendfsync', 'always', '--save', '', '--protected-mode', 'no'], { stdio: 'ignore' });
    this.child = child;
    await until(() => accepting(this.port), () => `redis-server did not listen on ${this.port}`, 10_000);
  }

  /** SIGKILL: a crash, no shutdown save. */
  async kill(): Promise<void> {
    const child = this.child;
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      child.once('exit', () => resolve());
      child.kill('SIGKILL');
    });
  }

  async dispose(): Promise<void> {
    await this.kill();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

const servers: OwnRedis[] = [];
afterAll(async () => {
  for (const server of servers) await server.dispose();
});

describe('Redis Streams through a Redis crash and restart (fault)', () => {
  it('loses no confirmed publish, every publish resolves, duplicates stay within the in-flight bound', async () => {
    const server = new OwnRedis(await freePort());
    servers.push(server);
    await server.start();
    const options = { url: server.url, reconnect: { initialDelayMs: 50, maxDelayMs: 500 }, claimIntervalMs: 500, minIdleMs: 2_000 };
    const producer = new RedisStreamsTransport(options, silentLogger);
    const consumer = new RedisStreamsTransport(options, silentLogger);
    await Promise.all([producer.connect(), consumer.connect()]);
    const stream = parseEndpoint('redis:stream/hR-fault?group=fault');
    const received = new Map<number, number>();
    /** The stream entries each seq was delivered from: two entries = its XADD was written twice. */
    const entries = new Map<number, Set<string>>();
    const subscription = consumer.consume(stream, { prefetch: PREFETCH }).subscribe((delivery: Delivery) => {
      const seq = (delivery.message.body as { seq: number }).seq;
      received.set(seq, (received.get(seq) ?? 0) + 1);
      const ids = entries.get(seq) ?? new Set<string>();
      ids.add(String(delivery.message.headers.redisEntryId));
      entries.set(seq, ids);
      delivery.ack();
    });

    const confirmed = new Set<number>();
    const failed: unknown[] = [];
    const publishes: Promise<void>[] = [];
    let seq = 0;
    let stopped = false;
    let inFlightAtCrash = 0;
    const publisher = (async () => {
      const interval = 1_000 / RATE_PER_SECOND;
      const started = Date.now();
      while (!stopped) {
        const mine = seq++;
        publishes.push(
          producer.publish(stream, [createMessage({ seq: mine }, { id: `seq-${mine}` })]).then(
            () => void confirmed.add(mine),
            (error: unknown) => void failed.push(error),
          ),
        );
        const due = started + seq * interval;
        await sleep(Math.max(0, due - Date.now()));
      }
    })();

    await until(() => confirmed.size >= 400, () => `only ${confirmed.size} confirmed before the crash`, 20_000);
    await server.kill();
    // unanswered when Redis died (an fsync batch can hold dozens): ioredis sends these again, and Redis may have written them
    inFlightAtCrash = seq - confirmed.size - failed.length;
    const atCrash = seq;
    await sleep(1_000);
    await server.start();
    await until(() => confirmed.size >= atCrash + 400, () => `only ${confirmed.size} of ${seq} confirmed after the restart`, 30_000);
    stopped = true;
    await publisher;
    await Promise.all(publishes);

    await until(() => [...confirmed].every((value) => received.has(value)), () => `${[...confirmed].filter((value) => !received.has(value)).length} confirmed publishes not delivered`, 30_000);
    await sleep(3_000); // entries whose XACK was lost come back through the consumer's own pending list
    subscription.unsubscribe();
    await Promise.all([producer.close(), consumer.close()]);

    const lost = [...confirmed].filter((value) => !received.has(value)).length;
    const duplicates = [...received.values()].reduce((sum, count) => sum + count - 1, 0);
    const rewritten = [...entries.values()].reduce((sum, ids) => sum + ids.size - 1, 0);
    const redelivered = duplicates - rewritten;
    console.log(
      `redis streams restart: ${seq} published at ${RATE_PER_SECOND}/s, ${confirmed.size} confirmed, ${failed.length} failed, ${lost} lost, ${duplicates} duplicate deliveries: ` +
        `${rewritten} publishes written twice (${inFlightAtCrash} unanswered at the crash), ${redelivered} entries delivered again (XACK lost; prefetch ${PREFETCH})`,
    );
    expect(failed).toEqual([]);
    expect(confirmed.size).toBe(seq);
    expect(lost).toBe(0);
    // publishes issued during the outage wait in ioredis's offline queue: only those unanswered at the crash can be written twice
    expect(rewritten).toBeLessThanOrEqual(inFlightAtCrash);
    // an entry is delivered again only when its XACK was lost with the crash: at most what the consumer had read and not had acked
    expect(redelivered).toBeLessThanOrEqual(PREFETCH);
  });

  it('close() during an outage resolves without waiting for Redis; the held entries stay pending and are delivered after the restart', async () => {
    const server = new OwnRedis(await freePort());
    servers.push(server);
    await server.start();
    const options = { url: server.url, reconnect: { initialDelayMs: 50, maxDelayMs: 500 }, claimIntervalMs: 100, minIdleMs: 500 };
    const consumer = new RedisStreamsTransport(options, silentLogger);
    await consumer.connect();
    const key = 'hR-fault-close';
    const sent = Array.from({ length: 10 }, (_, index) => createMessage({ n: index }, { id: `close-${index}` }));
    await consumer.publish(parseEndpoint(`redis:stream/${key}`), sent);
    const held: Delivery[] = [];
    consumer.consume(parseEndpoint(`redis:stream/${key}?group=g&headers=all`), { prefetch: 5 }).subscribe((delivery) => held.push(delivery));
    await until(() => held.length === 5, () => `the consumer took ${held.length} entries`);

    await server.kill();
    held[0]?.ack(); // its XACK waits in the offline queue: close must not wait for it either
    const outcome = await Promise.race([consumer.close().then(() => 'closed'), sleep(10_000).then(() => 'still closing after 10 s')]);
    expect(outcome).toBe('closed');

    await server.start();
    const admin = new Redis(server.url, { maxRetriesPerRequest: 1 });
    try {
      // nothing was handed back or acked while Redis was down: the five held entries are still pending
      const [pending] = (await admin.xpending(key, 'g')) as [number];
      expect(pending).toBe(5);
      const after = new RedisStreamsTransport(options, silentLogger);
      await after.connect();
      const got = new Set<string>();
      const subscription = after.consume(parseEndpoint(`redis:stream/${key}?group=g&headers=all`)).subscribe((delivery) => {
        got.add(delivery.message.id);
        delivery.ack();
      });
      // another consumer name: the held five come back through its claim round once idle past minIdleMs
      await until(() => got.size === 10, () => `only ${got.size} of 10 entries delivered after the restart`, 20_000);
      expect(got).toEqual(new Set(sent.map((message) => message.id)));
      subscription.unsubscribe();
      await after.close();
    } finally {
      admin.disconnect();
    }
  });
});
