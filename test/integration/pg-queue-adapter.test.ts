import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Subscription } from 'rxjs';
import { createMessage, InterchangeError, parseEndpoint, PartialPublishError, silentLogger, type Delivery, type Message } from '../../src/core/index.ts';
import { from } from '../../facade/route-builder.ts';
import { startTestIntegration } from '../../facade/testing/index.ts';
import { environment, openDatabase, pgQueueChannel, pgQueueModule, PgQueueTransport, PgQueueUnencodableError, PostgresConfigurationError, type Database, type PgQueueTransportOptions } from '../../adapters/postgres/index.ts';
import { POSTGRES_URL, sleep, uniqueSchema, until } from '../unit/postgres/support.ts';
import { ChildScript } from '../support/child-script.ts';

// The pgqueue transport against the real PostgreSQL on 127.0.0.1:5432, beyond the contract suite:
// competing consumers in separate pools, a consumer process killed while holding messages, the
// dead-letter table, NOTIFY vs polling, rows written by foreign SQL, publishing in the caller's transaction.
const schema = uniqueSchema('hp_pgq');
const table = `"${schema}".interchange_queue`;
let db: Database;
let counter = 0;
const transports: PgQueueTransport[] = [];
const subscriptions: Subscription[] = [];

beforeAll(async () => {
  db = await openDatabase({ url: POSTGRES_URL, log: silentLogger });
});
afterEach(async () => {
  for (const subscription of subscriptions.splice(0)) subscription.unsubscribe();
  for (const transport of transports.splice(0)) await transport.close();
});
afterAll(async () => {
  await db.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  await db.close();
});

const queueUri = (label: string, options = ''): string => `pgqueue:hP-${label}-${Date.now().toString(36)}-${counter++}${options}`;

async function transport(options: PgQueueTransportOptions = {}): Promise<PgQueueTransport> {
  const created = new PgQueueTransport({ url: POSTGRES_URL, schema, log: silentLogger, ...options });
  transports.push(created);
  await created.connect();
  return created;
}

function consume(via: PgQueueTransport, uri: string, onDelivery: (delivery: Delivery) => void, prefetch = 10): Delivery[] {
  const seen: Delivery[] = [];
  subscriptions.push(
    via.consume(parseEndpoint(uri), { prefetch }).subscribe((delivery) => {
      seen.push(delivery);
      onDelivery(delivery);
    }),
  );
  return seen;
}

const numbered = (count: number): Message<{ n: number }>[] => Array.from({ length: count }, (_, n) => createMessage({ n }));

describe('competing consumers', () => {
  it('three consumers on their own pools share 3,000 messages: each delivered once, none to two', async () => {
    const uri = queueUri('compete');
    const publisher = await transport();
    const consumers = await Promise.all([transport(), transport(), transport()]);
    const ackSoon = (delivery: Delivery): void => {
      setTimeout(() => delivery.ack(), Math.random() * 3);
    };
    const seen = consumers.map((consumer) => consume(consumer, uri, ackSoon, 20));
    const sent = numbered(3000);
    for (let start = 0; start < sent.length; start += 250) await publisher.publish(parseEndpoint(uri), sent.slice(start, start + 250));
    await until(async () => (await publisher.depth(uri)).ready + (await publisher.depth(uri)).invisible === 0 && seen.flat().length >= 3000, () => `got ${seen.map((s) => s.length).join(' + ')}`, 60_000);
    await sleep(300);
    const ids = seen.flat().map((delivery) => delivery.message.id);
    expect(ids).toHaveLength(3000);
    expect(new Set(ids).size).toBe(3000);
    for (const own of seen) expect(own.length).toBeGreaterThan(0);
    expect(seen.flat().every((delivery) => delivery.message.headers.attempt === 1)).toBe(true);
  });

  it('one consumer gets a queue in insertion order across publish calls', async () => {
    const uri = queueUri('fifo');
    const publisher = await transport();
    const sent = numbered(300);
    for (let start = 0; start < sent.length; start += 30) await publisher.publish(parseEndpoint(uri), sent.slice(start, start + 30));
    const seen = consume(await transport(), uri, (delivery) => delivery.ack(), 7);
    await until(() => seen.length >= 300, () => `got ${seen.length}`);
    expect(seen.map((delivery) => (delivery.message.body as { n: number }).n)).toEqual(sent.map((message) => message.body.n));
  });
});

