// PostgreSQL queue benchmark (issue #19): an Interchange route `pgqueue:A → pgqueue:B` against a raw
// node-postgres loop doing the same work, in one run, against the PostgreSQL at DATABASE_URL (default
// 127.0.0.1:5432/test). Both move N messages from one queue to another in the same table (the one
// `PgQueueTransport` creates), at least once: a message leaves A only once it is committed in B.
//
// Raw loop (one connection, as hand-written): BEGIN; SELECT … WHERE queue = A ORDER BY id LIMIT 100
// FOR UPDATE SKIP LOCKED (ORDER BY queue, id: the (queue, id) index, as the claim; rows to the client, bodies parsed); INSERT INTO … SELECT FROM unnest(…) the
// batch into B (bodies serialised again); DELETE … WHERE id = ANY(…); COMMIT.
// Interchange: `from('pgqueue:A').to('pgqueue:B')`, prefetch 100: claims leased with visible_at
// (one statement), one INSERT + pg_notify per batch the `to` step publishes, one DELETE per tick of acks.
//
// Interleaved rounds (raw then Interchange, then the other way round, …), median of the per-round
// ratios: the shared 2-core machine drifts. `npx tsx bench/pg-queue.ts`; BENCH_PGQUEUE_MESSAGES (20000), BENCH_PGQUEUE_ROUNDS (5).
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { createIntegration, createMessage, from, silentLogger } from '../facade/index.ts';
import { parseEndpoint } from '../src/spi.ts';
import { pgQueueModule, PgQueueTransport } from '../adapters/postgres/index.ts';
import { median } from './stats.ts';

const databaseUrl = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const COUNT = Number(process.env.BENCH_PGQUEUE_MESSAGES ?? '20000');
const ROUNDS = Number(process.env.BENCH_PGQUEUE_ROUNDS ?? '5');
const BATCH = 100;
const suffix = randomUUID().slice(0, 8);
const schema = `hp_bench_pgqueue_${suffix}`;
const table = `"${schema}".interchange_queue`;

const body = (n: number): { deviceId: string; temperature: number; seq: number } => ({ deviceId: `d${n % 50}`, temperature: (n % 100) - 15, seq: n });
const elapsed = (started: bigint): number => Number(process.hrtime.bigint() - started) / 1e9;

async function seed(transport: PgQueueTransport, queue: string): Promise<void> {
  const endpoint = parseEndpoint(`pgqueue:${queue}`);
  for (let start = 0; start < COUNT; start += 1000) {
    await transport.publish(endpoint, Array.from({ length: Math.min(1000, COUNT - start) }, (_, i) => createMessage(body(start + i), { headers: { contentType: 'application/json' } })));
  }
}

async function count(pool: pg.Pool, queue: string): Promise<number> {
  return Number((await pool.query<{ n: string }>(`SELECT count(*) AS n FROM ${table} WHERE queue = $1`, [queue])).rows[0]?.n);
}

/**
 * Waits until `to` holds every message and `from` none; resolves with messages/s since `started`.
 * Called once a variant says it is done (the raw loop found nothing more, the route settled every
 * message): counting while a variant runs would load the database it is measured on.
 */
async function finished(pool: pg.Pool, fromQueue: string, toQueue: string, started: bigint): Promise<number> {
  while ((await count(pool, toQueue)) < COUNT || (await count(pool, fromQueue)) > 0) await new Promise((resolve) => setTimeout(resolve, 2));
  return COUNT / elapsed(started);
}

