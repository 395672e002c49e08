// ZeroMQ benchmark: a raw zeromq pass-through (PULL → parse envelope and body → PUSH) vs the same through
// Interchange, `from('zmq:tcp://…:in').to('zmq:tcp://…:out')`, in one run on loopback TCP (no broker).
// Same work on both sides: each message's [envelope, body] frames are read, both JSON documents parsed and
// written again; at-most-once on both (ZeroMQ has no acks). A feeder PUSH queues every input message
// before the clock starts (send high-water mark unlimited); the clock runs from the pass-through binding
// its input until a sink PULL has every output message.
// `tsx bench/zeromq.ts` (or a section of `npm run bench`); BENCH_ZMQ_MESSAGES (default 20000), BENCH_ZMQ_REPEAT (default 5).
import { createServer } from 'node:net';
import { Pull, Push } from 'zeromq';
import { createIntegration, createMessage, from, silentLogger } from '../facade/index.ts';
import { zeroMqModule } from '../adapters/zeromq/index.ts';
import { median } from './stats.ts';

const count = Number(process.env.BENCH_ZMQ_MESSAGES ?? '20000');
const repeat = Number(process.env.BENCH_ZMQ_REPEAT ?? '5');
const PREFETCH = 100;

const body = (n: number): { deviceId: string; temperature: number; seq: number } => ({ deviceId: `d${n % 50}`, temperature: (n % 100) - 15, seq: n });
const elapsed = (started: bigint): number => Number(process.hrtime.bigint() - started) / 1e9;

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

/** Connects a PUSH to `input` and queues every input message there (the transport's frame layout), before any peer exists. */
async function feed(input: string): Promise<Push> {
  const feeder = new Push({ sendHighWaterMark: 0, linger: 0 });
  feeder.connect(input);
  for (let n = 0; n < count; n += 1) {
    const message = createMessage(body(n));
    await feeder.send([JSON.stringify({ id: message.id, headers: message.headers }), JSON.stringify(message.body)]);
  }
  return feeder;
}

/** A PULL bound at `output`, resolving once it has received `count` messages. */
async function sink(output: string): Promise<{ done: Promise<void>; close(): void }> {
  const pull = new Pull({ linger: 0, receiveHighWaterMark: 0 });
  await pull.bind(output);
  const done = (async () => {
    for (let n = 0; n < count; n += 1) await pull.receive();
  })();
  return { done, close: () => pull.close() };
}

async function rawPassThrough(input: string, output: string): Promise<number> {
  const pull = new Pull({ linger: 0 });
  const push = new Push({ linger: 0 });
  push.connect(output);
  const started = process.hrtime.bigint();
  await pull.bind(input);
  for (let n = 0; n < count; n += 1) {
    const [envelope, payload] = (await pull.receive()) as [Buffer, Buffer];
    const parsed = JSON.parse(envelope.toString()) as { id: string; headers: Record<string, unknown> };
    const value: unknown = JSON.parse(payload.toString());
    await push.send([JSON.stringify({ id: parsed.id, headers: parsed.headers }), JSON.stringify(value)]);
  }
  return finish(started, () => {
    pull.close();
    push.close();
  });
}

/** The current round's sink: resolves once it has every output message. */
let finishSink: Promise<void> = Promise.resolve();

async function finish(started: bigint, close: () => void): Promise<number> {
  await finishSink;
  const rate = count / elapsed(started);
  close();
  return rate;
}

async function interchangeRoute(input: string, output: string): Promise<number> {
  const app = createIntegration({
    logger: silentLogger,
    modules: [zeroMqModule({ lingerMs: 0 })],
    routes: [from(`zmq:${input}?headers=all`, { id: 'bench', prefetch: PREFETCH }).to(`zmq:${output}`)],
  });
  const started = process.hrtime.bigint();
  await app.start();
  await finishSink;
  const rate = count / elapsed(started);
  await app.stop();
  return rate;
}

async function round(variant: (input: string, output: string) => Promise<number>): Promise<number> {
  const [input, output] = [`tcp://127.0.0.1:${await freePort()}`, `tcp://127.0.0.1:${await freePort()}`];
  const out = await sink(output);
  finishSink = out.done;
  const feeder = await feed(input);
  try {
    return await variant(input, output);
  } finally {
    feeder.close();
    out.close();
  }
}

const raw: number[] = [];
const ours: number[] = [];
// Rounds interleave the variants (a shared machine drifts); ratios are taken within a round.
for (let index = 0; index < repeat; index += 1) {
  raw.push(await round(rawPassThrough));
  ours.push(await round(interchangeRoute));
}

const ratios = ours.map((rate, index) => rate / (raw[index] ?? Number.NaN));
console.log(`ZeroMQ benchmark: ${count.toLocaleString('en')} messages per variant, loopback TCP, prefetch ${PREFETCH}, at-most-once (no acks exist), ${repeat} interleaved rounds`);
console.log(`${'raw zeromq: PULL → parse → PUSH'.padEnd(62)} ${Math.round(median(raw)).toLocaleString('en').padStart(10)} msg/s median  (rounds ${raw.map((r) => Math.round(r)).join(', ')})`);
console.log(`${"Interchange: from('zmq:tcp://…:in').to('zmq:tcp://…:out')".padEnd(62)} ${Math.round(median(ours)).toLocaleString('en').padStart(10)} msg/s median  (rounds ${ours.map((r) => Math.round(r)).join(', ')})`);
console.log(`Interchange / raw zeromq, pass-through: ${median(ratios).toFixed(2)}× median  (rounds ${ratios.map((r) => r.toFixed(2)).join(' ')}) (goal ≥ 0.90×: ${median(ratios) >= 0.9 ? 'met' : 'NOT met'})`);
