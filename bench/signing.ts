// Signing and verification (issue 20): what `.sign()` then `.verify()` cost per message, against the same
// route without them, in the same run: memory → memory, the core route's telemetry bodies, one header
// (`deviceId`) signed, at-least-once (every message settled, published to a bounded channel, acked).
//  - plain:          from('memory:in').to('memory:out')
//  - HS256:          from('memory:in').sign(HS256).verify(replay memory on, the default).to('memory:out') — goal ≥ 0.7×
//  - HS256, no replay memory, and EdDSA (Ed25519 through jose): for information.
// Interleaved rounds; the median of the per-round ratios.
// `npx tsx --conditions=interchange-source bench/signing.ts`; BENCH_SIGNING_MESSAGES (default 200,000;
// EdDSA a tenth), BENCH_SIGNING_ROUNDS (default 5).
import { cpus, loadavg } from 'node:os';
import { createIntegration, createMessage, from, silentLogger, type Message } from '../facade/index.ts';
import { generateSignatureKey, Keyring, type SignatureAlgorithm, type SignatureKey } from '../facade/security/index.ts';
import { parseEndpoint } from '../src/spi.ts';
import { readings, type Reading } from './core-route.ts';
import { median } from './stats.ts';

const GOAL = 0.7;
const count = Number(process.env.BENCH_SIGNING_MESSAGES ?? '200000');
const rounds = Number(process.env.BENCH_SIGNING_ROUNDS ?? '5');

type Variant = 'plain' | 'hs256' | 'hs256-no-replay' | 'eddsa';
const NAMES: Record<Variant, string> = {
  plain: 'plain route (memory → memory)',
  hs256: '.sign() → .verify(), HS256, replay memory on',
  'hs256-no-replay': '.sign() → .verify(), HS256, replay memory off',
  eddsa: '.sign() → .verify(), EdDSA (jose), replay on',
};

const keyrings = new Map<SignatureAlgorithm, Keyring<SignatureKey>>((['HS256', 'EdDSA'] as const).map((alg) => [alg, new Keyring([{ id: `bench-${alg}`, key: generateSignatureKey(alg) }])]));

async function run(variant: Variant, bodies: readonly Reading[]): Promise<number> {
  const source = from<Reading>('memory:in', { id: 'bench-signing' });
  const alg: SignatureAlgorithm = variant === 'eddsa' ? 'EdDSA' : 'HS256';
  const keys = keyrings.get(alg) as Keyring<SignatureKey>;
  const route = variant === 'plain' ? source.to('memory:out') : source.sign({ keys, headers: ['deviceId'] }).verify<Reading>({ keys, headers: ['deviceId'], replay: variant === 'hs256-no-replay' ? false : {} }).to('memory:out');
  const app = createIntegration({ routes: [route], logger: silentLogger });
  await app.start();
  const memory = app.transports.forScheme('memory');
  const messages: Message<Reading>[] = bodies.map((body) => createMessage(body, { headers: { deviceId: body.deviceId } }));
  let out = 0;
  const started = process.hrtime.bigint();
  const done = new Promise<void>((resolve) => {
    memory.consume(parseEndpoint('memory:out')).subscribe((delivery) => {
      out += 1;
      delivery.ack();
      if (out === messages.length) resolve();
    });
  });
  const inbound = parseEndpoint('memory:in');
  for (let index = 0; index < messages.length; index += 250) await memory.publish(inbound, messages.slice(index, index + 250));
  await done;
  const perSecond = messages.length / (Number(process.hrtime.bigint() - started) / 1e9);
  await app.stop();
  return perSecond;
}

const load = (): string => loadavg().map((l) => l.toFixed(1)).join(' ');
const fixed = (values: readonly number[]): string => values.map((v) => v.toFixed(2)).join(' ');

console.log(`signing: ${count.toLocaleString('en')} messages (EdDSA ${Math.round(count / 10).toLocaleString('en')}), ${rounds} interleaved rounds, Node ${process.version}, ${cpus().length} × ${cpus()[0]?.model ?? 'CPU'}, load ${load()}`);
const bodies = readings(count);
const fewer = bodies.slice(0, Math.round(count / 10));
const variants: readonly Variant[] = ['plain', 'hs256', 'hs256-no-replay', 'eddsa'];
const series = new Map<Variant, number[]>(variants.map((variant) => [variant, []]));
const plainFewer: number[] = [];
await run('plain', fewer); // warm-up
await run('hs256', fewer);
for (let round = 1; round <= rounds; round += 1) {
  for (const variant of variants) series.get(variant)?.push(await run(variant, variant === 'eddsa' ? fewer : bodies));
  plainFewer.push(await run('plain', fewer));
  console.log(`round ${round}: ${variants.map((variant) => `${variant} ${Math.round(series.get(variant)?.at(-1) ?? 0).toLocaleString('en')}`).join(', ')} msg/s; load ${load()}`);
}
const of = (variant: Variant): number[] => series.get(variant) ?? [];
for (const variant of variants) {
  const rate = median(of(variant));
  console.log(`${NAMES[variant].padEnd(52)} ${Math.round(rate).toLocaleString('en').padStart(10)} msg/s (median)  ${(1e6 / rate).toFixed(2).padStart(7)} µs/msg`);
}
const ratios = (variant: Variant, baseline: readonly number[]): number[] => of(variant).map((rate, round) => rate / (baseline[round] ?? Number.NaN));
const hs = ratios('hs256', of('plain'));
const signCost = 1e6 / median(of('hs256')) - 1e6 / median(of('plain'));
console.log(`\nHS256 sign + verify / plain route, per round: ${fixed(hs)} → median ${median(hs).toFixed(2)} (goal ≥ ${GOAL.toFixed(2)}): ${median(hs) >= GOAL ? 'met' : 'NOT met'}; sign + verify + replay memory cost ${signCost.toFixed(2)} µs/msg`);
console.log(`HS256 without replay memory / plain route, per round: ${fixed(ratios('hs256-no-replay', of('plain')))} → median ${median(ratios('hs256-no-replay', of('plain'))).toFixed(2)} (information)`);
console.log(`EdDSA / plain route (${fewer.length.toLocaleString('en')} messages each), per round: ${fixed(ratios('eddsa', plainFewer))} → median ${median(ratios('eddsa', plainFewer)).toFixed(2)} (information)`);