async function raw(pool: pg.Pool, fromQueue: string, toQueue: string): Promise<number> {
  const client = await pool.connect();
  const started = process.hrtime.bigint();
  try {
    for (;;) {
      await client.query('BEGIN');
      const { rows } = await client.query<{ id: string; message_id: string; headers: Record<string, unknown>; body: unknown }>(
        `SELECT id, message_id, headers, body FROM ${table} WHERE queue = $1 ORDER BY queue, id LIMIT ${BATCH} FOR UPDATE SKIP LOCKED`,
        [fromQueue],
      );
      if (rows.length > 0) {
        await client.query(
          `INSERT INTO ${table} (queue, message_id, headers, body) SELECT $1, m.id, m.headers::json, m.body::json FROM unnest($2::text[], $3::text[], $4::text[]) WITH ORDINALITY AS m(id, headers, body, ord) ORDER BY m.ord`,
          [toQueue, rows.map((row) => row.message_id), rows.map((row) => JSON.stringify(row.headers)), rows.map((row) => JSON.stringify(row.body))],
        );
        await client.query(`DELETE FROM ${table} WHERE id = ANY($1::bigint[])`, [rows.map((row) => row.id)]);
      }
      await client.query('COMMIT');
      if (rows.length === 0) break;
    }
  } finally {
    client.release();
  }
  return finished(pool, fromQueue, toQueue, started);
}

async function interchange(pool: pg.Pool, fromQueue: string, toQueue: string): Promise<number> {
  const app = createIntegration({
    logger: silentLogger,
    modules: [pgQueueModule({ url: databaseUrl, schema, migrate: false })],
    routes: [from(`pgqueue:${fromQueue}`, { id: 'bench-pgqueue', prefetch: BATCH }).to(`pgqueue:${toQueue}`)],
  });
  const started = process.hrtime.bigint();
  await app.start();
  try {
    const route = app.route('bench-pgqueue');
    while (!(route.metrics.received >= COUNT && route.metrics.inFlight === 0)) await new Promise((resolve) => setTimeout(resolve, 2));
    return await finished(pool, fromQueue, toQueue, started);
  } finally {
    await app.stop();
  }
}

async function main(): Promise<void> {
  const pool = new pg.Pool({ connectionString: databaseUrl, max: 4 });
  const seeder = new PgQueueTransport({ url: databaseUrl, schema, log: silentLogger });
  await seeder.connect();
  const variants = [
    { name: 'raw pg loop (SKIP LOCKED + INSERT + DELETE per tx)', run: raw, rates: [] as number[] },
    { name: 'Interchange route pgqueue → pgqueue', run: interchange, rates: [] as number[] },
  ];
  console.log(`pgqueue benchmark: ${COUNT.toLocaleString('en')} messages queue → queue, batch/prefetch ${BATCH}, ${ROUNDS} interleaved rounds, Node ${process.version}`);
  try {
    for (let round = 0; round < ROUNDS; round += 1) {
      const order = round % 2 === 0 ? [0, 1] : [1, 0];
      for (const index of order) {
        const variant = variants[index] as (typeof variants)[number];
        const fromQueue = `hP-bench-in-${round}-${index}`;
        const toQueue = `hP-bench-out-${round}-${index}`;
        await seed(seeder, fromQueue);
        await pool.query('VACUUM ANALYZE ' + table).catch(() => undefined);
        const rate = await variant.run(pool, fromQueue, toQueue);
        variant.rates.push(rate);
        await pool.query(`DELETE FROM ${table} WHERE queue = $1`, [toQueue]);
        console.log(`  round ${round + 1} ${variant.name}: ${Math.round(rate).toLocaleString('en')} msg/s`);
      }
    }
  } finally {
    await seeder.close();
    await pool.query(`DROP SCHEMA "${schema}" CASCADE`);
    await pool.end();
  }
  console.log('');
  for (const variant of variants) console.log(`${variant.name.padEnd(52)} ${Math.round(median(variant.rates)).toLocaleString('en').padStart(8)} msg/s (median)`);
  const [rawRates, ours] = variants.map((variant) => variant.rates) as [number[], number[]];
  const ratios = ours.map((rate, round) => rate / (rawRates[round] ?? Number.NaN));
  const ratio = median(ratios);
  console.log(`\nInterchange route / raw loop, per round: ${ratios.map((r) => r.toFixed(2)).join(' ')} → median ${ratio.toFixed(2)} (goal ≥ 0.90): ${ratio >= 0.9 ? 'met' : 'NOT met'}`);
}

await main();
