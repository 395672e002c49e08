// Outbox relay benchmark: the Interchange OutboxRelay against a hand-written raw loop, in one run,
// against the PostgreSQL at DATABASE_URL (default 127.0.0.1:5432/test) and the RabbitMQ at AMQP_URL.
//
// Raw loop: BEGIN; SELECT … ORDER BY id LIMIT 200 FOR UPDATE SKIP LOCKED; amqplib confirm-channel
// publish of each row (persistent, mandatory, messageId) + waitForConfirms; DELETE … WHERE id = ANY;
// COMMIT. It wakes on the same LISTEN/NOTIFY as the relay (a trigger on its table), polls every 1 s.
// Interchange: Outbox.addAll in the producer's transactions, OutboxRelay (batch 200, 16 partition
// keys, per-partition order, default concurrency 2) publishing through the AmqpTransport (confirm
// channel), deleting rows. Same bodies, same queue (default exchange), persistent, mandatory.
//
// Two measurements, in interleaved rounds (raw then Interchange, then the other way round, …) with
// the median of the per-round ratios, because the shared 2-core machine drifts:
// - throughput: N events committed beforehand, then the relay started: events/s until the last confirm;
// - latency: a producer commits `RATE` events/s (10 per transaction) while the relay runs; per event,
//   time from its COMMIT returning to the broker confirm of its publish: p50 and p99.
// `npx tsx bench/outbox.ts`; BENCH_OUTBOX_EVENTS (20000), BENCH_OUTBOX_ROUNDS (5), BENCH_OUTBOX_RATE (2000/s), BENCH_OUTBOX_SECONDS (4),
// BENCH_OUTBOX_CONCURRENCY (the relay's rounds in flight; default: the relay's default, 2).
import { randomUUID } from 'node:crypto';
import { connect, type ConfirmChannel } from 'amqplib';
import pg from 'pg';
import { createMessage, silentLogger, type Message } from '../facade/index.ts';
import { TransportRegistry } from '../src/runtime/transport-registry.ts';
import { AmqpTransport } from '../adapters/amqp/index.ts';
import { migrate, openDatabase, Outbox, OutboxRelay, type Database } from '../adapters/postgres/index.ts';
import { median, percentile } from './stats.ts';

const databaseUrl = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const amqpUrl = process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const EVENTS = Number(process.env.BENCH_OUTBOX_EVENTS ?? '20000');
const ROUNDS = Number(process.env.BENCH_OUTBOX_ROUNDS ?? '5');
const RATE = Number(process.env.BENCH_OUTBOX_RATE ?? '2000');
const SECONDS = Number(process.env.BENCH_OUTBOX_SECONDS ?? '4');
const CONCURRENCY = process.env.BENCH_OUTBOX_CONCURRENCY === undefined ? undefined : Number(process.env.BENCH_OUTBOX_CONCURRENCY);
const BATCH = 200;
const KEYS = 16;
const PER_TX = 10;
const suffix = randomUUID().slice(0, 8);
const schema = `bench_outbox_${suffix}`;
const rawTable = `"${schema}".raw_outbox`;
const rawChannel = `bench_raw_${suffix}`;
const queue = `bench-outbox-${suffix}`;

const body = (n: number): { orderId: string; seq: number; total: number; currency: string } => ({ orderId: `order-${n % KEYS}`, seq: n, total: (n % 1000) / 10, currency: 'EUR' });
const now = (): number => performance.now();

/** Where a variant records when each event's publish was confirmed. */
type Confirmed = Map<string, number>;

interface Relay {
  start(): Promise<void>;
  stop(): Promise<void>;
}

interface Variant {
  readonly name: string;
  /** Inserts events in one transaction; returns their ids. */
  insert(client: pg.PoolClient, first: number, count: number): Promise<string[]>;
  relay(confirmed: Confirmed): Promise<Relay>;
  remaining(): Promise<number>;
}

// ---------- raw loop ----------