describe('visibility timeout', () => {
  it("a consumer process killed while holding messages: its rows come back after the visibility timeout, attempt 2, none lost", async () => {
    const uri = queueUri('crash', '?visibilityTimeoutMs=1500');
    const publisher = await transport();
    const sent = numbered(50);
    await publisher.publish(parseEndpoint(uri), sent);
    const child = new ChildScript('test/integration/pg-queue-child.ts', [POSTGRES_URL, schema, uri, '20']);
    try {
      await until(() => child.lines.includes('held 20'), () => `child: ${child.lines.at(-1) ?? 'no output'}`, 30_000);
    } finally {
      await child.kill();
    }
    const survivor = await transport();
    const seen = consume(survivor, uri, (delivery) => delivery.ack(), 50);
    // the 30 the child never claimed come at once; its 20 only after their lease runs out
    await until(() => seen.length >= 30, () => `got ${seen.length}`);
    expect(seen.every((delivery) => delivery.message.headers.attempt === 1)).toBe(true);
    await until(() => seen.length >= 50, () => `got ${seen.length}`, 20_000);
    await sleep(300);
    expect(new Set(seen.map((delivery) => delivery.message.id))).toEqual(new Set(sent.map((message) => message.id)));
    expect(seen).toHaveLength(50);
    expect(seen.filter((delivery) => delivery.message.headers.attempt === 2)).toHaveLength(20);
    expect(await survivor.depth(uri)).toEqual({ ready: 0, invisible: 0, dead: 0 });
  });

  it('a live consumer extends the leases it holds: a message held for 3 visibility timeouts is never given to another consumer', async () => {
    const uri = queueUri('extend', '?visibilityTimeoutMs=1000');
    const publisher = await transport();
    await publisher.publish(parseEndpoint(uri), numbered(1));
    const holder = consume(await transport(), uri, () => undefined);
    await until(() => holder.length === 1, () => 'not delivered');
    const other = consume(await transport({ pollIntervalMs: 100 }), uri, (delivery) => delivery.ack());
    await sleep(3_200);
    expect(other).toHaveLength(0);
    holder[0]?.ack();
    await until(async () => (await publisher.depth(uri)).invisible === 0, () => 'ack did not delete the row');
    await sleep(500);
    expect(other).toHaveLength(0);
    expect(holder).toHaveLength(1);
  });
});

describe('dead letters', () => {
  it('a message nacked maxDeliveries times goes to the dead-letter table with the reason; requeueing brings it back at attempt 1', async () => {
    const uri = queueUri('dlq', '?maxDeliveries=3');
    const t = await transport({ redelivery: { initialMs: 20, maxMs: 50 } });
    const [sent] = numbered(1) as [Message];
    await t.publish(parseEndpoint(uri), [sent]);
    const seen = consume(t, uri, (delivery) => delivery.nack(new Error(`boom ${String(delivery.message.headers.attempt)}`)));
    await until(async () => (await t.depth(uri)).dead === 1, () => `attempts ${seen.map((d) => d.message.headers.attempt).join(',')}`);
    expect(seen.map((delivery) => delivery.message.headers.attempt)).toEqual([1, 2, 3]);
    const [dead] = await t.deadLetters(uri);
    expect(dead).toMatchObject({ messageId: sent.id, deliveries: 3 });
    expect(dead?.reason).toContain('nacked on delivery 3 of 3');
    expect(dead?.reason).toContain('boom 3');
    expect(await t.depth(uri)).toEqual({ ready: 0, invisible: 0, dead: 1 });
    const { rows } = await db.query<{ body: unknown; headers: Record<string, unknown> }>(`SELECT body, headers FROM "${schema}".interchange_queue_dead WHERE message_id = $1`, [sent.id]);
    expect(rows[0]?.body).toEqual(sent.body);

    subscriptions.splice(0).forEach((subscription) => subscription.unsubscribe());
    expect(await t.requeueDeadLetters(uri)).toBe(1);
    const again = consume(t, uri, (delivery) => delivery.ack());
    await until(() => again.length === 1, () => 'requeued message not delivered');
    expect(again[0]?.message.id).toBe(sent.id);
    expect(again[0]?.message.headers.attempt).toBe(1);
  });

  it('a permanent failure is dead-lettered at the first nack', async () => {
    const uri = queueUri('permanent');
    const t = await transport();
    await t.publish(parseEndpoint(uri), numbered(1));
    const seen = consume(t, uri, (delivery) => delivery.nack(new InterchangeError('BAD_ORDER', 'order has no lines', { permanent: true })));
    await until(async () => (await t.depth(uri)).dead === 1, () => 'not dead-lettered');
    expect(seen).toHaveLength(1);
    expect((await t.deadLetters(uri))[0]?.reason).toMatch(/permanent failure: BAD_ORDER: order has no lines/);
  });

  it('a message whose consumers keep dying is dead-lettered at its maxDeliveries + 1-th claim, never delivered again', async () => {
    const uri = queueUri('poison', '?maxDeliveries=2&visibilityTimeoutMs=200');
    const t = await transport();
    await t.publish(parseEndpoint(uri), numbered(1));
    for (let crash = 0; crash < 2; crash += 1) {
      // a consumer process that dies holding it: no hand-back, no lease extension
      const child = new ChildScript('test/integration/pg-queue-child.ts', [POSTGRES_URL, schema, uri, '1']);
      try {
        await until(() => child.lines.includes('held 1'), () => `crash ${crash}: ${child.lines.at(-1) ?? 'no output'}`, 30_000);
      } finally {
        await child.kill();
      }
    }
    const last = consume(await transport(), uri, (delivery) => delivery.ack());
    await until(async () => (await t.depth(uri)).dead === 1, () => 'not dead-lettered');
    expect(last).toHaveLength(0);
    expect((await t.deadLetters(uri))[0]?.reason).toMatch(/delivered 2 times, never settled/);
  });
});

