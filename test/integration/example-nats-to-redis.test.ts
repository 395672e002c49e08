// examples/nats-to-redis run as its README says (`npm run example:nats-to-redis` = the CLI on the
// route file, in a child process) against the machine's NATS (JetStream) and Redis, each run under a
// FLOW_PREFIX of its own: valid scans arrive in the Redis stream translated, invalid ones in the
// invalid-scans stream with the reason.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { flowNames, type FlowNames, type TrackingEvent } from '../../examples/nats-to-redis/tracking.ts';
import { deleteStreams, NATS_URL, requireNats } from './nats-support.ts';
import { until } from '../support/wait.ts';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const root = fileURLToPath(new URL('../..', import.meta.url));
const redis = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1 });
const used: FlowNames[] = [];

/** One entry of a Redis stream as the example writes it: id, headers (JSON) and body (JSON, or text). */
interface Entry {
  readonly id: string;
  readonly headers: Record<string, unknown>;
  readonly body: unknown;
}

async function entries(key: string): Promise<Entry[]> {
  const raw = await redis.xrange(key, '-', '+');
  return raw.map(([, fields]) => {
    const field = (name: string): string | undefined => {
      const at = fields.indexOf(name);
      return at >= 0 && at % 2 === 0 ? fields[at + 1] : undefined;
    };
    const body = field('body') ?? '';
    let parsed: unknown = body;
    try {
      parsed = JSON.parse(body);
    } catch {
      // a text body stays text
    }
    return { id: field('id') ?? '', headers: JSON.parse(field('headers') ?? '{}') as Record<string, unknown>, body: parsed };
  });
}

