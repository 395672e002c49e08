// Durable buffer benchmark (issue 15): the `buffer:` transport's own write and forward rates, and what
// putting it in the middle of a route costs against an in-memory channel. Every measurement runs in a
// child process of its own; the rounds interleave them and the report gives medians.
//
//  - write:   N messages (~120-byte JSON bodies) published in batches of 100, at most 8 publishes in
//             flight (each resolves once fsync'd: concurrent publishes share one write + fsync) →
//             msgs/s, MB/s of records on disk, fsyncs/s (every FileHandle sync/datasync counted).
//  - forward: the same N, in a new process on the same directory, consumed with prefetch 1,000 and
//             acked one by one (the cursor persisted as it goes) → msgs/s; checked in order.
//  - route:   `from('memory:in').to('buffer:b')` + `from('buffer:b').to('memory:out')` against the same
//             two routes with `memory:mid` in the middle, framework defaults (prefetch 100), N messages
//             published into `memory:in` 250 at a time until the last is read from `memory:out` → ratio.
//
// `npx tsx --conditions=interchange-source bench/buffer.ts`; BENCH_BUFFER_MESSAGES (default 100,000),
// BENCH_BUFFER_ROUNDS (default 3), BENCH_BUFFER_DIR (where the temporary buffer directories go; default
// the OS temporary directory: its filesystem is reported, and a probe times a bare write + fdatasync).
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { firstValueFrom, filter, take, toArray } from 'rxjs';
import { createIntegration, createMessage, from, silentLogger, type Message } from '../facade/index.ts';
import { parseEndpoint } from '../src/spi.ts';
import { BufferTransport, bufferModule } from '../adapters/buffer/index.ts';
import { median } from './stats.ts';

const MESSAGES = Number(process.env.BENCH_BUFFER_MESSAGES ?? '100000');
const ROUNDS = Number(process.env.BENCH_BUFFER_ROUNDS ?? '3');
const PARENT = resolve(process.env.BENCH_BUFFER_DIR ?? tmpdir());
const BATCH = 100;
const CONCURRENT = 8;
const FORWARD_PREFETCH = 1_000;
const ROUTE_BATCH = 250;
const ROOT = fileURLToPath(new URL('..', import.meta.url));

interface Reading {
  readonly deviceId: string;
  readonly ts: string;
  readonly seq: number;
  readonly temperature: number;
  readonly humidity: number;
  readonly battery: number;
}

/** ~120 bytes of JSON each. */
const reading = (seq: number): Reading => ({ deviceId: `dev-${String(seq % 50).padStart(4, '0')}`, ts: new Date(Date.UTC(2026, 0, 1) + seq).toISOString(), seq, temperature: (seq % 700) / 10, humidity: 40 + (seq % 30), battery: 95 });
const seconds = (started: number): number => (performance.now() - started) / 1000;

/** What a child reports (its last stdout line, JSON). */
interface ChildResult {
  readonly perSecond: number;
  readonly megabytesPerSecond?: number;
  readonly fsyncsPerSecond?: number;
  readonly messagesPerFsync?: number;
  readonly bytesPerEntry?: number;
}

// ─── children ─────────────────────────────────────────────────────────────────────────────────────

/** Counts every fsync/fdatasync made through a `FileHandle` (the buffer's only way to sync) in this process. */
async function countSyncs(directory: string): Promise<{ count(): number }> {
  mkdirSync(directory, { recursive: true });
  const probe = await open(join(directory, 'probe'), 'w');
  const prototype = Object.getPrototypeOf(probe) as { sync(): Promise<void>; datasync(): Promise<void> };
  await probe.close();
  rmSync(join(directory, 'probe'));
  let syncs = 0;
  for (const method of ['sync', 'datasync'] as const) {
    const original = prototype[method];
    prototype[method] = function (this: unknown): Promise<void> {
      syncs += 1;
      return original.call(this);
    };
  }
  return { count: () => syncs };
}