describe('wake-ups', () => {
  it('a NOTIFY wakes an idle consumer: with a 60 s poll interval a published message still arrives at once; a row inserted without NOTIFY waits for the poll', async () => {
    const uri = queueUri('notify');
    const queue = parseEndpoint(uri).path;
    const notified = await transport({ pollIntervalMs: 60_000 });
    const seen = consume(notified, uri, (delivery) => delivery.ack());
    await sleep(300); // the first claim found nothing: the consumer sleeps on its 60 s poll
    const publishedAt = Date.now();
    await (await transport()).publish(parseEndpoint(uri), numbered(1));
    await until(() => seen.length === 1, () => 'the NOTIFY did not wake the consumer', 5_000);
    const latencyMs = Date.now() - publishedAt;
    expect(latencyMs).toBeLessThan(5_000);

    // a foreign insert (plain SQL, no pg_notify): the 60 s poll consumer does not see it yet…
    await db.query(`INSERT INTO ${table} (queue, message_id, headers, body) VALUES ($1, 'foreign-1', '{}', '{"x":1}')`, [queue]);
    await sleep(1_000);
    expect(seen).toHaveLength(1);
    // …a consumer polling every 100 ms does
    const polling = consume(await transport({ pollIntervalMs: 100 }), uri, (delivery) => delivery.ack());
    await until(() => polling.length === 1, () => 'the poll did not find the row');
    expect(polling[0]?.message.id).toBe('foreign-1');
    console.log(`pgqueue NOTIFY wake-up: publish → delivery ${latencyMs} ms`);
  });
});

