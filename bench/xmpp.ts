// XMPP benchmark: a raw @xmpp/client pass-through (a session of the input account receives the chat
// messages mod_offline kept for it, a session of the publishing account sends a copy of each — body JSON and the urn:interchange:0 envelope parsed
// and written again — and sends it to the output account; done when the server's XEP-0198 acks cover
// every copy) vs the same through Interchange, `from('xmpp:in@localhost').to('xmpp:out@localhost')`
// (source settled once the copy is acked), in one run against the Prosody at XMPP_URL (default
// 127.0.0.1:5222, scripts/prosody/setup.sh). Both sides log in inside the timing; both use the adapter's
// pbkdf2 SCRAM fix (adapters/xmpp/xmpp-client.ts). Fresh accounts per round (prosodyctl, as root).
// `tsx bench/xmpp.ts` (or a section of `npm run bench`); BENCH_XMPP_MESSAGES (default 5000), BENCH_XMPP_REPEAT (default 5).
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { createIntegration, createMessage, from, silentLogger, type Message } from '../facade/index.ts';
import { parseEndpoint } from '../src/spi.ts';
import { ENVELOPE_NS, XmppTransport, xmppModule } from '../adapters/xmpp/index.ts';
import { xml, xmppClient, type XmlElement } from '../adapters/xmpp/xmpp-client.ts';
import { median } from './stats.ts';

const service = process.env.XMPP_URL ?? 'xmpp://127.0.0.1:5222';
const count = Number(process.env.BENCH_XMPP_MESSAGES ?? '5000');
const repeat = Number(process.env.BENCH_XMPP_REPEAT ?? '5');
const PREFETCH = 100;
const BATCH = 500;
const PASSWORD = 'bench-secret';
const publisher = { jid: 'interchange@localhost', password: 'interchange-secret' };
const config = fileURLToPath(new URL('../scripts/prosody/prosody.cfg.lua', import.meta.url));
const run = `bench-xmpp-${randomUUID().slice(0, 8)}`;
const created: string[] = [];

const body = (n: number): { deviceId: string; temperature: number; seq: number } => ({ deviceId: `d${n % 50}`, temperature: (n % 100) - 15, seq: n });
const elapsed = (started: bigint): number => Number(process.hrtime.bigint() - started) / 1e9;

function account(name: string): string {
  execFileSync('prosodyctl', ['--config', config, 'register', name, 'localhost', PASSWORD], { stdio: 'pipe' });
  created.push(`${name}@localhost`);
  return `${name}@localhost`;
}

/** The input account's offline store, written through the transport (not timed). */
async function fill(transport: XmppTransport, jid: string): Promise<void> {
  const endpoint = parseEndpoint(`xmpp:${jid}`);
  for (let start = 0; start < count; start += BATCH) {
    const batch: Message[] = [];
    for (let n = start; n < Math.min(count, start + BATCH); n += 1) batch.push(createMessage(body(n)));
    await transport.publish(endpoint, batch);
  }
}

