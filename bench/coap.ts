// CoAP benchmark: device ingress pass-through. A device (node-coap client, 100 confirmable POSTs in
// flight) posts JSON readings; the server forwards each to a sink CoAP server (POST, CON) and answers the
// device 2.04 only once the sink answered — raw node-coap (server + client) vs the same through
// Interchange, `from('coap:in').to('coap://127.0.0.1:<sink>/out')`, in one run on loopback UDP. Same
// guarantees on both sides (answer after the forward was confirmed), same bodies parsed and serialised again.
// `tsx bench/coap.ts` (or a section of `npm run bench`); BENCH_COAP_MESSAGES (default 5000), BENCH_COAP_REPEAT (default 5).
import { createSocket } from 'node:dgram';
import type { AddressInfo } from 'node:net';
import * as coap from 'coap';
import { createIntegration, from, silentLogger } from '../facade/index.ts';
import { coapModule } from '../adapters/coap/index.ts';
import { median } from './stats.ts';

const count = Number(process.env.BENCH_COAP_MESSAGES ?? '5000');
const repeat = Number(process.env.BENCH_COAP_REPEAT ?? '5');
const WINDOW = 100;
const PIGGYBACK_MS = 1000;

const elapsed = (started: bigint): number => Number(process.hrtime.bigint() - started) / 1e9;

async function freePort(): Promise<number> {
  const socket = createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  const { port } = socket.address() as AddressInfo;
  await new Promise<void>((resolve) => socket.close(() => resolve()));
  return port;
}

/** The sink: answers every POST 2.04 at once, counting them. */
async function sink(): Promise<{ port: number; received: () => number; close: () => void }> {
  let received = 0;
  const server = coap.createServer({ piggybackReplyMs: PIGGYBACK_MS });
  server.on('request', (_request: coap.IncomingMessage, response: coap.OutgoingMessage) => {
    received += 1;
    response.code = '2.04';
    response.end();
  });
  const port = await freePort();
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', () => resolve()));
  return { port, received: () => received, close: () => server.close() };
}

/** Posts `count` readings to `port`, WINDOW in flight; resolves with messages per second once every one got 2.04. */
function device(agent: coap.Agent, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    let sent = 0;
    let answered = 0;
    const started = process.hrtime.bigint();
    const post = (): void => {
      const n = sent;
      sent += 1;
      const request = agent.request({ hostname: '127.0.0.1', port, method: 'POST', pathname: '/in', agent });
      request.setOption('Content-Format', 'application/json');
      request.on('response', (response: coap.IncomingMessage) => {
        if (response.code !== '2.04') return reject(new Error(`answered ${response.code}: ${response.payload.toString()}`));
        answered += 1;
        if (answered === count) resolve(count / elapsed(started));
        else if (sent < count) post();
      });
      request.on('error', reject);
      request.end(JSON.stringify({ deviceId: `d${n % 50}`, temperature: (n % 100) - 15, seq: n }));
    };
    for (let index = 0; index < Math.min(WINDOW, count); index += 1) post();
  });
}

/** Raw node-coap: the server forwards each request's body (parsed and serialised again) and answers once the sink did. */
async function raw(agent: coap.Agent, forwarder: coap.Agent, sinkPort: number): Promise<number> {
  const server = coap.createServer({ piggybackReplyMs: PIGGYBACK_MS });
  server.on('request', (request: coap.IncomingMessage, response: coap.OutgoingMessage) => {
    const body = JSON.stringify(JSON.parse(request.payload.toString()));
    const forward = forwarder.request({ hostname: '127.0.0.1', port: sinkPort, method: 'POST', pathname: '/out', agent: forwarder });
    forward.setOption('Content-Format', 'application/json');
    forward.on('response', (answer: coap.IncomingMessage) => {
      response.code = answer.code.startsWith('2.') ? '2.04' : '5.03';
      response.end();
    });
    forward.on('error', () => {
      response.code = '5.03';
      response.end();
    });
    forward.end(body);
  });
  const port = await freePort();
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', () => resolve()));
  try {
    return await device(agent, port);
  } finally {
    server.close();
  }
}

async function interchange(agent: coap.Agent, sinkPort: number): Promise<number> {
  const port = await freePort();
  const app = createIntegration({
    logger: silentLogger,
    modules: [coapModule({ port, piggybackMs: PIGGYBACK_MS })],
    routes: [from('coap:in', { id: 'bench', prefetch: WINDOW }).to(`coap://127.0.0.1:${sinkPort}/out`)],
  });
  await app.start();
  try {
    return await device(agent, port);
  } finally {
    await app.stop();
  }
}

const agent = new coap.Agent({ socket: createSocket('udp4') });
const forwarder = new coap.Agent({ socket: createSocket('udp4') });
const target = await sink();
const rawRates: number[] = [];
const ours: number[] = [];
try {
  // Rounds interleave the variants (a shared machine drifts); ratios are taken within a round.
  for (let round = 0; round < repeat; round += 1) {
    const before = target.received();
    rawRates.push(await raw(agent, forwarder, target.port));
    ours.push(await interchange(agent, target.port));
    if (target.received() - before < 2 * count) throw new Error(`round ${round}: the sink got ${target.received() - before} of ${2 * count}`);
  }
} finally {
  target.close();
  agent.close();
  forwarder.close();
}

const ratios = ours.map((rate, round) => rate / (rawRates[round] ?? Number.NaN));
console.log(`CoAP benchmark: ${count.toLocaleString('en')} confirmable POSTs per variant, ${WINDOW} in flight, answered after the forward to a sink server was confirmed, loopback UDP, ${repeat} interleaved rounds`);
console.log(`${'raw node-coap: server → client POST → 2.04'.padEnd(62)} ${Math.round(median(rawRates)).toLocaleString('en').padStart(10)} msg/s median  (rounds ${rawRates.map((r) => Math.round(r)).join(', ')})`);
console.log(`${"Interchange: from('coap:in').to('coap://…/out')".padEnd(62)} ${Math.round(median(ours)).toLocaleString('en').padStart(10)} msg/s median  (rounds ${ours.map((r) => Math.round(r)).join(', ')})`);
console.log(`Interchange / raw node-coap, pass-through: ${median(ratios).toFixed(2)}× median  (rounds ${ratios.map((r) => r.toFixed(2)).join(' ')}) (goal ≥ 0.90×: ${median(ratios) >= 0.9 ? 'met' : 'NOT met'})`);
process.exit(0);
