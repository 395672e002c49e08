// Message security on a broker route (issue 20): what `.sign()` → `.verify()` (HS256) and `.encrypt()` →
// `.decrypt()` (AES-256-GCM, whole body) cost per message on a RabbitMQ pass-through, against the same
// route without them, in the same run — the route a message really takes, where the memory-route
// sections (bench/signing.ts, bench/encryption.ts) measure the steps alone against a route that does
// almost nothing (≈ 1–4 µs a message). Same guarantees in every variant: persistent messages, publisher
// confirms, manual acks after the output is confirmed, prefetch 100. Interleaved rounds; the median of
// the per-round ratios; goal ≥ 0.7× for HMAC and for AES-GCM.
// `npx tsx --conditions=interchange-source bench/security-amqp.ts`; BENCH_SECURITY_MESSAGES (default 20,000), BENCH_SECURITY_ROUNDS (default 5).
import { randomBytes, randomUUID } from 'node:crypto';
import { cpus, loadavg } from 'node:os';
import { connect } from 'amqplib';
import { createIntegration, createMessage, from, redactUrl, silentLogger, type Message } from '../facade/index.ts';
import { generateSignatureKey, Keyring, type EncryptionKey, type SignatureKey } from '../facade/security/index.ts';
import { parseEndpoint } from '../src/spi.ts';
import { AmqpTransport, amqpModule } from '../adapters/amqp/index.ts';
import { median } from './stats.ts';

const GOAL = 0.7;
const url = process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const count = Number(process.env.BENCH_SECURITY_MESSAGES ?? '20000');
const rounds = Number(process.env.BENCH_SECURITY_ROUNDS ?? '5');
const PREFETCH = 100;
const BATCH = 1000;
const suffix = randomUUID().slice(0, 8);
const names = { in: `bench-sec-in-${suffix}`, out: `bench-sec-out-${suffix}`, outQueue: `bench-sec-out-q-${suffix}` };

type Variant = 'plain' | 'hs256' | 'aes-gcm';
const NAMES: Record<Variant, string> = {
  plain: "plain: from('amqp:queue/in').to('amqp:exchange/out')",
  hs256: 'with .sign() → .verify(), HS256, replay memory on',
  'aes-gcm': 'with .encrypt() → .decrypt(), AES-256-GCM, whole body',
};
const signingKeys = new Keyring<SignatureKey>([{ id: 'bench-hs256', key: generateSignatureKey('HS256') }]);
const encryptionKeys = new Keyring<EncryptionKey>([{ id: 'bench-kek', key: randomBytes(32) }]);

const body = (n: number): { deviceId: string; temperature: number; seq: number } => ({ deviceId: `d${n % 50}`, temperature: (n % 100) - 15, seq: n });

async function fill(transport: AmqpTransport): Promise<void> {
  const endpoint = parseEndpoint(`amqp:queue/${names.in}`);
  for (let start = 0; start < count; start += BATCH) {
    const batch: Message[] = [];
    for (let n = start; n < Math.min(count, start + BATCH); n += 1) batch.push(createMessage(body(n), { headers: { deviceId: `d${n % 50}` } }));
    await transport.publish(endpoint, batch);
  }
}

async function run(variant: Variant): Promise<number> {
  const source = from(`amqp:queue/${names.in}`, { id: 'bench', prefetch: PREFETCH });
  const out = `amqp:exchange/${names.out}?routingKey=r`;
  const route =
    variant === 'plain'
      ? source.to(out)
      : variant === 'hs256'
        ? source.sign({ keys: signingKeys, headers: ['deviceId'] }).verify({ keys: signingKeys, headers: ['deviceId'] }).to(out)
        : source.encrypt({ keys: encryptionKeys }).decrypt({ keys: encryptionKeys }).to(out);
  const app = createIntegration({ logger: silentLogger, modules: [amqpModule({ url })], routes: [route] });
  await app.start();
  const started = process.hrtime.bigint();
  const running = app.route('bench');
  while (running.metrics.completed < count) {
    if (running.metrics.deadLettered > 0 || running.metrics.failed > 0) throw new Error(`${variant}: ${running.metrics.deadLettered} dead-lettered, ${running.metrics.failed} failed`);
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
  const rate = count / (Number(process.hrtime.bigint() - started) / 1e9);
  await app.stop();
  return rate;
}

const model = await connect(url);
const admin = await model.createChannel();
await admin.assertQueue(names.in, { durable: true });
await admin.assertExchange(names.out, 'direct', { durable: true });
await admin.assertQueue(names.outQueue, { durable: true });
await admin.bindQueue(names.outQueue, names.out, 'r');
const transport = new AmqpTransport({ url }, silentLogger);
await transport.connect();
const load = (): string => loadavg().map((l) => l.toFixed(1)).join(' ');
const variants: readonly Variant[] = ['plain', 'hs256', 'aes-gcm'];
const series = new Map<Variant, number[]>(variants.map((variant) => [variant, []]));
console.log(`security on a RabbitMQ pass-through: ${count.toLocaleString('en')} messages per variant, ${rounds} interleaved rounds, RabbitMQ ${redactUrl(url)}, prefetch ${PREFETCH}, Node ${process.version}, ${cpus().length} × ${cpus()[0]?.model ?? 'CPU'}, load ${load()}`);
try {
  for (let round = 1; round <= rounds; round += 1) {
    // the order rotates per round: no variant always runs right after RabbitMQ cleaned up the previous one
    const order = variants.map((_, index) => variants[(index + round) % variants.length] as Variant);
    for (const variant of order) {
      await fill(transport);
      series.get(variant)?.push(await run(variant));
      const { messageCount } = await admin.checkQueue(names.outQueue);
      if (messageCount !== count) throw new Error(`${variant} round ${round}: ${messageCount} messages out, expected ${count}`);
      await admin.purgeQueue(names.outQueue);
    }
    console.log(`round ${round}: ${variants.map((variant) => `${variant} ${Math.round(series.get(variant)?.at(-1) ?? 0).toLocaleString('en')}`).join(', ')} msg/s; load ${load()}`);
  }
} finally {
  await transport.close();
  await admin.deleteQueue(names.in).catch(() => undefined);
  await admin.deleteQueue(names.outQueue).catch(() => undefined);
  await admin.deleteExchange(names.out).catch(() => undefined);
  await model.close();
}

const of = (variant: Variant): number[] => series.get(variant) ?? [];
for (const variant of variants) {
  const rate = median(of(variant));
  console.log(`${NAMES[variant].padEnd(62)} ${Math.round(rate).toLocaleString('en').padStart(8)} msg/s (median)  ${(1e6 / rate).toFixed(1).padStart(6)} µs/msg`);
}
for (const variant of ['hs256', 'aes-gcm'] as const) {
  const ratios = of(variant).map((rate, round) => rate / (of('plain')[round] ?? Number.NaN));
  console.log(`${variant === 'hs256' ? 'HS256 sign + verify' : 'AES-GCM encrypt + decrypt'} / plain RabbitMQ route, per round: ${ratios.map((r) => r.toFixed(2)).join(' ')} → median ${median(ratios).toFixed(2)} (goal ≥ ${GOAL.toFixed(2)}): ${median(ratios) >= GOAL ? 'met' : 'NOT met'}`);
}
