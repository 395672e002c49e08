// `npm run bench`: every variant runs in a child process of its own (clean heap, its own peak RSS).
// Sections: core route, schema validation, AMQP, MQTT, the flagship bridge, the durable buffer, the
// flagship's scale-out, the outbox relay, observability (metrics + tracing on vs off) — each against its baseline in the same run.
// The core comparison runs in interleaved rounds — each round runs the baseline and the Interchange
// variants back to back — and reports the median of the per-round ratios: on a shared 2-core machine
// the load drifts between runs, and a ratio taken within one round compares like with like.
// Last: the bare bridge against the shared harness's raw early-ack bridge (bench/peers-bridge.ts, issue 17).
import { execFileSync } from 'node:child_process';
import { cpus } from 'node:os';
import { validationCost } from './schema-validation.ts';
import { median } from './stats.ts';

interface Result {
  name: string;
  messages: number;
  perSecond: number;
  out: number;
  peakRssMb: number;
}

const count = process.env.BENCH_MESSAGES ?? '1000000';
const rounds = Number(process.env.BENCH_ROUNDS ?? '5');

function run(variant: string): Result {
  const output = execFileSync(process.execPath, ['--conditions=interchange-source', '--import', 'tsx', 'bench/run-one.ts', variant, count, '1'], { encoding: 'utf8' });
  return JSON.parse(output.trim().split('\n').at(-1) ?? '{}') as Result;
}

const fixed = (values: readonly number[]): string => values.map((v) => v.toFixed(2)).join(' ');

const cpu = cpus()[0]?.model ?? 'unknown CPU';
console.log(`core route benchmark: ${Number(count).toLocaleString('en')} messages, ${rounds} interleaved rounds, Node ${process.version}, ${cpus().length} × ${cpu}`);
console.log('5 steps: filter → transform → choice → transform → to\n');

const variants = ['for-loop', 'rxjs', 'interchange', 'interchange-with-creation', 'interchange-validate'] as const;
const byVariant = new Map<string, Result[]>(variants.map((variant) => [variant, []]));
for (let round = 0; round < rounds; round += 1) {
  for (const variant of variants) byVariant.get(variant)?.push(run(variant));
}
const series = (variant: string): Result[] => byVariant.get(variant) ?? [];
const ratios = (numerator: string, denominator: string): number[] => series(numerator).map((r, round) => r.perSecond / (series(denominator)[round]?.perSecond ?? Number.NaN));

for (const variant of variants) {
  const results = series(variant);
  const first = results[0];
  if (first === undefined) continue;
  const rate = median(results.map((r) => r.perSecond));
  const rss = median(results.map((r) => r.peakRssMb));
  console.log(`${first.name.padEnd(44)} ${Math.round(rate).toLocaleString('en').padStart(10)} msg/s (median)  peak RSS ${String(Math.round(rss)).padStart(5)} MB`);
}
const core = ratios('interchange', 'rxjs');
const creation = ratios('interchange-with-creation', 'rxjs');
const validation = ratios('interchange-validate', 'interchange');
console.log(`\nInterchange route / plain RxJS, per round: ${fixed(core)} → median ${median(core).toFixed(2)} (goal ≥ 0.80, issue 17): ${median(core) >= 0.8 ? 'met' : 'NOT met'}`);
console.log(`… with message creation timed, per round: ${fixed(creation)} → median ${median(creation).toFixed(2)}`);
for (const variant of ['rxjs', 'interchange'] as const) {
  const outputs = new Set(series(variant).map((r) => r.out));
  if (outputs.size !== 1 || [...outputs][0] !== series('for-loop')[0]?.out) throw new Error(`${variant}: output counts differ from the for-loop's: ${[...outputs].join(', ')}`);
}

// Issue #3: what schema validation costs, in the same run.
console.log('\nschema validation');
const cost = validationCost();
console.log(`10-field contract: ${cost.registryNs.toFixed(0)} ns/message through the registry (${cost.ajvNs.toFixed(0)} ns in ajv's function)`);
console.log(`route with .validate / route without, per round: ${fixed(validation)} → median ${median(validation).toFixed(2)} (goal ≥ 0.90, issue 17): ${median(validation) >= 0.9 ? 'met' : 'NOT met'}`);

// AMQP adapter (issue #4): raw amqplib baselines vs Interchange against the local RabbitMQ, in a child process of its own.
console.log('\n');
execFileSync(process.execPath, ['--conditions=interchange-source', '--import', 'tsx', 'bench/amqp.ts'], { stdio: 'inherit' });

// MQTT adapter (issue #5): raw mqtt.js QoS 0 / QoS 1 publish → subscribe vs the same through Interchange, against the local Mosquitto, in a child process of its own.
console.log('\n');
execFileSync(process.execPath, ['--conditions=interchange-source', '--import', 'tsx', 'bench/mqtt.ts'], { stdio: 'inherit' });

// Redis Streams transport (issue 19): a raw ioredis XREADGROUP → XADD → XACK pass-through vs the same route through Interchange, against the local Redis, in a child process of its own.
console.log('\n');
execFileSync(process.execPath, ['--conditions=interchange-source', '--import', 'tsx', 'bench/redis-streams.ts'], { stdio: 'inherit' });

// NATS transport (issue 19): a raw nats.js JetStream consume → js.publish → ack pass-through vs the same route through Interchange, against the local NATS server, in a child process of its own.
console.log('\n');
execFileSync(process.execPath, ['--conditions=interchange-source', '--import', 'tsx', 'bench/nats.ts'], { stdio: 'inherit' });

