// STOMP benchmark: a raw @stomp/stompjs pass-through (SUBSCRIBE ack:client-individual, prefetch 100 → parse the
// body → SEND the copy with the same headers and a receipt → ACK once the RECEIPT came) vs the same through
// Interchange, `from('stomp:queue/in?headers=all').to('stomp:queue/out?headers=all')`, in one run against
// RabbitMQ's STOMP plugin at STOMP_URL (default stomp://guest:guest@127.0.0.1:61613). Same guarantees on both
// sides: persistent messages, the source acked only after its copy was confirmed (RECEIPT), at most 100 unacked;
// each clock includes connecting and subscribing (Interchange's `app.start()` does both, so the raw client
// connects inside its clock too). Besides msg/s, each variant's CPU time per message (process.cpuUsage:
// user + system, this process only — the broker's is not in it), which a loaded machine disturbs less.
// `tsx bench/stomp.ts` (or a section of `npm run bench`); BENCH_STOMP_MESSAGES (default 20000: rounds of a few seconds, which a loaded machine disturbs
// less than the 1–2 s rounds of 5,000 did), BENCH_STOMP_REPEAT (default 3).
import { randomUUID } from 'node:crypto';
import { Client, type IMessage } from '@stomp/stompjs';
import { TCPWrapper } from '@stomp/tcp-wrapper';
import amqp from 'amqplib';
import { createIntegration, createMessage, from, redactUrl, silentLogger, type Message } from '../facade/index.ts';
import { parseEndpoint } from '../src/spi.ts';
import { StompTransport, stompModule } from '../adapters/stomp/index.ts';
import { median } from './stats.ts';

const url = process.env.STOMP_URL ?? 'stomp://guest:guest@127.0.0.1:61613';
const amqpUrl = process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const count = Number(process.env.BENCH_STOMP_MESSAGES ?? '20000');
const repeat = Number(process.env.BENCH_STOMP_REPEAT ?? '3');
const PREFETCH = 100;
const BATCH = 500;
const run = `hsbench-${randomUUID().slice(0, 8)}`;

const body = (n: number): { deviceId: string; temperature: number; seq: number } => ({ deviceId: `d${n % 50}`, temperature: (n % 100) - 15, seq: n });
const elapsed = (started: bigint): number => Number(process.hrtime.bigint() - started) / 1e9;

async function fill(transport: StompTransport, queue: string): Promise<void> {
  const endpoint = parseEndpoint(`stomp:queue/${queue}`);
  for (let start = 0; start < count; start += BATCH) {
    const batch: Message[] = [];
    for (let n = start; n < Math.min(count, start + BATCH); n += 1) batch.push(createMessage(body(n), { headers: { contentType: 'application/json', 'x-site': 'bench' } }));
    await transport.publish(endpoint, batch);
  }
}

/** Each message: body parsed and serialised again, SENT with its own headers and a receipt, ACKed on the RECEIPT. */
async function rawPassThrough(input: string, output: string): Promise<number> {
  const { hostname, port, username, password } = new URL(url);
  const started = process.hrtime.bigint();
  const client = new Client({ webSocketFactory: () => new TCPWrapper(hostname, Number(port)), connectHeaders: { login: decodeURIComponent(username), passcode: decodeURIComponent(password), host: '/' }, reconnectDelay: 0, debug: () => undefined });
  await new Promise<void>((resolve) => {
    client.onConnect = () => resolve();
    client.activate();
  });
  let done = 0;
  let receipts = 0;
  await new Promise<void>((resolve) => {
    client.subscribe(
      `/queue/${input}`,
      (message: IMessage) => {
        const copy = JSON.stringify(JSON.parse(new TextDecoder().decode(message.binaryBody)));
        const headers: Record<string, string> = {};
        for (const [name, value] of Object.entries(message.headers)) if (!['message-id', 'subscription', 'ack', 'destination', 'content-length', 'redelivered', 'receipt'].includes(name)) headers[name] = value;
        const receipt = `r${(receipts += 1)}`;
        client.watchForReceipt(receipt, () => {
          message.ack();
          done += 1;
          if (done === count) resolve();
        });
        client.publish({ destination: `/queue/${output}`, headers: { ...headers, receipt }, binaryBody: new TextEncoder().encode(copy) });
      },
      { ack: 'client-individual', 'prefetch-count': String(PREFETCH) },
    );
  });
  const rate = count / elapsed(started);
  await client.deactivate();
  return rate;
}