/** The example as `npm run example:nats-to-redis` starts it (the script's command), with `env` added; stopped with Ctrl-C (SIGINT). */
function runExample(env: Record<string, string>): { output: () => string; stop: () => Promise<number | null> } {
  const inherited = Object.fromEntries(Object.entries(process.env).filter(([name]) => !['FLOW_PREFIX', 'SAMPLES'].includes(name)));
  const child = spawn(process.execPath, ['--conditions=interchange-source', './bin/interchange.js', 'run', 'examples/nats-to-redis/route.ts', '--quiet'], {
    cwd: root,
    env: { ...inherited, NATS_URL, REDIS_URL, LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return {
    output: () => output,
    stop: async () => {
      if (child.exitCode === null) child.kill('SIGINT');
      const code = await Promise.race([exited, new Promise<'hung'>((resolve) => setTimeout(() => resolve('hung'), 30_000))]);
      if (code === 'hung') {
        child.kill('SIGKILL');
        throw new Error(`the example did not stop within 30 s of SIGINT:\n${output}`);
      }
      return code;
    },
  };
}

function uniqueNames(label: string): FlowNames {
  const names = flowNames(`nr_${label}_${randomBytes(4).toString('hex')}`);
  used.push(names);
  return names;
}

beforeAll(async () => {
  await requireNats();
  await redis.connect().catch((error: unknown) => {
    throw new Error(`Redis is not reachable at ${REDIS_URL} (start it: scripts/services.sh): ${(error as Error).message}`);
  });
});

afterAll(async () => {
  await deleteStreams(used.map((names) => names.stream));
  if (used.length > 0) await redis.del(...used.flatMap((names) => [names.eventsKey, names.invalidKey]));
  redis.disconnect();
});

it('a bare run publishes its sample scans: the 3 valid ones arrive translated in the Redis stream, the 2 invalid ones are dead-lettered with the reason', { timeout: 90_000 }, async () => {
  const names = uniqueNames('bare');
  const example = runExample({ FLOW_PREFIX: names.stream.replace(/_PARCELS$/, '') });
  try {
    await until(async () => (await redis.xlen(names.eventsKey)) >= 3 && (await redis.xlen(names.invalidKey)) >= 2, () => example.output(), 45_000);
  } finally {
    const code = await example.stop();
    expect(code, example.output()).toBe(0);
  }
  expect(example.output()).toContain('published 3 valid and 2 invalid sample scans');
  expect(example.output()).toMatch(/parcel-scans\s+in 5\s+out 3\s.*dead-lettered 2/);

  const events = await entries(names.eventsKey);
  expect(events).toHaveLength(3);
  const bodies = events.map((entry) => entry.body as TrackingEvent);
  const parcelId = bodies[0]?.parcelId ?? '';
  expect(parcelId).toMatch(/^PX-[0-9A-Z]+$/);
  // in stream order (one durable consumer, one publish call): received and sorted at LYS2, delivered at PAR11
  expect(bodies).toEqual([
    { parcelId, status: 'IN_TRANSIT', step: 'received', facility: 'LYS2', at: Date.UTC(2026, 0, 5, 8, 0), weightKg: 2.35 },
    { parcelId, status: 'IN_TRANSIT', step: 'sorted', facility: 'LYS2', at: Date.UTC(2026, 0, 5, 8, 45), weightKg: 2.35 },
    { parcelId, status: 'DELIVERED', step: 'delivered', facility: 'PAR11', at: Date.UTC(2026, 0, 5, 8, 600), weightKg: 2.35 },
  ]);
  for (const event of events) expect(event.headers).toMatchObject({ correlationId: parcelId, natsSubject: names.subject });

  const invalid = await entries(names.invalidKey);
  expect(invalid).toHaveLength(2);
  const byCode = new Map(invalid.map((entry) => [entry.headers['x-interchange-error-code'], entry]));
  const schemaInvalid = byCode.get('SCHEMA_INVALID');
  expect(schemaInvalid?.body).toEqual({ parcelId, facility: 'PAR11', scan: 'lost', scannedAt: '2026-01-05T18:30:00Z', weightGrams: -5 });
  expect(schemaInvalid?.headers).toMatchObject({ 'x-interchange-route': 'parcel-scans', 'x-interchange-step': 'contract', 'x-interchange-reason': 'invalid parcel scan' });
  expect(String(schemaInvalid?.headers['x-interchange-error'])).toContain('parcel.scanned@1');
  expect(String(schemaInvalid?.headers['x-interchange-validation-errors'])).toContain('/scan');
  const unparseable = byCode.get('PAYLOAD_UNPARSEABLE');
  expect(unparseable?.body).toBe(`${parcelId} scanned at PAR11`);
  expect(String(unparseable?.headers['x-interchange-error'])).toContain('not JSON');
});

it('SAMPLES=0: scans from a plain NATS client go through; a leap-second scan the contract admits but no Date holds is dead-lettered SCAN_TIME_UNUSABLE', { timeout: 90_000 }, async () => {
  const names = uniqueNames('plain');
  const example = runExample({ FLOW_PREFIX: names.stream.replace(/_PARCELS$/, ''), SAMPLES: '0' });
  const nc = await connect({ servers: NATS_URL, timeout: 3_000 });
  try {
    await until(() => example.output().includes('SAMPLES=0: waiting for scans'), () => example.output(), 45_000);
    const jsm = await jetstreamManager(nc);
    // the route's consumer creates the stream when it subscribes; a scanner publishes once it exists
    await until(async () => (await jsm.streams.info(names.stream).then(() => true, () => false)), () => `stream ${names.stream} never created:\n${example.output()}`, 30_000);
    const js = jsm.jetstream();
    const scan = (scannedAt: string) => JSON.stringify({ parcelId: 'PLAIN-0001', facility: 'BER7', scan: 'out-for-delivery', scannedAt, weightGrams: 800 });
    await js.publish(names.subject, scan('2026-03-01T07:15:00+01:00'));
    await js.publish(names.subject, scan('2016-12-31T23:59:60Z'));
    await until(async () => (await redis.xlen(names.eventsKey)) >= 1 && (await redis.xlen(names.invalidKey)) >= 1, () => example.output(), 45_000);
  } finally {
    await nc.close();
    const code = await example.stop();
    expect(code, example.output()).toBe(0);
  }
  expect(example.output()).not.toContain('sample scans');
  const events = await entries(names.eventsKey);
  expect(events.map((entry) => entry.body)).toEqual([{ parcelId: 'PLAIN-0001', status: 'OUT_FOR_DELIVERY', step: 'out-for-delivery', facility: 'BER7', at: Date.UTC(2026, 2, 1, 6, 15), weightKg: 0.8 }]);
  // a foreign publisher's message gets the adapter's id (stream and sequence), never one it chose
  expect(events[0]?.id).not.toBe('');
  const invalid = await entries(names.invalidKey);
  expect(invalid).toHaveLength(1);
  expect(invalid[0]?.headers).toMatchObject({ 'x-interchange-error-code': 'SCAN_TIME_UNUSABLE', 'x-interchange-step': 'to-tracking-event' });
  expect(String(invalid[0]?.headers['x-interchange-error'])).toContain('2016-12-31T23:59:60Z');
});