async function write(directory: string): Promise<ChildResult> {
  const syncs = await countSyncs(directory);
  const transport = new BufferTransport({ directory, logger: silentLogger });
  await transport.connect();
  const endpoint = parseEndpoint('buffer:b');
  const messages = Array.from({ length: MESSAGES }, (_, seq) => createMessage(reading(seq)));
  await transport.publish(endpoint, messages.slice(0, 1)); // opens the buffer before the clock
  const before = syncs.count();
  const started = performance.now();
  let next = 1;
  const lane = async (): Promise<void> => {
    while (next < messages.length) {
      const batch = messages.slice(next, next + BATCH);
      next += BATCH;
      await transport.publish(endpoint, batch);
    }
  };
  await Promise.all(Array.from({ length: CONCURRENT }, lane));
  const elapsed = seconds(started);
  const fsyncs = syncs.count() - before;
  const stats = transport.stats().find((s) => s.name === 'b');
  await transport.close();
  if (stats === undefined || stats.entries !== messages.length) throw new Error(`bench: the buffer holds ${String(stats?.entries)} entries, ${messages.length} were published`);
  const timed = messages.length - 1;
  return { perSecond: timed / elapsed, megabytesPerSecond: (stats.bytes * (timed / messages.length)) / 1e6 / elapsed, fsyncsPerSecond: fsyncs / elapsed, messagesPerFsync: timed / fsyncs, bytesPerEntry: stats.bytes / messages.length };
}

async function forward(directory: string): Promise<ChildResult> {
  const syncs = await countSyncs(directory);
  const transport = new BufferTransport({ directory, logger: silentLogger });
  await transport.connect();
  const before = syncs.count();
  const started = performance.now();
  let expected = 0;
  let disordered = 0;
  await firstValueFrom(
    transport.consume(parseEndpoint('buffer:b'), { prefetch: FORWARD_PREFETCH }).pipe(
      filter((delivery) => {
        if ((delivery.message as Message<Reading>).body.seq !== expected) disordered += 1;
        expected += 1;
        delivery.ack();
        return expected === MESSAGES;
      }),
      take(1),
    ),
  );
  const elapsed = seconds(started);
  const fsyncs = syncs.count() - before;
  await transport.close();
  if (disordered > 0) throw new Error(`bench: ${disordered} entries delivered out of order`);
  return { perSecond: MESSAGES / elapsed, fsyncsPerSecond: fsyncs / elapsed };
}

/** The two-route pass-through with `middle` (`buffer:b` or `memory:mid`) between them. */
async function route(middle: 'buffer' | 'memory', directory: string): Promise<ChildResult> {
  const between = middle === 'buffer' ? 'buffer:b' : 'memory:mid';
  const syncs = middle === 'buffer' ? await countSyncs(directory) : undefined;
  const app = createIntegration({
    logger: silentLogger,
    modules: middle === 'buffer' ? [bufferModule({ directory, logger: silentLogger })] : [],
    routes: [from<Reading>('memory:in', { id: 'in' }).to(between), from<Reading>(between, { id: 'out' }).to('memory:out')],
  });
  await app.start();
  const memory = app.transports.forScheme('memory');
  const messages = Array.from({ length: MESSAGES }, (_, seq) => createMessage(reading(seq)));
  const before = syncs?.count() ?? 0;
  const started = performance.now();
  const out = firstValueFrom(
    memory.consume(parseEndpoint('memory:out')).pipe(
      filter((delivery) => {
        delivery.ack();
        return true;
      }),
      take(MESSAGES),
      toArray(),
    ),
  );
  const inbound = parseEndpoint('memory:in');
  for (let index = 0; index < messages.length; index += ROUTE_BATCH) await memory.publish(inbound, messages.slice(index, index + ROUTE_BATCH));
  const arrived = await out;
  const elapsed = seconds(started);
  const fsyncs = (syncs?.count() ?? 0) - before;
  await app.stop();
  if (arrived.length !== MESSAGES) throw new Error(`bench: ${arrived.length} of ${MESSAGES} messages came out`);
  return syncs === undefined ? { perSecond: MESSAGES / elapsed } : { perSecond: MESSAGES / elapsed, fsyncsPerSecond: fsyncs / elapsed, messagesPerFsync: MESSAGES / fsyncs };
}

