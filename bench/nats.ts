// NATS JetStream benchmark: a raw nats.js pass-through (a durable pull consumer's `consume` → parse the body
// → `js.publish` with the same headers → ack once the stream acknowledged the copy) vs the same through
// Interchange, `from('nats:jetstream/S/in?consumer=…&headers=all').to('nats:jetstream/S/out?headers=all')`,
// in one run against the NATS server at NATS_URL (default 127.0.0.1:4222). Same guarantees on both sides:
// the source message is acked only after its copy was stored; at most 100 unacknowledged (the durable's
// max_ack_pending); same messages (id in Nats-Msg-Id, typed headers, JSON body) read, parsed and written;
// each copy published with `expect: { streamName }` (stored in the named stream or refused, as the adapter
// publishes); the same client configuration (`noAsyncTraces`, as the adapter connects). Both clocks start at
// the variant's first delivery and stop at its last ack; the start-up before it (the Interchange variant's
// connect, stream and consumer look-ups; the raw one's consumer look-up) is reported on its own line.
// `tsx bench/nats.ts` (or a section of `npm run bench`); BENCH_NATS_MESSAGES (default 20000), BENCH_NATS_REPEAT (default 5).
import { randomUUID } from 'node:crypto';
import { AckPolicy, DeliverPolicy, jetstream, jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { connect, nanos, type NatsConnection } from '@nats-io/transport-node';
import { createIntegration, createMessage, from, redactUrl, silentLogger, type Message } from '../facade/index.ts';
import { parseEndpoint } from '../src/spi.ts';
import { NatsTransport, natsModule } from '../adapters/nats/index.ts';
import { median } from './stats.ts';

const url = process.env.NATS_URL ?? 'nats://127.0.0.1:4222';
const count = Number(process.env.BENCH_NATS_MESSAGES ?? '20000');
const repeat = Number(process.env.BENCH_NATS_REPEAT ?? '5');
const PREFETCH = 100;
const BATCH = 1000;
const run = `hnbench${randomUUID().slice(0, 8)}`;
const STREAM = run.toUpperCase();

const body = (n: number): { deviceId: string; temperature: number; seq: number } => ({ deviceId: `d${n % 50}`, temperature: (n % 100) - 15, seq: n });
const elapsed = (started: bigint): number => Number(process.hrtime.bigint() - started) / 1e9;

/** The input subject, written through the transport (not timed), and its durable consumer, created before the clock starts. */
async function fill(transport: NatsTransport, jsm: JetStreamManager, subject: string, durable: string): Promise<void> {
  const endpoint = parseEndpoint(`nats:jetstream/${STREAM}/${subject}`);
  for (let start = 0; start < count; start += BATCH) {
    const batch: Message[] = [];
    for (let n = start; n < Math.min(count, start + BATCH); n += 1) batch.push(createMessage(body(n), { headers: { contentType: 'application/json', 'x-site': 'bench' } }));
    await transport.publish(endpoint, batch);
  }
  await jsm.consumers.add(STREAM, { durable_name: durable, ack_policy: AckPolicy.Explicit, deliver_policy: DeliverPolicy.All, filter_subject: subject, ack_wait: nanos(30_000), max_deliver: -1, max_ack_pending: PREFETCH });
}

/** Each message: body parsed and serialised again, published with its headers, acked once the stream acknowledged the copy. */
async function rawPassThrough(nc: NatsConnection, input: string, durable: string, output: string): Promise<Run> {
  const begun = process.hrtime.bigint();
  const js = jetstream(nc);
  const consumer = await js.consumers.get(STREAM, durable);
  let started: bigint | undefined;
  let done = 0;
  let finished: () => void = () => undefined;
  const all = new Promise<void>((resolve) => (finished = resolve));
  const messages = await consumer.consume({
    max_messages: PREFETCH,
    callback: (msg) => {
      started ??= process.hrtime.bigint();
      const copy = JSON.stringify(JSON.parse(new TextDecoder().decode(msg.data)));
      const headers = msg.headers;
      // the copy's de-duplication key, scoped by its subject as the adapter does (see MSG_ID)
      headers?.set('Nats-Msg-Id', `${output}:${headers.get('Nats-Msg-Id').slice(input.length + 1)}`);
      js.publish(output, copy, { expect: { streamName: STREAM }, ...(headers === undefined ? {} : { headers }) }).then(
        () => {
          msg.ack();
          done += 1;
          if (done === count) finished();
        },
        () => msg.nak(),
      );
    },
  });
  await all;
  const first = started ?? begun;
  const result = { rate: count / elapsed(first), startupMs: Number(first - begun) / 1e6 };
  await messages.close();
  return result;
}

/** Messages per second from the first delivery to the last ack; the start-up before the first delivery, in ms. */
interface Run {
  readonly rate: number;
  readonly startupMs: number;
}

async function interchangeRoute(input: string, durable: string, output: string): Promise<Run> {
  const app = createIntegration({
    logger: silentLogger,
    modules: [natsModule({ url })],
    routes: [from(`nats:jetstream/${STREAM}/${input}?consumer=${durable}&headers=all`, { id: 'bench', prefetch: PREFETCH }).to(`nats:jetstream/${STREAM}/${output}?headers=all`)],
  });
  const begun = process.hrtime.bigint();
  await app.start();
  const route = app.route('bench');
  // polled every millisecond (≤ 1 ms late on a run of seconds; the wake-ups cost < 1 % of a core)
  let started: bigint | undefined;
  while (route.metrics.completed < count) {
    await new Promise((resolve) => setTimeout(resolve, 1));
    if (started === undefined && route.metrics.received > 0) started = process.hrtime.bigint();
  }
  const first = started ?? begun;
  const result = { rate: count / elapsed(first), startupMs: Number(first - begun) / 1e6 };
  await app.stop();
  return result;
}

async function stored(jsm: JetStreamManager, subject: string): Promise<number> {
  const info = await jsm.streams.info(STREAM, { subjects_filter: subject });
  return info.state.subjects?.[subject] ?? 0;
}

const nc = await connect({ servers: url, noAsyncTraces: true });
const jsm = await jetstreamManager(nc);
await jsm.streams.add({ name: STREAM, subjects: [`${run}.>`] });
const transport = new NatsTransport({ url, logger: silentLogger });
await transport.connect();
const rawRuns: Run[] = [];
const ourRuns: Run[] = [];
try {
  // Rounds interleave the variants (a shared machine drifts); ratios are taken within a round.
  for (let round = 0; round < repeat; round += 1) {
    await fill(transport, jsm, `${run}.raw-in-${round}`, `raw-${round}`);
    rawRuns.push(await rawPassThrough(nc, `${run}.raw-in-${round}`, `raw-${round}`, `${run}.raw-out-${round}`));
    await fill(transport, jsm, `${run}.ic-in-${round}`, `ic-${round}`);
    ourRuns.push(await interchangeRoute(`${run}.ic-in-${round}`, `ic-${round}`, `${run}.ic-out-${round}`));
    for (const [variant, output] of [['raw', `${run}.raw-out-${round}`], ['Interchange', `${run}.ic-out-${round}`]] as const) {
      const written = await stored(jsm, output);
      if (written !== count) throw new Error(`${variant} round ${round}: ${written} messages stored, expected ${count}`);
    }
    await jsm.streams.purge(STREAM);
  }
} finally {
  await transport.close();
  await jsm.streams.delete(STREAM).catch(() => false);
  await nc.close();
}

const raw = rawRuns.map((run) => run.rate);
const ours = ourRuns.map((run) => run.rate);
const ratios = ours.map((rate, round) => rate / (raw[round] ?? Number.NaN));
console.log(`NATS JetStream benchmark: ${count.toLocaleString('en')} messages per variant, NATS ${redactUrl(url)}, prefetch ${PREFETCH}, ack after the copy is stored, ${repeat} interleaved rounds`);
console.log(`${'raw nats.js: consume → js.publish → ack'.padEnd(72)} ${Math.round(median(raw)).toLocaleString('en').padStart(10)} msg/s median  (rounds ${raw.map((r) => Math.round(r)).join(', ')})`);
console.log(`${"Interchange: from('nats:jetstream/S/in?consumer=…').to('nats:jetstream/S/out')".padEnd(72)} ${Math.round(median(ours)).toLocaleString('en').padStart(10)} msg/s median  (rounds ${ours.map((r) => Math.round(r)).join(', ')})`);
console.log(`Interchange / raw nats.js, JetStream pass-through: ${median(ratios).toFixed(2)}× median  (rounds ${ratios.map((r) => r.toFixed(2)).join(' ')}) (goal ≥ 0.90×: ${median(ratios) >= 0.9 ? 'met' : 'NOT met'})`);
console.log(`start-up before the first delivery (not in the rates), median: raw ${median(rawRuns.map((run) => run.startupMs)).toFixed(0)} ms, Interchange ${median(ourRuns.map((run) => run.startupMs)).toFixed(0)} ms (app.start(): connect, stream and consumer look-ups)`);
