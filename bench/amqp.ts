// AMQP benchmark: raw amqplib baselines vs the same work through Interchange, one run, against the
// RabbitMQ at AMQP_URL (default 127.0.0.1:5672). Same guarantees on both sides: persistent messages,
// publisher confirms awaited, manual acks, prefetch 100, the source acked only after the output is confirmed.
// `tsx bench/amqp.ts` (or as the last section of `npm run bench`); BENCH_AMQP_MESSAGES (default 20000).
import { randomUUID } from 'node:crypto';
import { connect, type Channel, type ChannelModel, type ConfirmChannel } from 'amqplib';
import { createIntegration, createMessage, from, redactUrl, silentLogger, type Message } from '../facade/index.ts';
import { parseEndpoint } from '../src/spi.ts';
import { AmqpTransport, amqpModule } from '../adapters/amqp/index.ts';
import { median } from './stats.ts';

const url = process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const count = Number(process.env.BENCH_AMQP_MESSAGES ?? '20000');
const BATCH = 1000;
const PREFETCH = 100;
const suffix = randomUUID().slice(0, 8);
const names = { in: `bench-in-${suffix}`, out: `bench-out-${suffix}`, outQueue: `bench-out-q-${suffix}` };

interface Row {
  readonly name: string;
  readonly runs: number[];
}

const body = (n: number): { deviceId: string; temperature: number; seq: number } => ({ deviceId: `d${n % 50}`, temperature: (n % 100) - 15, seq: n });
const elapsed = (started: bigint): number => Number(process.hrtime.bigint() - started) / 1e9;

async function setup(model: ChannelModel): Promise<Channel> {
  const channel = await model.createChannel();
  await channel.assertQueue(names.in, { durable: true });
  await channel.assertExchange(names.out, 'direct', { durable: true });
  await channel.assertQueue(names.outQueue, { durable: true });
  await channel.bindQueue(names.outQueue, names.out, 'r');
  return channel;
}

async function rawPublish(confirm: ConfirmChannel, queue: string): Promise<number> {
  const started = process.hrtime.bigint();
  for (let start = 0; start < count; start += BATCH) {
    for (let n = start; n < Math.min(count, start + BATCH); n += 1) {
      const ok = confirm.publish('', queue, Buffer.from(JSON.stringify(body(n))), { persistent: true, mandatory: true, messageId: randomUUID(), contentType: 'application/json', timestamp: Math.floor(Date.now() / 1000), headers: {} });
      if (!ok) await new Promise((resolve) => confirm.once('drain', resolve));
    }
    await confirm.waitForConfirms();
  }
  return count / elapsed(started);
}

async function rawConsume(model: ChannelModel, queue: string): Promise<number> {
  const channel = await model.createChannel();
  await channel.prefetch(PREFETCH);
  const started = process.hrtime.bigint();
  let seen = 0;
  await new Promise<void>((resolve) => {
    void channel.consume(queue, (raw) => {
      if (raw === null) return;
      JSON.parse(raw.content.toString('utf8'));
      channel.ack(raw);
      seen += 1;
      if (seen === count) resolve();
    });
  });
  const rate = count / elapsed(started);
  await channel.close();
  return rate;
}

async function rawPassThrough(model: ChannelModel, confirm: ConfirmChannel): Promise<number> {
  const channel = await model.createChannel();
  await channel.prefetch(PREFETCH);
  const started = process.hrtime.bigint();
  let done = 0;
  await new Promise<void>((resolve) => {
    void channel.consume(names.in, (raw) => {
      if (raw === null) return;
      const parsed = JSON.parse(raw.content.toString('utf8')) as object;
      confirm.publish(names.out, 'r', Buffer.from(JSON.stringify(parsed)), { ...raw.properties, persistent: true, mandatory: true }, (error) => {
        if (error === null || error === undefined) channel.ack(raw);
        else channel.nack(raw, false, true);
        done += 1;
        if (done === count) resolve();
      });
    });
  });
  const rate = count / elapsed(started);
  await channel.close();
  return rate;
}

async function interchangePublish(transport: AmqpTransport): Promise<number> {
  const endpoint = parseEndpoint(`amqp:queue/${names.in}`);
  const started = process.hrtime.bigint();
  for (let start = 0; start < count; start += BATCH) {
    const batch: Message[] = [];
    for (let n = start; n < Math.min(count, start + BATCH); n += 1) batch.push(createMessage(body(n)));
    await transport.publish(endpoint, batch);
  }
  return count / elapsed(started);
}

