import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMessage, parseEndpoint } from '../../src/core/index.ts';
import type { DeliveryPolicy } from '../../src/dsl/route-definition.ts';
import { AMQP_URL, BrokerAdmin, connectedTransport, readUntilQuiet, sleep, until } from '../integration/amqp-support.ts';
import { ChildScript } from '../support/child-script.ts';
import { migrationScript } from '../../adapters/postgres/index.ts';

// The "done when": for each delivery policy, a consumer process killed (SIGKILL) mid-stream and
// a second one finishing the queue, then the lost and duplicated messages counted against the promise.
// The effect is one PostgreSQL row per execution (never deduplicated), the output one AMQP message.
const DATABASE_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const N = 300;
const KILL_AFTER_EFFECTS = 100;
const CHILD = 'test/fault/delivery-policy-child.ts';

const admin = new BrokerAdmin();
let db: pg.Client;
let redis: Redis;
const tables: string[] = [];
const schemas: string[] = [];
const prefixes: string[] = [];

beforeAll(async () => {
  db = new pg.Client({ connectionString: DATABASE_URL });
  await db.connect().catch((error: unknown) => {
    throw new Error(`PostgreSQL is not reachable at ${DATABASE_URL}`, { cause: error });
  });
  redis = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: () => null });
  await redis.connect().catch((error: unknown) => {
    throw new Error(`Redis is not reachable at ${REDIS_URL}`, { cause: error });
  });
});

afterAll(async () => {
  for (const table of tables) await db.query(`DROP TABLE IF EXISTS ${table}`);
  for (const schema of schemas) await db.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  for (const prefix of prefixes) {
    const keys = await redis.keys(`${prefix}*`);
    if (keys.length > 0) await redis.del(...keys);
  }
  await db.end();
  redis.disconnect();
  await admin.close();
});

interface Counts {
  /** Messages with no effect at all. */
  readonly lost: number;
  /** Messages whose effect ran more than once, and how many extra runs in all. */
  readonly duplicated: number;
  readonly extraEffects: number;
  /** Messages with no output, and with more than one. */
  readonly outputsLost: number;
  readonly outputsDuplicated: number;
  /** Effects the first process committed before it was killed. */
  readonly beforeKill: number;
}

interface Crash {
  readonly counts: Counts;
  /** Publishes copies (same ids) of messages the second process completed, as an upstream retry would; resolves with the new effects they caused. */
  replay(count: number): Promise<number>;
  readonly done: () => Promise<void>;
}

const effectsPerId = async (table: string): Promise<Map<string, number>> => {
  const { rows } = await db.query<{ message_id: string; runs: string }>(`SELECT message_id, count(*) AS runs FROM ${table} GROUP BY message_id`);
  return new Map(rows.map((row) => [row.message_id, Number(row.runs)]));
};

const totalEffects = async (table: string): Promise<number> => Number((await db.query<{ n: string }>(`SELECT count(*) AS n FROM ${table}`)).rows[0]?.n ?? 0);

/** Waits until `read` gives the same value twice, `quietMs` apart. */
async function settledValue(read: () => Promise<number>, quietMs: number, timeoutMs: number): Promise<number> {
  let previous = -1;
  let value = -1;
  await until(
    async () => {
      value = await read();
      const stable = value === previous;
      previous = value;
      if (!stable) await sleep(quietMs);
      return stable;
    },
    () => `still changing: ${value}`,
    timeoutMs,
  );
  return value;
}