async function child(kind: string, directory: string): Promise<void> {
  const result = kind === 'write' ? await write(directory) : kind === 'forward' ? await forward(directory) : await route(kind === 'route-buffer' ? 'buffer' : 'memory', directory);
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

// ─── the orchestrator ─────────────────────────────────────────────────────────────────────────────

function runChild(kind: string, directory: string): ChildResult {
  const output = execFileSync(process.execPath, ['--conditions=interchange-source', '--import', 'tsx', fileURLToPath(import.meta.url), '--child', kind, directory], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  return JSON.parse(output.trim().split('\n').at(-1) ?? '{}') as ChildResult;
}

/** The filesystem holding `path` (from /proc/mounts: the longest mount point containing it) and `df` of it. */
function describeDisk(path: string): { line: string; volatile: boolean } {
  let mount = { point: '', device: '?', type: '?', options: '?' };
  try {
    for (const entry of readFileSync('/proc/mounts', 'utf8').split('\n')) {
      const [device = '', point = '', type = '', options = ''] = entry.split(' ');
      if ((path === point || path.startsWith(point.endsWith('/') ? point : `${point}/`)) && point.length >= mount.point.length) mount = { point, device, type, options };
    }
  } catch {
    // not Linux: df alone
  }
  let df = '';
  try {
    df = execFileSync('df', ['-h', path], { encoding: 'utf8' }).trim().split('\n').at(-1)?.replace(/\s+/g, ' ') ?? '';
  } catch {
    df = 'df unavailable';
  }
  const volatile = ['tmpfs', 'ramfs'].includes(mount.type) || mount.options.split(',').includes('nobarrier') || (process.env.LD_PRELOAD ?? '').includes('eatmydata');
  return { line: `${path} on ${mount.device} (${mount.type}, mounted at ${mount.point || '?'}, ${mount.options}); df: ${df}`, volatile };
}

/** Times a bare 4 KiB write + fdatasync on the disk: a real one takes tens of µs to ms, a no-op one a few µs. */
async function fsyncProbe(directory: string, count = 200): Promise<number> {
  const handle = await open(join(directory, 'fsync-probe'), 'w');
  const page = Buffer.alloc(4096, 1);
  const started = performance.now();
  for (let n = 0; n < count; n += 1) {
    await handle.write(page, 0, page.length, n * page.length);
    await handle.datasync();
  }
  const perSync = ((performance.now() - started) * 1000) / count;
  await handle.close();
  return perSync;
}

const rate = (value: number): string => Math.round(value).toLocaleString('en').padStart(9);

async function orchestrate(): Promise<void> {
  console.log(
    `durable buffer benchmark: ${MESSAGES.toLocaleString('en')} messages (~120-byte JSON), ${ROUNDS} interleaved rounds, ` +
      `Node ${process.version}, ${cpus().length} × ${cpus()[0]?.model ?? 'CPU'}, load ${loadavg().map((l) => l.toFixed(1)).join(' ')}`,
  );
  const disk = describeDisk(PARENT);
  const probeDir = mkdtempSync(join(PARENT, 'bench-buffer-probe-'));
  const perSync = await fsyncProbe(probeDir).finally(() => rmSync(probeDir, { recursive: true, force: true }));
  console.log(`disk: ${disk.line}`);
  console.log(
    `fsync: a bare 4 KiB write + fdatasync takes ${perSync.toFixed(0)} µs here (${Math.round(1e6 / perSync).toLocaleString('en')}/s one at a time)` +
      (disk.volatile || perSync < 20 ? ' — WARNING: this filesystem does not seem to make fsync durable (tmpfs, nobarrier, eatmydata or a write cache that lies): the figures below are not a disk\'s' : '; the buffer calls it for real (counted below)'),
  );

  const series = new Map<string, ChildResult[]>([['write', []], ['forward', []], ['route-memory', []], ['route-buffer', []]]);
  for (let round = 1; round <= ROUNDS; round += 1) {
    const directory = mkdtempSync(join(PARENT, 'bench-buffer-'));
    try {
      const written = runChild('write', directory);
      const forwarded = runChild('forward', directory);
      const viaMemory = runChild('route-memory', directory);
      const viaBuffer = runChild('route-buffer', join(directory, 'route'));
      for (const [kind, result] of [['write', written], ['forward', forwarded], ['route-memory', viaMemory], ['route-buffer', viaBuffer]] as const) series.get(kind)?.push(result);
      console.log(
        `round ${round}: write ${rate(written.perSecond)} msgs/s ${(written.megabytesPerSecond ?? 0).toFixed(1)} MB/s ${Math.round(written.fsyncsPerSecond ?? 0)} fsyncs/s; ` +
          `forward ${rate(forwarded.perSecond)} msgs/s; route via memory ${rate(viaMemory.perSecond)}, via buffer ${rate(viaBuffer.perSecond)} msgs/s`,
      );
    } finally {
      rmSync(directory, { recursive: true, force: true });
    }
  }

  const of = (kind: string, pick: (r: ChildResult) => number | undefined): number => median((series.get(kind) ?? []).map((r) => pick(r) ?? Number.NaN));
  console.log('\n| measurement | median |');
  console.log('|---|---:|');
  console.log(`| write: publish (batches of ${BATCH}, ${CONCURRENT} in flight), resolved once fsync'd | ${rate(of('write', (r) => r.perSecond)).trim()} msgs/s, ${of('write', (r) => r.megabytesPerSecond).toFixed(1)} MB/s |`);
  console.log(`| write: fsyncs (group commits) | ${rate(of('write', (r) => r.fsyncsPerSecond)).trim()}/s, ${of('write', (r) => r.messagesPerFsync).toFixed(0)} messages per fsync, ${of('write', (r) => r.bytesPerEntry).toFixed(0)} bytes per entry on disk |`);
  console.log(`| forward: consume (prefetch ${FORWARD_PREFETCH.toLocaleString('en')}) + ack, in order | ${rate(of('forward', (r) => r.perSecond)).trim()} msgs/s (${rate(of('forward', (r) => r.fsyncsPerSecond)).trim()} fsyncs/s: cursor) |`);
  console.log(`| route memory:in → memory:mid → memory:out | ${rate(of('route-memory', (r) => r.perSecond)).trim()} msgs/s |`);
  console.log(`| route memory:in → buffer:b → memory:out | ${rate(of('route-buffer', (r) => r.perSecond)).trim()} msgs/s (${rate(of('route-buffer', (r) => r.fsyncsPerSecond)).trim()} fsyncs/s, ${of('route-buffer', (r) => r.messagesPerFsync).toFixed(0)} messages per fsync, log and cursor: the route's prefetch bounds a group commit) |`);
  const viaBuffer = series.get('route-buffer') ?? [];
  const ratios = viaBuffer.map((r, index) => r.perSecond / (series.get('route-memory')?.[index]?.perSecond ?? Number.NaN));
  console.log(`\nroute through buffer:b / through memory:mid, per round: ${ratios.map((r) => r.toFixed(2)).join(' ')} → median ${median(ratios).toFixed(2)} (information: what durability costs a route)`);
}

const [mode, kind, directory] = process.argv.slice(2);
if (mode === '--child') await child(kind as string, directory as string);
else await orchestrate();