/** Two sessions, as the route has: one of the input account receives, one of the publishing account sends the copies. */
async function rawPassThrough(input: string, output: string): Promise<number> {
  const started = process.hrtime.bigint();
  const receiver = xmppClient({ service, domain: 'localhost', username: input.split('@')[0] ?? '', password: PASSWORD, resource: 'raw' });
  const sender = xmppClient({ service, domain: 'localhost', username: publisher.jid.split('@')[0] ?? '', password: publisher.password, resource: 'raw' });
  sender.streamManagement.requestAckDebounce = 1;
  // the route's bound: at most PREFETCH copies sent and not yet acknowledged; the rest wait in memory
  let acked = 0;
  let inFlight = 0;
  const waiting: XmlElement[] = [];
  const pump = (): void => {
    while (inFlight < PREFETCH && waiting.length > 0) {
      inFlight += 1;
      void sender.send(waiting.shift() as XmlElement);
    }
  };
  const done = new Promise<void>((resolve) => {
    sender.streamManagement.on('ack', (stanza) => {
      if (!stanza.is('message')) return;
      inFlight -= 1;
      if ((acked += 1) === count) resolve();
      pump();
    });
  });
  receiver.on('stanza', (stanza: XmlElement) => {
    if (!stanza.is('message')) return;
    const text = stanza.getChildText('body');
    const envelope = stanza.getChild('interchange', ENVELOPE_NS);
    if (text === null || envelope === undefined) return;
    const headers = JSON.stringify(JSON.parse(envelope.getText()));
    waiting.push(xml('message', { type: 'chat', to: output, id: randomUUID() }, xml('body', {}, JSON.stringify(JSON.parse(text))), xml('interchange', { xmlns: ENVELOPE_NS, id: envelope.attrs.id, body: 'json' }, headers)));
    pump();
  });
  await Promise.all([receiver.start(), sender.start()]);
  while (!sender.streamManagement.enabled) await new Promise((resolve) => setTimeout(resolve, 1));
  await receiver.send(xml('presence', {}, xml('priority', {}, '0')));
  await done;
  const rate = count / elapsed(started);
  await Promise.all([receiver.stop(), sender.stop()]);
  return rate;
}

async function interchangeRoute(input: string, output: string): Promise<number> {
  const app = createIntegration({
    logger: silentLogger,
    modules: [xmppModule({ service, ...publisher, accounts: { [input]: PASSWORD } })],
    routes: [from(`xmpp:${input}?trust=${publisher.jid}`, { id: 'bench', prefetch: PREFETCH }).to(`xmpp:${output}`)],
  });
  const started = process.hrtime.bigint();
  await app.start();
  const route = app.route('bench');
  while (route.metrics.completed < count) await new Promise((resolve) => setTimeout(resolve, 1));
  const rate = count / elapsed(started);
  await app.stop();
  return rate;
}

const transport = new XmppTransport({ service, ...publisher, logger: silentLogger });
await transport.connect();
const raw: number[] = [];
const ours: number[] = [];
try {
  // Rounds interleave the variants (a shared machine drifts); ratios are taken within a round.
  for (let round = 0; round < repeat; round += 1) {
    const [rawIn, rawOut, icIn, icOut] = ['raw-in', 'raw-out', 'ic-in', 'ic-out'].map((label) => account(`${run}-${label}-${round}`)) as [string, string, string, string];
    await fill(transport, rawIn);
    raw.push(await rawPassThrough(rawIn, rawOut));
    await fill(transport, icIn);
    ours.push(await interchangeRoute(icIn, icOut));
  }
} finally {
  await transport.close();
  for (const jid of created) execFileSync('prosodyctl', ['--config', config, 'deluser', jid], { stdio: 'pipe' });
}

const ratios = ours.map((rate, round) => rate / (raw[round] ?? Number.NaN));
console.log(`XMPP benchmark: ${count.toLocaleString('en')} chat messages per variant, Prosody at ${service}, prefetch ${PREFETCH}, done when XEP-0198 acks cover every copy, ${repeat} interleaved rounds`);
console.log(`${'raw @xmpp/client: offline store → copy → send (≤ 100 unacked)'.padEnd(62)} ${Math.round(median(raw)).toLocaleString('en').padStart(10)} msg/s median  (rounds ${raw.map((r) => Math.round(r)).join(', ')})`);
console.log(`${"Interchange: from('xmpp:in@…').to('xmpp:out@…')".padEnd(62)} ${Math.round(median(ours)).toLocaleString('en').padStart(10)} msg/s median  (rounds ${ours.map((r) => Math.round(r)).join(', ')})`);
console.log(`Interchange / raw @xmpp/client, pass-through: ${median(ratios).toFixed(2)}× median  (rounds ${ratios.map((r) => r.toFixed(2)).join(' ')}) (goal ≥ 0.90×: ${median(ratios) >= 0.9 ? 'met' : 'NOT met'})`);