describe('untrusted rows and encoding', () => {
  it('rows written by foreign SQL: odd headers dropped, attempt from the table, an id-less or oversized row dead-lettered with its reason', async () => {
    const uri = queueUri('foreign');
    const queue = parseEndpoint(uri).path;
    const t = await transport({ maxMessageBytes: 1_000 });
    await db.query(
      `INSERT INTO ${table} (queue, message_id, headers, body, body_bytes) VALUES
        ($1, 'ok-1', '{"attempt": 99, "x-ok": "yes", "x-n": 1.5, "x-nested": {"a": 1}, "x-list": [1], "x-null": null, "__proto__": {"polluted": true}}', '{"fine": true}', NULL),
        ($1, '', '{}', '1', NULL),
        ($1, 'big-1', '{}', to_json(repeat('x', 2000)), NULL),
        ($1, 'bytes-1', '[1, 2]', NULL, '\\x00ff10')`,
      [queue],
    );
    const seen = consume(t, uri, (delivery) => delivery.ack());
    await until(async () => seen.length === 2 && (await t.depth(uri)).dead === 2, () => `delivered ${seen.length}`);
    const [ok, bytes] = seen.map((delivery) => delivery.message);
    expect(ok?.id).toBe('ok-1');
    expect(ok?.headers).toEqual({ attempt: 1, 'x-ok': 'yes', 'x-n': 1.5 });
    expect(Object.getPrototypeOf(ok?.headers)).toBe(Object.prototype);
    expect(ok?.body).toEqual({ fine: true });
    expect(bytes?.headers).toEqual({ attempt: 1 });
    expect(Buffer.isBuffer(bytes?.body)).toBe(true);
    expect([...(bytes?.body as Buffer)]).toEqual([0, 255, 16]);
    const reasons = (await t.deadLetters(uri)).map((dead) => dead.reason);
    expect(reasons[0]).toMatch(/message_id must be 1 to 1024 characters/);
    expect(reasons[1]).toMatch(/take \d+ bytes; the limit \(maxMessageBytes\) is 1000/);
  });

  it('publish: an unencodable message fails alone (PartialPublishError), the others are stored; bytes and JSON bodies round-trip', async () => {
    const uri = queueUri('encode');
    const t = await transport({ maxMessageBytes: 10_000 });
    const good = createMessage({ text: 'ünïcødé \u0000 nul', nested: [1, { a: null }] }, { headers: { 'x-flag': false } });
    const bytes = createMessage(Buffer.from([1, 2, 3]));
    const bad = [createMessage({ n: 1 }, { headers: { 'x-bad': Number.NaN } }), createMessage(() => 1), createMessage('x'.repeat(20_000))];
    const error = await t.publish(parseEndpoint(uri), [good, bad[0] as Message, bytes, bad[1] as Message, bad[2] as Message]).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PartialPublishError);
    expect([...(error as PartialPublishError).failures.keys()]).toEqual([1, 3, 4]);
    for (const failure of (error as PartialPublishError).failures.values()) expect(failure).toBeInstanceOf(PgQueueUnencodableError);
    const seen = consume(t, uri, (delivery) => delivery.ack());
    await until(() => seen.length === 2, () => `got ${seen.length}`);
    expect(seen[0]?.message).toEqual({ id: good.id, headers: { ...good.headers, attempt: 1 }, body: good.body });
    expect(seen[1]?.message.body).toEqual(Buffer.from([1, 2, 3]));
  });

  it("publishIn: messages exist only if the caller's transaction commits, and the commit wakes the consumer", async () => {
    const uri = queueUri('tx');
    const t = await transport({ pollIntervalMs: 60_000 });
    const seen = consume(t, uri, (delivery) => delivery.ack());
    const kept = createMessage({ kept: true });
    await db
      .transaction(async (tx) => {
        await t.publishIn(tx, uri, [createMessage({ kept: false })]);
        throw new Error('rolled back');
      })
      .catch(() => undefined);
    await db.transaction((tx) => t.publishIn(tx, uri, [kept]));
    await until(() => seen.length === 1, () => 'not delivered');
    await sleep(300);
    expect(seen.map((delivery) => delivery.message.id)).toEqual([kept.id]);
  });
});

describe('in a route', () => {
  it('pgqueue → route → pgqueue through pgQueueModule: every message moved once, the source queue emptied', async () => {
    const source = queueUri('route-in');
    const target = queueUri('route-out');
    const { app, stop } = await startTestIntegration({
      routes: [from<{ n: number }>(source, { id: 'hP-move' }).transform((message) => ({ n: message.body.n * 2 })).to(target)],
      modules: [pgQueueModule({ url: POSTGRES_URL, schema, log: silentLogger })],
    });
    try {
      const t = await transport();
      await t.publish(parseEndpoint(source), numbered(500));
      await until(async () => (await t.depth(target)).ready === 500 && (await t.depth(source)).ready + (await t.depth(source)).invisible === 0, () => JSON.stringify(app.route('hP-move').metrics));
      const { rows } = await db.query<{ n: number }>(`SELECT (body->>'n')::int AS n FROM ${table} WHERE queue = $1 ORDER BY id`, [parseEndpoint(target).path]);
      expect(rows.map((row) => row.n)).toEqual(Array.from({ length: 500 }, (_, n) => n * 2));
    } finally {
      await stop();
    }
  });
});

