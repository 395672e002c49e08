// Redis Streams benchmark: a raw ioredis pass-through (XREADGROUP on a blocking connection → XADD → XACK
// once the XADD is answered) vs the same through Interchange, `from('redis:stream/in?group=…').to('redis:stream/out')`,
// in one run against the Redis at REDIS_URL (default 127.0.0.1:6379). Same guarantees on both sides: the
// source entry is acked only after its copy was written; at most 100 entries unsettled; same entries (the
// transport's layout: id, headers, body) read, parsed and written.
// `tsx bench/redis-streams.ts` (or a section of `npm run bench`); BENCH_REDIS_MESSAGES (default 20000), BENCH_REDIS_REPEAT (default 5).
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { createIntegration, createMessage, from, redactUrl, silentLogger, type Message } from '../facade/index.ts';
import { parseEndpoint } from '../src/spi.ts';
import { RedisStreamsTransport, redisStreamsModule } from '../adapters/redis/index.ts';
import { median } from './stats.ts';

const url = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const count = Number(process.env.BENCH_REDIS_MESSAGES ?? '20000');
const repeat = Number(process.env.BENCH_REDIS_REPEAT ?? '5');
const PREFETCH = 100;
const BATCH = 1000;
const run = `bench-streams-${randomUUID().slice(0, 8)}`;
const GROUP = 'bench';

const body = (n: number): { deviceId: string; temperature: number; seq: number } => ({ deviceId: `d${n % 50}`, temperature: (n % 100) - 15, seq: n });
const elapsed = (started: bigint): number => Number(process.hrtime.bigint() - started) / 1e9;

/** The input stream, written through the transport (not timed), its group created before the clock starts. */
async function fill(transport: RedisStreamsTransport, admin: Redis, key: string): Promise<void> {
  const endpoint = parseEndpoint(`redis:stream/${key}`);
  for (let start = 0; start < count; start += BATCH) {
    const batch: Message[] = [];
    for (let n = start; n < Math.min(count, start + BATCH); n += 1) batch.push(createMessage(body(n)));
    await transport.publish(endpoint, batch);
  }
  await admin.xgroup('CREATE', key, GROUP, '0');
}

function entriesOf(reply: unknown): [string, Buffer[]][] {
  if (!Array.isArray(reply)) return [];
  const first = reply[0] as unknown;
  return ((Array.isArray(first) ? first[1] : reply[1]) ?? []) as [string, Buffer[]][];
}

/** Reads up to PREFETCH entries, writes each copy (body parsed and serialised again) in one pipeline, acks the batch once written. */
async function rawPassThrough(admin: Redis, input: string, output: string): Promise<number> {
  const reader = admin.duplicate();
  const started = process.hrtime.bigint();
  let done = 0;
  while (done < count) {
    const entries = entriesOf(await reader.callBuffer('XREADGROUP', 'GROUP', GROUP, 'raw', 'COUNT', PREFETCH, 'BLOCK', 1000, 'STREAMS', input, '>'));
    if (entries.length === 0) continue;
    const pipeline = admin.pipeline();
    for (const [, fields] of entries) {
      const copy: (string | Buffer)[] = [];
      for (let index = 0; index + 1 < fields.length; index += 2) {
        const name = (fields[index] as Buffer).toString();
        const value = fields[index + 1] as Buffer;
        copy.push(name, name === 'body' ? JSON.stringify(JSON.parse(value.toString())) : name === 'headers' ? JSON.stringify(JSON.parse(value.toString())) : value);
      }
      pipeline.call('XADD', output, '*', ...copy);
    }
    await pipeline.exec();
    await admin.call('XACK', input, GROUP, ...entries.map(([id]) => String(id)));
    done += entries.length;
  }
  const rate = count / elapsed(started);
  reader.disconnect();
  return rate;
}

async function interchangeRoute(input: string, output: string): Promise<number> {
  const app = createIntegration({
    logger: silentLogger,
    modules: [redisStreamsModule({ url })],
    routes: [from(`redis:stream/${input}?group=${GROUP}`, { id: 'bench', prefetch: PREFETCH }).to(`redis:stream/${output}`)],
  });
  const started = process.hrtime.bigint();
  await app.start();
  const route = app.route('bench');
  while (route.metrics.completed < count) await new Promise((resolve) => setTimeout(resolve, 1));
  const rate = count / elapsed(started);
  await app.stop();
  return rate;
}

const admin = new Redis(url);
const transport = new RedisStreamsTransport({ url }, silentLogger);
await transport.connect();
const raw: number[] = [];
const ours: number[] = [];
try {
  // Rounds interleave the variants (a shared machine drifts); ratios are taken within a round.
  for (let round = 0; round < repeat; round += 1) {
    await fill(transport, admin, `${run}-raw-in-${round}`);
    raw.push(await rawPassThrough(admin, `${run}-raw-in-${round}`, `${run}-raw-out-${round}`));
    await fill(transport, admin, `${run}-ic-in-${round}`);
    ours.push(await interchangeRoute(`${run}-ic-in-${round}`, `${run}-ic-out-${round}`));
    for (const [variant, output] of [['raw', `${run}-raw-out-${round}`], ['Interchange', `${run}-ic-out-${round}`]] as const) {
      const written = await admin.xlen(output);
      if (written !== count) throw new Error(`${variant} round ${round}: ${written} entries written, expected ${count}`);
    }
    const keys = await admin.keys(`${run}-*`);
    if (keys.length > 0) await admin.del(...keys);
  }
} finally {
  await transport.close();
  const keys = await admin.keys(`${run}-*`);
  if (keys.length > 0) await admin.del(...keys);
  admin.disconnect();
}

const ratios = ours.map((rate, round) => rate / (raw[round] ?? Number.NaN));
console.log(`Redis Streams benchmark: ${count.toLocaleString('en')} entries per variant, Redis ${redactUrl(url)}, prefetch ${PREFETCH}, ack after the copy is written, ${repeat} interleaved rounds`);
console.log(`${'raw ioredis: XREADGROUP → XADD → XACK'.padEnd(62)} ${Math.round(median(raw)).toLocaleString('en').padStart(10)} msg/s median  (rounds ${raw.map((r) => Math.round(r)).join(', ')})`);
console.log(`${"Interchange: from('redis:stream/in?group=…').to('redis:stream/out')".padEnd(62)} ${Math.round(median(ours)).toLocaleString('en').padStart(10)} msg/s median  (rounds ${ours.map((r) => Math.round(r)).join(', ')})`);
console.log(`Interchange / raw ioredis, pass-through: ${median(ratios).toFixed(2)}× median  (rounds ${ratios.map((r) => r.toFixed(2)).join(' ')}) (goal ≥ 0.90×: ${median(ratios) >= 0.9 ? 'met' : 'NOT met'})`);
