// Issue #20: what envelope encryption costs. A plain memory route (memory:in → memory:out) against the
// same route with `.encrypt()` then `.decrypt()` — whole body, and one field — in interleaved rounds of
// one run; the median of the per-round ratios against the plain route. Goal ≥ 0.7× for AES-GCM.
// BENCH_ENCRYPTION_MESSAGES (default 50,000), BENCH_ROUNDS (default 5).
import { randomBytes } from 'node:crypto';
import { cpus } from 'node:os';
import { createIntegration, createMessage, from, silentLogger, type Message, type RouteBuilder } from '../facade/index.ts';
import { Keyring } from '../facade/security/index.ts';
import { parseEndpoint } from '../src/spi.ts';
import { readings, type Reading } from './core-route.ts';
import { median } from './stats.ts';

const count = Number(process.env.BENCH_ENCRYPTION_MESSAGES ?? '50000');
const rounds = Number(process.env.BENCH_ROUNDS ?? '5');
const keys = new Keyring([{ id: 'bench-kek', key: randomBytes(32) }]);

type Variant = 'plain' | 'body' | 'field';
const variants: readonly Variant[] = ['plain', 'body', 'field'];
const names: Record<Variant, string> = { plain: 'plain route (memory → memory)', body: '.encrypt().decrypt(), whole body', field: ".encrypt().decrypt(), one field ('/deviceId')" };

function route(variant: Variant): RouteBuilder<unknown> {
  const source = from<Reading>('memory:in', { id: 'bench' });
  if (variant === 'plain') return source as RouteBuilder<unknown>;
  const fields = variant === 'field' ? ['/deviceId'] : undefined;
  return source.encrypt({ keys, ...(fields === undefined ? {} : { fields }) }).decrypt({ keys, ...(fields === undefined ? {} : { fields }) });
}

/** Messages per second through the route, messages built before the clock starts (as bench/core-route.ts). */
async function run(variant: Variant, bodies: readonly Reading[]): Promise<number> {
  const app = createIntegration({ routes: [route(variant).to('memory:out')], logger: silentLogger });
  await app.start();
  const memory = app.transports.forScheme('memory');
  const ready: Message<Reading>[] = bodies.map((body) => createMessage(body));
  let out = 0;
  let corrupted = 0;
  const started = process.hrtime.bigint();
  const done = new Promise<void>((resolve) => {
    memory.consume(parseEndpoint('memory:out')).subscribe((delivery) => {
      const body = delivery.message.body as Reading;
      if (typeof body.deviceId !== 'string' || typeof body.seq !== 'number') corrupted += 1;
      out += 1;
      delivery.ack();
      if (out === bodies.length) resolve();
    });
  });
  const inbound = parseEndpoint('memory:in');
  for (let index = 0; index < ready.length; index += 250) await memory.publish(inbound, ready.slice(index, index + 250));
  await done;
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  await app.stop();
  if (corrupted > 0) throw new Error(`${variant}: ${corrupted} messages came out corrupted`);
  return bodies.length / seconds;
}

const bodies = readings(count);
console.log(`envelope encryption (issue 20): ${count.toLocaleString('en')} messages, ${rounds} interleaved rounds, Node ${process.version}, ${cpus().length} × ${cpus()[0]?.model ?? 'unknown CPU'}`);
console.log('A256GCMKW + A256GCM (node:crypto, synchronous), a fresh data key per message and field\n');
await run('plain', bodies.slice(0, 5_000)); // warm-up
const rates = new Map<Variant, number[]>(variants.map((variant) => [variant, []]));
for (let round = 0; round < rounds; round += 1) {
  for (const variant of variants) rates.get(variant)?.push(await run(variant, bodies));
}
const series = (variant: Variant): number[] => rates.get(variant) ?? [];
for (const variant of variants) {
  const rate = median(series(variant));
  console.log(`${names[variant].padEnd(48)} ${Math.round(rate).toLocaleString('en').padStart(10)} msg/s (median)  ${(1e6 / rate).toFixed(2).padStart(7)} µs/msg`);
}
for (const variant of ['body', 'field'] as const) {
  const ratios = series(variant).map((rate, round) => rate / (series('plain')[round] ?? Number.NaN));
  const ratio = median(ratios);
  const extra = 1e6 / median(series(variant)) - 1e6 / median(series('plain'));
  console.log(
    `${variant === 'body' ? 'whole body' : 'one field '} / plain, per round: ${ratios.map((r) => r.toFixed(2)).join(' ')} → median ${ratio.toFixed(2)}; encrypt+decrypt ≈ ${extra.toFixed(1)} µs/msg — goal ≥ 0.7× for AES-GCM: ${ratio >= 0.7 ? 'met' : 'NOT met'}`,
  );
}