// AMQP 1.0 transport (issue 19): a raw rhea receive → send copy → accept-on-accepted pass-through vs the same route through Interchange, against RabbitMQ's AMQP 1.0 plugin, in a child process of its own.
console.log('\n');
execFileSync(process.execPath, ['--conditions=interchange-source', '--import', 'tsx', 'bench/amqp10.ts'], { stdio: 'inherit' });

// STOMP transport (issue 19): a raw @stomp/stompjs SUBSCRIBE → SEND (receipt) → ACK pass-through vs the same route through Interchange, against RabbitMQ's STOMP plugin, in a child process of its own.
console.log('\n');
execFileSync(process.execPath, ['--conditions=interchange-source', '--import', 'tsx', 'bench/stomp.ts'], { stdio: 'inherit' });

// ZeroMQ transport (issue 19): a raw zeromq PULL → PUSH pass-through vs the same route through Interchange, on loopback TCP (no broker), in a child process of its own.
console.log('\n');
execFileSync(process.execPath, ['--conditions=interchange-source', '--import', 'tsx', 'bench/zeromq.ts'], { stdio: 'inherit' });

// CoAP transport (issue 19): a raw node-coap server forwarding each device POST to a sink server and answering 2.04 after it vs the same route through Interchange, on loopback UDP, in a child process of its own.
console.log('\n');
execFileSync(process.execPath, ['--conditions=interchange-source', '--import', 'tsx', 'bench/coap.ts'], { stdio: 'inherit' });

// XMPP transport (issue 19): a raw @xmpp/client offline store → copy → send → XEP-0198 ack pass-through vs the same route through Interchange, against the local Prosody (scripts/prosody/setup.sh), in a child process of its own.
console.log('\n');
execFileSync(process.execPath, ['--conditions=interchange-source', '--import', 'tsx', 'bench/xmpp.ts'], { stdio: 'inherit' });

// Flagship MQTT → AMQP bridge (issue #6): naive-safe and fast-unsafe raw bridges vs the flagship route, in a child process of its own.
console.log('\n');
execFileSync(process.execPath, ['--conditions=interchange-source', '--import', 'tsx', 'bench/bridge.ts'], { stdio: 'inherit' });

// Durable buffer (issue 15): the buffer transport's write (fsync'd) and forward rates, and a route through it vs through memory, in child processes of their own.
console.log('\n');
execFileSync(process.execPath, ['--conditions=interchange-source', '--import', 'tsx', 'bench/buffer.ts'], { stdio: 'inherit' });

// Scale-out (issue 15): the flagship CLI with its buffer and summaries in PostgreSQL, 1 process vs 3 on one shared subscription.
console.log('\n');
execFileSync(process.execPath, ['--conditions=interchange-source', '--import', 'tsx', 'bench/scale-out.ts'], { stdio: 'inherit' });

// Transactional outbox (issue #7): the OutboxRelay vs a raw SKIP LOCKED + amqplib + DELETE loop, in a child process of its own.
console.log('\n');
execFileSync(process.execPath, ['--conditions=interchange-source', '--import', 'tsx', 'bench/outbox.ts'], { stdio: 'inherit' });

// PostgreSQL as a queue (issue #19): a route pgqueue → pgqueue vs a raw pg SKIP LOCKED + INSERT + DELETE loop, in a child process of its own.
console.log('\n');
execFileSync(process.execPath, ['--conditions=interchange-source', '--import', 'tsx', 'bench/pg-queue.ts'], { stdio: 'inherit' });

// Observability (issue 16): the core route and the flagship bridge with metrics + tracing observers (no SDK) vs without, in a child process of its own.
console.log('\n');
execFileSync(process.execPath, ['--conditions=interchange-source', '--import', 'tsx', 'bench/observability.ts'], { stdio: 'inherit' });

// Peers (issue 17): the shared bench-peers harness's raw early-ack bridge vs the bare Interchange bridge (compiled JS, and the .ts route through tsx for information) under the harness's own load, in a child process of its own.
console.log('\n');
execFileSync(process.execPath, ['--conditions=interchange-source', '--import', 'tsx', 'bench/peers-bridge.ts'], { stdio: 'inherit' });

// SEDA stage (issue 18): a stage's latency controller vs a fixed high concurrency in front of a contended resource, offered more than it can do, in a child process of its own.
console.log('\n');
execFileSync(process.execPath, ['--conditions=interchange-source', '--import', 'tsx', 'bench/seda.ts'], { stdio: 'inherit' });

// Envelope encryption (issue 20): a plain memory route vs the same with .encrypt().decrypt() (whole body, one field), in a child process of its own.
console.log('\n');
execFileSync(process.execPath, ['--conditions=interchange-source', '--import', 'tsx', 'bench/encryption.ts'], { stdio: 'inherit' });

// Signing and verification (issue 20): a memory route with .sign() → .verify() (HS256; EdDSA for information) vs the same route without, in a child process of its own.
console.log('\n');
execFileSync(process.execPath, ['--conditions=interchange-source', '--import', 'tsx', 'bench/signing.ts'], { stdio: 'inherit' });

// Message security on a broker route (issue 20): a RabbitMQ pass-through plain vs with .sign()/.verify() (HS256) and .encrypt()/.decrypt() (AES-GCM), same run, in a child process of its own.
console.log('\n');
execFileSync(process.execPath, ['--conditions=interchange-source', '--import', 'tsx', 'bench/security-amqp.ts'], { stdio: 'inherit' });
