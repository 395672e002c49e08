// AMQP 1.0 benchmark: a raw rhea pass-through (receiver with manual credit → unsettled send of a copy →
// accept the source once the copy is `accepted`) vs the same through Interchange,
// `from('amqp10:queue/in').to('amqp10:queue/out')`, in one run against RabbitMQ 3.10's AMQP 1.0 plugin
// (AMQP10_URL, default amqp://guest:guest@127.0.0.1:5672). Same guarantees on both sides: the source
// message is accepted only after its copy was accepted; at most 100 unsettled; same messages (the
// transport's layout: message id, application properties, JSON in one data section) read, parsed and written.
// `tsx bench/amqp10.ts` (or a section of `npm run bench`); BENCH_AMQP10_MESSAGES (default 20000), BENCH_AMQP10_REPEAT (default 5).
import { randomUUID } from 'node:crypto';
import { connect as amqp091 } from 'amqplib';
import rhea, { type Message as AmqpMessage } from 'rhea';
import { createIntegration, createMessage, from, redactUrl, silentLogger, type Message } from '../facade/index.ts';
import { parseEndpoint } from '../src/spi.ts';
import { Amqp10Transport, amqp10Module, parseAmqp10Url } from '../adapters/amqp10/index.ts';
import { median } from './stats.ts';

const url = process.env.AMQP10_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const count = Number(process.env.BENCH_AMQP10_MESSAGES ?? '20000');
const repeat = Number(process.env.BENCH_AMQP10_REPEAT ?? '5');
const PREFETCH = 100;
const BATCH = 1000;
const run = `bench-amqp10-${randomUUID().slice(0, 8)}`;

const body = (n: number): { deviceId: string; temperature: number; seq: number } => ({ deviceId: `d${n % 50}`, temperature: (n % 100) - 15, seq: n });
const elapsed = (started: bigint): number => Number(process.hrtime.bigint() - started) / 1e9;

async function fill(transport: Amqp10Transport, queue: string): Promise<void> {
  const endpoint = parseEndpoint(`amqp10:queue/${queue}`);
  for (let start = 0; start < count; start += BATCH) {
    const batch: Message[] = [];
    for (let n = start; n < Math.min(count, start + BATCH); n += 1) batch.push(createMessage(body(n)));
    await transport.publish(endpoint, batch);
  }
}

/** Raw rhea: the copy (body parsed and serialised again) sent unsettled; the source accepted, and one credit given back, when the copy is accepted. */
async function rawPassThrough(input: string, output: string): Promise<number> {
  const target = parseAmqp10Url(url);
  const connection = rhea.create_container().connect({ host: target.host, port: target.port, username: target.username, password: target.password, reconnect: false });
  await new Promise((resolve) => connection.once('connection_open', resolve));
  const sender = connection.open_sender({ target: { address: `/queue/${output}`, durable: 2 } });
  await new Promise((resolve) => sender.once('sendable', resolve));
  const started = process.hrtime.bigint();
  const session = connection.create_session();
  session.begin();
  const receiver = session.open_receiver({ source: { address: `/queue/${input}`, durable: 2 }, autoaccept: false, credit_window: 0 });
  let done = 0;
  const finished = new Promise<void>((resolve) => {
    sender.on('accepted', (context) => {
      (context.delivery as unknown as { source: { accept(): void } }).source.accept();
      receiver.add_credit(1);
      done += 1;
      if (done === count) resolve();
    });
  });
  receiver.on('message', (context) => {
    const raw = context.message as AmqpMessage;
    const section = raw.body as { content: Buffer };
    const copy: AmqpMessage = {
      message_id: raw.message_id,
      content_type: raw.content_type,
      creation_time: raw.creation_time,
      durable: true,
      application_properties: raw.application_properties,
      body: rhea.message.data_section(Buffer.from(JSON.stringify(JSON.parse(section.content.toString())))),
    };
    const delivery = sender.send(copy);
    (delivery as unknown as { source: unknown }).source = context.delivery;
  });
  receiver.once('receiver_open', () => receiver.add_credit(PREFETCH));
  await finished;
  const rate = count / elapsed(started);
  connection.close();
  return rate;
}

async function interchangeRoute(input: string, output: string): Promise<number> {
  const app = createIntegration({
    logger: silentLogger,
    modules: [amqp10Module({ url })],
    routes: [from(`amqp10:queue/${input}?headers=all`, { id: 'bench', prefetch: PREFETCH }).to(`amqp10:queue/${output}`)],
  });
  const started = process.hrtime.bigint();
  await app.start();
  const route = app.route('bench');
  while (route.metrics.completed < count) await new Promise((resolve) => setTimeout(resolve, 1));
  const rate = count / elapsed(started);
  await app.stop();
  return rate;
}

const admin = await amqp091(url);
const channel = await admin.createChannel();
const transport = new Amqp10Transport({ url }, silentLogger);
await transport.connect();
const raw: number[] = [];
const ours: number[] = [];
const queues: string[] = [];
try {
  // Rounds interleave the variants (a shared machine drifts); ratios are taken within a round.
  for (let round = 0; round < repeat; round += 1) {
    const names = [`${run}-raw-in-${round}`, `${run}-raw-out-${round}`, `${run}-ic-in-${round}`, `${run}-ic-out-${round}`] as const;
    queues.push(...names);
    await fill(transport, names[0]);
    raw.push(await rawPassThrough(names[0], names[1]));
    await fill(transport, names[2]);
    ours.push(await interchangeRoute(names[2], names[3]));
    for (const [variant, output] of [['raw', names[1]], ['Interchange', names[3]]] as const) {
      const written = (await channel.checkQueue(output)).messageCount;
      if (written !== count) throw new Error(`${variant} round ${round}: ${written} messages written, expected ${count}`);
    }
    for (const name of names) await channel.deleteQueue(name);
  }
} finally {
  await transport.close();
  for (const name of queues) await channel.deleteQueue(name).catch(() => undefined);
  await admin.close();
}

const ratios = ours.map((rate, round) => rate / (raw[round] ?? Number.NaN));
console.log(`AMQP 1.0 benchmark: ${count.toLocaleString('en')} messages per variant, RabbitMQ ${redactUrl(url)} (rabbitmq_amqp1_0), prefetch ${PREFETCH}, accept after the copy is accepted, ${repeat} interleaved rounds`);
console.log(`${'raw rhea: receive → send copy → accept on accepted'.padEnd(62)} ${Math.round(median(raw)).toLocaleString('en').padStart(10)} msg/s median  (rounds ${raw.map((r) => Math.round(r)).join(', ')})`);
console.log(`${"Interchange: from('amqp10:queue/in').to('amqp10:queue/out')".padEnd(62)} ${Math.round(median(ours)).toLocaleString('en').padStart(10)} msg/s median  (rounds ${ours.map((r) => Math.round(r)).join(', ')})`);
console.log(`Interchange / raw rhea, pass-through: ${median(ratios).toFixed(2)}× median  (rounds ${ratios.map((r) => r.toFixed(2)).join(' ')}) (goal ≥ 0.90×: ${median(ratios) >= 0.9 ? 'met' : 'NOT met'})`);