async function interchangeConsume(transport: AmqpTransport): Promise<number> {
  const started = process.hrtime.bigint();
  let seen = 0;
  await new Promise<void>((resolve) => {
    const subscription = transport.consume(parseEndpoint(`amqp:queue/${names.in}`), { prefetch: PREFETCH }).subscribe((delivery) => {
      delivery.ack();
      seen += 1;
      if (seen === count) {
        resolve();
        queueMicrotask(() => subscription.unsubscribe());
      }
    });
  });
  return count / elapsed(started);
}

async function interchangeRoute(): Promise<number> {
  const app = createIntegration({
    logger: silentLogger,
    modules: [amqpModule({ url })],
    routes: [from(`amqp:queue/${names.in}`, { id: 'bench', prefetch: PREFETCH }).to(`amqp:exchange/${names.out}?routingKey=r`)],
  });
  await app.start();
  const started = process.hrtime.bigint();
  const route = app.route('bench');
  while (route.metrics.completed < count) await new Promise((resolve) => setTimeout(resolve, 1));
  const rate = count / elapsed(started);
  await app.stop();
  return rate;
}

// The raw client gets the adapter's socket setting (TCP_NODELAY) unless BENCH_AMQP_RAW_NODELAY=false: like with like.
const model = await connect(url, { noDelay: process.env.BENCH_AMQP_RAW_NODELAY !== 'false' });
const admin = await setup(model);
const confirm = await model.createConfirmChannel();
const transport = new AmqpTransport({ url }, silentLogger);
await transport.connect();
const repeat = Number(process.env.BENCH_AMQP_REPEAT ?? '5');
// Rounds interleave the variants (a shared machine drifts); ratios are taken within a round.
const rows: Row[] = [];
const record = (name: string, perSecond: number): void => {
  const row = rows.find((existing) => existing.name === name);
  if (row === undefined) rows.push({ name, runs: [perSecond] });
  else row.runs.push(perSecond);
};
try {
  for (let round = 0; round < repeat; round += 1) {
    record('raw amqplib: publish with confirms', await rawPublish(confirm, names.in));
    record('raw amqplib: consume with manual ack', await rawConsume(model, names.in));
    record('Interchange: transport.publish (confirms)', await interchangePublish(transport));
    record('Interchange: transport.consume (manual ack)', await interchangeConsume(transport));
    await rawPublish(confirm, names.in);
    record('raw amqplib: queue → exchange pass-through', await rawPassThrough(model, confirm));
    await admin.purgeQueue(names.outQueue);
    await rawPublish(confirm, names.in);
    record("Interchange: from('amqp:queue/in').to('amqp:exchange/out')", await interchangeRoute());
    await admin.purgeQueue(names.outQueue);
  }
} finally {
  await transport.close();
  await admin.deleteQueue(names.in);
  await admin.deleteQueue(names.outQueue);
  await admin.deleteExchange(names.out);
  await model.close();
}

const runsOf = (name: string): number[] => rows.find((row) => row.name.startsWith(name))?.runs ?? [];
console.log(`AMQP benchmark: ${count.toLocaleString('en')} messages per variant, RabbitMQ ${redactUrl(url)}, prefetch ${PREFETCH}, publish batches of ${BATCH}, persistent + confirms + manual acks, ${repeat} interleaved rounds`);
for (const row of rows) console.log(`${row.name.padEnd(62)} ${Math.round(median(row.runs)).toLocaleString('en').padStart(10)} msg/s median  (rounds ${row.runs.map((r) => Math.round(r)).join(', ')})`);
const pairs: [string, string, string][] = [
  ['publish', 'raw amqplib: publish', 'Interchange: transport.publish'],
  ['consume', 'raw amqplib: consume', 'Interchange: transport.consume'],
  ['pass-through', 'raw amqplib: queue', 'Interchange: from('],
];
// Ratios within a round (the variants of a round ran back to back), then the median over rounds.
const ratioOf = (raw: string, ours: string): number[] => runsOf(ours).map((rate, round) => rate / (runsOf(raw)[round] ?? Number.NaN));
for (const [label, raw, ours] of pairs) {
  const ratios = ratioOf(raw, ours);
  const goal = label === 'pass-through' ? ` (goal ≥ 0.90×: ${median(ratios) >= 0.9 ? 'met' : 'NOT met'})` : '';
  console.log(`Interchange / raw amqplib, ${label}: ${median(ratios).toFixed(2)}× median  (rounds ${ratios.map((r) => r.toFixed(2)).join(' ')})${goal}`);
}