async function crash(policy: DeliveryPolicy | 'effectively-once+inbox'): Promise<Crash> {
  const tag = `${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
  const inQueue = `hH-in-${tag}`;
  const outQueue = `hH-out-${tag}`;
  const table = `hh_effects_${tag.replace(/-/g, '_')}`;
  const prefix = `hH-crash-${tag}:`;
  admin.track({ queues: [inQueue, outQueue] });
  tables.push(table);
  prefixes.push(prefix);
  await db.query(`CREATE TABLE ${table} (message_id text NOT NULL, worker int NOT NULL, at timestamptz NOT NULL DEFAULT now())`);
  const schema = table; // the inbox and outbox tables of `effectively-once+inbox`
  await db.query(migrationScript({ schema }));
  schemas.push(schema);
  const ids = Array.from({ length: N }, (_, n) => `hH-${tag}-${n}`);
  const publisher = await connectedTransport();
  const inbound = parseEndpoint(`amqp:queue/${inQueue}`);
  await publisher.publish(
    inbound,
    ids.map((id, n) => createMessage({ n }, { id })),
  );
  const args = (worker: number): string[] => [AMQP_URL, DATABASE_URL, policy, inQueue, outQueue, table, REDIS_URL, prefix, String(worker), schema];

  let effects = 0;
  const first = new ChildScript(CHILD, args(1), { onLine: (line) => (effects += line.startsWith('effect ') ? 1 : 0) });
  await until(() => effects >= KILL_AFTER_EFFECTS, () => `first process: ${effects} effects; its last lines: ${first.lines.slice(-3).join(' | ')}`, 90_000);
  await first.kill('SIGKILL');
  const beforeKill = await totalEffects(table);

  const second = new ChildScript(CHILD, args(2));
  await until(() => second.lines.includes('started'), () => `second process did not start; its last lines: ${second.lines.slice(-3).join(' | ')}`, 60_000);
  // done: the queue is empty and nothing has been committed for 2 s (crash-cut claims expire after 1.5 s)
  await until(async () => (await admin.messageCount(inQueue)) === 0, () => `${inQueue} not drained`, 60_000);
  await settledValue(() => totalEffects(table), 2_000, 60_000);

  const outputs = await readUntilQuiet(outQueue, policy === 'at-most-once' ? 1 : N, 30_000);
  const perId = await effectsPerId(table);
  const outputsPerId = new Map<string, number>();
  for (const message of outputs) outputsPerId.set(message.id, (outputsPerId.get(message.id) ?? 0) + 1);
  const runs = ids.map((id) => perId.get(id) ?? 0);
  const sent = ids.map((id) => outputsPerId.get(id) ?? 0);
  const counts: Counts = {
    lost: runs.filter((n) => n === 0).length,
    duplicated: runs.filter((n) => n > 1).length,
    extraEffects: runs.reduce((sum, n) => sum + Math.max(0, n - 1), 0),
    outputsLost: sent.filter((n) => n === 0).length,
    outputsDuplicated: sent.filter((n) => n > 1).length,
    beforeKill,
  };
  process.stdout.write(`[hH crash] ${policy}: ${JSON.stringify(counts)}\n`);

  return {
    counts,
    replay: async (count) => {
      const { rows } = await db.query<{ message_id: string }>(`SELECT message_id FROM ${table} GROUP BY message_id HAVING bool_and(worker = 2) ORDER BY message_id LIMIT $1`, [count]);
      const before = await totalEffects(table);
      await publisher.publish(
        inbound,
        rows.map((row) => createMessage({ n: -1 }, { id: row.message_id })),
      );
      await until(async () => (await admin.messageCount(inQueue)) === 0, () => `${inQueue} not drained`, 30_000);
      const after = await settledValue(() => totalEffects(table), 1_000, 30_000);
      return after - before;
    },
    done: async () => {
      await second.kill('SIGKILL');
      await publisher.close();
    },
  };
}

// two child processes start per test (tsx compiles the route's modules: seconds each on a loaded machine)
describe('delivery policies across a SIGKILL mid-stream (RabbitMQ in and out, effects in PostgreSQL)', { timeout: 300_000 }, () => {
  it('at-most-once: no message processed twice; the ones in flight at the kill are lost', async () => {
    const run = await crash('at-most-once');
    try {
      expect(run.counts.beforeKill).toBeGreaterThanOrEqual(KILL_AFTER_EFFECTS);
      expect(run.counts.duplicated).toBe(0);
      expect(run.counts.outputsDuplicated).toBe(0);
      // bounded by what the route had admitted (prefetch 10), and with 5 in the step at any time, some are lost
      expect(run.counts.lost).toBeLessThanOrEqual(10);
      expect(run.counts.lost).toBeGreaterThan(0);
    } finally {
      await run.done();
    }
  });

  it('at-least-once: none lost; the executions the kill cut short run again', async () => {
    const run = await crash('at-least-once');
    try {
      expect(run.counts.lost).toBe(0);
      expect(run.counts.outputsLost).toBe(0);
      expect(run.counts.extraEffects).toBeLessThanOrEqual(10); // at most the prefetch in flight at the kill
      // an upstream duplicate of a completed message is processed again
      expect(await run.replay(20)).toBe(20);
    } finally {
      await run.done();
    }
  });

  it('effectively-once (Redis store): none lost; a completed message is never processed again', async () => {
    const run = await crash('effectively-once');
    try {
      expect(run.counts.lost).toBe(0);
      expect(run.counts.outputsLost).toBe(0);
      // executions cut by the kill ran again once their claims expired: at most the prefetch in flight
      expect(run.counts.extraEffects).toBeLessThanOrEqual(10);
      // an upstream duplicate of a completed message is dropped before the first step
      expect(await run.replay(20)).toBe(0);
    } finally {
      await run.done();
    }
  });

  it('effectively-once with the effect and its output committed with the inbox record: no effect twice, none lost', async () => {
    const run = await crash('effectively-once+inbox');
    try {
      expect(run.counts.lost).toBe(0);
      expect(run.counts.duplicated).toBe(0);
      expect(run.counts.outputsLost).toBe(0);
      expect(await run.replay(20)).toBe(0);
    } finally {
      await run.done();
    }
  });
});