function rawVariant(pool: pg.Pool, amqp: ConfirmChannel): Variant {
  return {
    name: 'raw loop (SKIP LOCKED + amqplib confirms + DELETE)',
    async insert(client, first, count) {
      const ids: string[] = [];
      const values: string[] = [];
      const params: unknown[] = [];
      for (let n = first; n < first + count; n += 1) {
        const id = randomUUID();
        ids.push(id);
        params.push(id, JSON.stringify(body(n)));
        values.push(`($${params.length - 1}, $${params.length}::text::jsonb)`);
      }
      await client.query(`INSERT INTO ${rawTable} (message_id, body) VALUES ${values.join(', ')}`, params);
      return ids;
    },
    async relay(confirmed) {
      let stopping = false;
      let wake: (() => void) | undefined;
      let woken = false;
      const listener = new pg.Client({ connectionString: databaseUrl });
      await listener.connect();
      listener.on('notification', () => {
        woken = true;
        wake?.();
      });
      await listener.query(`LISTEN ${rawChannel}`);
      const client = await pool.connect();
      const loop = (async () => {
        while (!stopping) {
          woken = false;
          await client.query('BEGIN');
          const { rows } = await client.query<{ id: string; message_id: string; body: unknown }>(`SELECT id, message_id, body FROM ${rawTable} ORDER BY id LIMIT ${BATCH} FOR UPDATE SKIP LOCKED`);
          if (rows.length > 0) {
            for (const row of rows) {
              amqp.publish('', queue, Buffer.from(JSON.stringify(row.body)), { persistent: true, mandatory: true, messageId: row.message_id, contentType: 'application/json', timestamp: Math.floor(Date.now() / 1000) });
            }
            await amqp.waitForConfirms();
            const at = now();
            for (const row of rows) confirmed.set(row.message_id, at);
            await client.query(`DELETE FROM ${rawTable} WHERE id = ANY($1::bigint[])`, [rows.map((row) => row.id)]);
          }
          await client.query('COMMIT');
          if (rows.length === 0 && !woken && !stopping) {
            await new Promise<void>((resolve) => {
              const timer = setTimeout(() => resolve(), 1000);
              wake = () => {
                clearTimeout(timer);
                wake = undefined;
                resolve();
              };
            });
          }
        }
      })();
      return {
        start: () => Promise.resolve(),
        stop: async () => {
          stopping = true;
          wake?.();
          await loop;
          client.release();
          await listener.end();
        },
      };
    },
    async remaining() {
      return Number((await pool.query<{ n: string }>(`SELECT count(*) AS n FROM ${rawTable}`)).rows[0]?.n);
    },
  };
}

// ---------- Interchange ----------

function interchangeVariant(pool: pg.Pool, db: Database, registry: TransportRegistry): Variant {
  const outbox = new Outbox({ schema });
  const destination = `amqp:queue/${queue}`;
  return {
    name: 'Interchange OutboxRelay (16 partitions, ordered)',
    async insert(client, first, count) {
      const messages: Message[] = [];
      for (let n = first; n < first + count; n += 1) messages.push(createMessage(body(n)));
      await outbox.addAll(client, messages, (message) => ({ destination, partitionKey: (message.body as { orderId: string }).orderId }));
      return messages.map((message) => message.id);
    },
    async relay(confirmed) {
      const publisher = {
        async publish(uri: string, messages: readonly Message[]): Promise<void> {
          await registry.publish(uri, messages);
          const at = now();
          for (const message of messages) confirmed.set(message.id, at);
        },
      };
      const relay = new OutboxRelay(db, publisher, { schema, batchSize: BATCH, migrate: false, log: silentLogger, ...(CONCURRENCY === undefined ? {} : { concurrency: CONCURRENCY }) });
      return relay;
    },
    async remaining() {
      return Number((await pool.query<{ n: string }>(`SELECT count(*) AS n FROM "${schema}".interchange_outbox`)).rows[0]?.n);
    },
  };
}

// ---------- measurements ----------

async function insertAll(pool: pg.Pool, variant: Variant, count: number): Promise<void> {
  const client = await pool.connect();
  try {
    for (let first = 0; first < count; first += 1000) {
      await client.query('BEGIN');
      await variant.insert(client, first, Math.min(1000, count - first));
      await client.query('COMMIT');
    }
  } finally {
    client.release();
  }
}

async function waitUntil(check: () => boolean | Promise<boolean>): Promise<void> {
  while (!(await check())) await new Promise((resolve) => setTimeout(resolve, 2));
}

async function throughput(pool: pg.Pool, variant: Variant): Promise<number> {
  await insertAll(pool, variant, EVENTS);
  const confirmed: Confirmed = new Map();
  const relay = await variant.relay(confirmed);
  const started = now();
  await relay.start();
  await waitUntil(() => confirmed.size >= EVENTS);
  const rate = EVENTS / ((Math.max(...confirmed.values()) - started) / 1000);
  await relay.stop();
  if ((await variant.remaining()) !== 0) throw new Error(`${variant.name}: rows left after the throughput run`);
  return rate;
}