async function interchangeRoute(input: string, output: string): Promise<number> {
  const app = createIntegration({
    logger: silentLogger,
    modules: [stompModule({ url })],
    routes: [from(`stomp:queue/${input}?headers=all`, { id: 'bench', prefetch: PREFETCH }).to(`stomp:queue/${output}?headers=all`)],
  });
  const started = process.hrtime.bigint();
  await app.start();
  const route = app.route('bench');
  while (route.metrics.completed < count) await new Promise((resolve) => setTimeout(resolve, 1));
  const rate = count / elapsed(started);
  await app.stop();
  return rate;
}

const admin = await amqp.connect(amqpUrl);
const channel = await admin.createChannel();
const transport = new StompTransport({ url }, silentLogger);
await transport.connect();
const raw: number[] = [];
const ours: number[] = [];
/** CPU microseconds per message, per round. */
const rawCpu: number[] = [];
const oursCpu: number[] = [];
const cpuPerMessage = (since: NodeJS.CpuUsage): number => {
  const { user, system } = process.cpuUsage(since);
  return (user + system) / count;
};
const queues: string[] = [];
try {
  // Rounds interleave the variants (a shared machine drifts); ratios are taken within a round.
  for (let round = 0; round < repeat; round += 1) {
    const names = { rawIn: `${run}-raw-in-${round}`, rawOut: `${run}-raw-out-${round}`, icIn: `${run}-ic-in-${round}`, icOut: `${run}-ic-out-${round}` };
    queues.push(...Object.values(names));
    await fill(transport, names.rawIn);
    let cpu = process.cpuUsage();
    raw.push(await rawPassThrough(names.rawIn, names.rawOut));
    rawCpu.push(cpuPerMessage(cpu));
    await fill(transport, names.icIn);
    cpu = process.cpuUsage();
    ours.push(await interchangeRoute(names.icIn, names.icOut));
    oursCpu.push(cpuPerMessage(cpu));
    for (const [variant, output] of [['raw', names.rawOut], ['Interchange', names.icOut]] as const) {
      const { messageCount } = await channel.checkQueue(output);
      if (messageCount !== count) throw new Error(`${variant} round ${round}: ${messageCount} messages in ${output}, expected ${count}`);
    }
  }
} finally {
  await transport.close();
  for (const queue of queues) await channel.deleteQueue(queue).catch(() => undefined);
  await admin.close();
}

const ratios = ours.map((rate, round) => rate / (raw[round] ?? Number.NaN));
console.log(`STOMP benchmark: ${count.toLocaleString('en')} messages per variant, RabbitMQ STOMP ${redactUrl(url)}, prefetch ${PREFETCH}, persistent, ack after the copy's RECEIPT, ${repeat} interleaved rounds`);
console.log(`${'raw @stomp/stompjs: SUBSCRIBE → SEND (receipt) → ACK'.padEnd(72)} ${Math.round(median(raw)).toLocaleString('en').padStart(10)} msg/s median  (rounds ${raw.map((r) => Math.round(r)).join(', ')})`);
console.log(`${"Interchange: from('stomp:queue/in').to('stomp:queue/out')".padEnd(72)} ${Math.round(median(ours)).toLocaleString('en').padStart(10)} msg/s median  (rounds ${ours.map((r) => Math.round(r)).join(', ')})`);
console.log(`CPU per message (this process): raw ${median(rawCpu).toFixed(0)} µs, Interchange ${median(oursCpu).toFixed(0)} µs median  (rounds raw ${rawCpu.map((c) => c.toFixed(0)).join(' ')}; Interchange ${oursCpu.map((c) => c.toFixed(0)).join(' ')})`);
console.log(`Interchange / raw @stomp/stompjs, STOMP pass-through: ${median(ratios).toFixed(2)}× median  (rounds ${ratios.map((r) => r.toFixed(2)).join(' ')}) (goal ≥ 0.90×: ${median(ratios) >= 0.9 ? 'met' : 'NOT met'})`);