describe('settlement details', () => {
  it('a nack makes the row invisible for its backoff, with the reason in last_error', async () => {
    const uri = queueUri('backoff');
    const t = await transport({ redelivery: { initialMs: 2_000, maxMs: 2_000 } });
    await t.publish(parseEndpoint(uri), numbered(1));
    const seen = consume(t, uri, (delivery) => delivery.nack(new Error('downstream busy')));
    await until(async () => {
      const { rows } = await db.query<{ n: string }>(`SELECT count(*) AS n FROM ${table} WHERE queue = $1 AND last_error IS NOT NULL`, [parseEndpoint(uri).path]);
      return Number(rows[0]?.n) === 1;
    }, () => 'nack not written');
    // backoffDelay(0, 2 s) with ±50 % jitter: visible again in 1 to 3 s, not before
    const { rows } = await db.query<{ last_error: string; waits: boolean; deliveries: number }>(
      `SELECT last_error, visible_at > now() + interval '900 milliseconds' AS waits, deliveries FROM ${table} WHERE queue = $1`,
      [parseEndpoint(uri).path],
    );
    expect(rows[0]).toEqual({ last_error: 'downstream busy', waits: true, deliveries: 1 });
    expect(seen).toHaveLength(1);
    expect(await t.depth(uri)).toEqual({ ready: 0, invisible: 1, dead: 0 });
  });

  it('close hands the unsettled deliveries back at once (no wait for the visibility timeout); a settle after it is ignored', async () => {
    const uri = queueUri('close');
    const first = await transport();
    await first.publish(parseEndpoint(uri), numbered(5));
    const held = consume(first, uri, () => undefined);
    await until(() => held.length === 5, () => `got ${held.length}`);
    await first.close();
    held[0]?.ack();
    const next = consume(await transport(), uri, (delivery) => delivery.ack());
    await until(() => next.length === 5, () => `got ${next.length}`, 5_000); // the visibility timeout is 30 s
    expect(next.every((delivery) => delivery.message.headers.attempt === 2)).toBe(true);
    await expect(first.publish(parseEndpoint(uri), numbered(1))).rejects.toThrow(/closed/);
  });
});

describe('configuration', () => {
  it('refuses bad queue names, unknown endpoint options and invalid transport options with PostgresConfigurationError', async () => {
    const t = await transport();
    await expect(t.publish(parseEndpoint('pgqueue:bad name'), numbered(1))).rejects.toBeInstanceOf(PostgresConfigurationError);
    await expect(t.publish(parseEndpoint('pgqueue:hP-ok?maxDelivery=3'), numbered(1))).rejects.toThrow(/unknown option 'maxDelivery' \(known: maxDeliveries, visibilityTimeoutMs\)/);
    await expect(t.publish(parseEndpoint('pgqueue:hP-ok?visibilityTimeoutMs=10'), numbered(1))).rejects.toThrow(/at least 100/);
    expect(() => new PgQueueTransport({ table: 'Bad-Table' })).toThrow(PostgresConfigurationError);
    expect(() => new PgQueueTransport({ url: 'postgres://app:s3cret@db/app', visibilityTimeoutMs: 5 })).toThrow(/visibilityTimeoutMs/);
    expect(() => pgQueueModule({ pollIntervalMs: 0 })).toThrow(PostgresConfigurationError);
    expect(pgQueueChannel('public', 'interchange_queue', 'a')).toMatch(/^pgq_[0-9a-f]{24}$/);
    expect(pgQueueChannel('public', 'interchange_queue', 'a')).not.toBe(pgQueueChannel('public', 'interchange_queue', 'b'));
    expect(pgQueueChannel('public', 'interchange_queue', 'a')).not.toBe(pgQueueChannel('other', 'interchange_queue', 'a'));
  });

  it('interchange run binds pgqueue: only for routes using it, at DATABASE_URL (redacted) or on an embedded PGlite, never over a route file\'s own binding', async () => {
    const bind = environment.bind;
    expect(bind).toBeDefined();
    if (bind === undefined) return;
    const none = await bind({ env: { DATABASE_URL: 'postgres://app:pw@db.local/app' }, schemes: new Set(['amqp']), isBound: () => false });
    expect(none).toBeUndefined();
    const server = await bind({ env: { DATABASE_URL: 'postgres://app:pw@db.local/app' }, schemes: new Set(['pgqueue']), isBound: () => false });
    expect(server?.announcement).toBe('DATABASE_URL is set: pgqueue: endpoints use PostgreSQL at postgres://app:***@db.local/app');
    const embedded = await bind({ env: {}, schemes: new Set(['pgqueue']), isBound: () => false });
    expect(embedded?.announcement).toMatch(/embedded PGlite database in memory/);
    const own = await bind({ env: {}, schemes: new Set(['pgqueue']), isBound: (id) => id === PgQueueTransport });
    expect(own).toBeUndefined();
  });
});