async function latency(pool: pg.Pool, variant: Variant): Promise<{ p50: number; p99: number }> {
  const confirmed: Confirmed = new Map();
  const committed = new Map<string, number>();
  const relay = await variant.relay(confirmed);
  await relay.start();
  const clients = await Promise.all([pool.connect(), pool.connect(), pool.connect(), pool.connect()]);
  const total = RATE * SECONDS;
  const started = now();
  let next = 0;
  await Promise.all(
    clients.map(async (client) => {
      for (;;) {
        const first = next;
        if (first >= total) return;
        next += PER_TX;
        const due = started + (first / RATE) * 1000;
        const wait = due - now();
        if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
        await client.query('BEGIN');
        const ids = await variant.insert(client, first, PER_TX);
        await client.query('COMMIT');
        const at = now();
        for (const id of ids) committed.set(id, at);
      }
    }),
  );
  for (const client of clients) client.release();
  await waitUntil(() => confirmed.size >= committed.size);
  await relay.stop();
  const latencies = [...committed].map(([id, at]) => Math.max(0, (confirmed.get(id) ?? Number.NaN) - at)).sort((a, b) => a - b);
  return { p50: percentile(latencies, 0.5), p99: percentile(latencies, 0.99) };
}

async function main(): Promise<void> {
  const pool = new pg.Pool({ connectionString: databaseUrl, max: 10 });
  const db = await openDatabase({ url: databaseUrl, log: silentLogger });
  await migrate(db, { schema });
  await pool.query(`CREATE TABLE ${rawTable} (id bigserial PRIMARY KEY, message_id text NOT NULL, body jsonb NOT NULL, created_at timestamptz NOT NULL DEFAULT now())`);
  await pool.query(`CREATE FUNCTION "${schema}".raw_notify() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_notify('${rawChannel}', ''); RETURN NULL; END $$`);
  await pool.query(`CREATE TRIGGER raw_notify AFTER INSERT ON ${rawTable} FOR EACH STATEMENT EXECUTE FUNCTION "${schema}".raw_notify()`);
  const model = await connect(amqpUrl);
  const admin = await model.createChannel();
  await admin.assertQueue(queue, { durable: true });
  const confirm = await model.createConfirmChannel();
  const transport = new AmqpTransport({ url: amqpUrl }, silentLogger);
  await transport.connect();
  const variants = [rawVariant(pool, confirm), interchangeVariant(pool, db, new TransportRegistry([transport]))];
  const results = variants.map(() => ({ rates: [] as number[], p50: [] as number[], p99: [] as number[] }));
  console.log(`outbox relay benchmark: ${EVENTS.toLocaleString('en')} events for throughput, ${RATE}/s × ${SECONDS} s for latency, ${ROUNDS} interleaved rounds, batch ${BATCH}, Node ${process.version}`);
  try {
    for (let round = 0; round < ROUNDS; round += 1) {
      // Alternate which variant goes first, so neither always runs on the warmer (or busier) machine.
      const order = round % 2 === 0 ? [0, 1] : [1, 0];
      for (const index of order) {
        const variant = variants[index] as Variant;
        const result = results[index] as (typeof results)[number];
        result.rates.push(await throughput(pool, variant));
        await admin.purgeQueue(queue);
        const { p50, p99 } = await latency(pool, variant);
        result.p50.push(p50);
        result.p99.push(p99);
        await admin.purgeQueue(queue);
        console.log(`  round ${round + 1} ${variant.name}: ${Math.round(result.rates.at(-1) ?? 0).toLocaleString('en')} events/s, latency p50 ${p50.toFixed(1)} ms p99 ${p99.toFixed(1)} ms`);
      }
    }
  } finally {
    await transport.close();
    await admin.deleteQueue(queue);
    await model.close();
    await pool.query(`DROP SCHEMA "${schema}" CASCADE`);
    await pool.end();
    await db.close();
  }
  console.log('');
  for (const [index, variant] of variants.entries()) {
    const result = results[index] as (typeof results)[number];
    console.log(`${variant.name.padEnd(52)} ${Math.round(median(result.rates)).toLocaleString('en').padStart(8)} events/s (median)  commit→confirm p50 ${median(result.p50).toFixed(1).padStart(6)} ms  p99 ${median(result.p99).toFixed(1).padStart(6)} ms`);
  }
  const [raw, interchange] = results as [(typeof results)[number], (typeof results)[number]];
  const ratios = interchange.rates.map((rate, round) => rate / (raw.rates[round] ?? Number.NaN));
  const ratio = median(ratios);
  console.log(`\nInterchange relay / raw loop throughput, per round: ${ratios.map((r) => r.toFixed(2)).join(' ')} → median ${ratio.toFixed(2)} (goal ≥ 0.90): ${ratio >= 0.9 ? 'met' : 'NOT met'}`);
}

await main();
