import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createIntegration, deadLetter, from, schemaModule, silentLogger, type Integration } from '../../facade/index.ts';
import { TestKit, type MockEndpoint } from '../../facade/testing/index.ts';
import { startConsole, type RunningConsole } from '../../facade/console/console-server.ts';
import type { DeadLetterDetail, DeadLetterSummary } from '../../facade/console/dead-letter-view.ts';
import type { IntegrationGraph } from '../../facade/console/integration-graph.ts';
import type { Health } from '../../facade/observability/health.ts';
import { createPrometheusMetrics } from '../../facade/observability/prometheus-metrics.ts';
import { amqpModule } from '../../adapters/amqp/index.ts';
import { bufferModule } from '../../adapters/buffer/index.ts';
import { AMQP_URL, BrokerAdmin, uniqueName, until } from './amqp-support.ts';

const TOKEN = 'console-test-token-0123456789';
const SCHEMAS = fileURLToPath(new URL('../../schemas', import.meta.url));

interface Answer<T> {
  readonly status: number;
  readonly type: string | null;
  readonly json: T;
  readonly headers: Headers;
}

/** One request to a console, with the token if given; the answer's JSON (or text as a string). */
async function call<T = unknown>(console: RunningConsole, path: string, { method = 'GET', token, body }: { method?: string; token?: string; body?: unknown } = {}): Promise<Answer<T>> {
  const headers: Record<string, string> = {};
  if (token !== undefined) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const response = await fetch(new URL(path, console.url), { method, headers, ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }) });
  const type = response.headers.get('content-type');
  const text = await response.text();
  return { status: response.status, type, json: (type?.startsWith('application/json') === true ? JSON.parse(text) : text) as T, headers: response.headers };
}

/** A raw GET (no URL normalisation, any Host header): what a browser's fetch would not send. */
function rawGet(console: RunningConsole, path: string, host?: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const sent = request({ host: '127.0.0.1', port: console.port, path, method: 'GET', headers: host === undefined ? {} : { host } }, (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (body += chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body }));
    });
    sent.on('error', reject);
    sent.end();
  });
}

describe('console server (memory routes)', () => {
  let app: Integration;
  let kit: TestKit;
  let open: RunningConsole;
  let guarded: RunningConsole;
  let out: MockEndpoint<{ qty: number }>;
  let elsewhere: MockEndpoint;
  const staticDir = mkdtempSync(join(tmpdir(), 'interchange-console-'));

  beforeAll(async () => {
    writeFileSync(join(staticDir, 'index.html'), '<!doctype html><title>console</title>');
    writeFileSync(join(staticDir, 'app.js'), 'console.log("app")');
    const orders = from<{ qty: number }>('memory:orders', { id: 'orders' })
      .onError(() => deadLetter('bad order'), { deadLetterUri: 'memory:orders.dlq' })
      .process((message) => {
        if (message.body.qty <= 0) throw new Error(`qty must be positive, got ${message.body.qty}`);
      }, { id: 'check-qty' })
      .to('memory:orders.out', { id: 'accepted' });
    const telemetry = from('memory:telemetry', { id: 'telemetry' })
      .onError(() => deadLetter('invalid telemetry'), { deadLetterUri: 'memory:telemetry.dlq' })
      .validate('device.telemetry@1', { id: 'check' })
      .to('memory:telemetry.out', { id: 'valid' });
    app = createIntegration({ routes: [orders, telemetry], modules: [schemaModule({ directory: SCHEMAS })], logger: silentLogger });
    const metrics = createPrometheusMetrics(app, { defaultMetrics: false });
    open = await startConsole(app, { staticDir });
    // a second console on the same store: registered with the integration once
    guarded = await startConsole(app, { token: TOKEN, metrics, staticDir, deadLetters: open.deadLetters, replayTimeoutMs: 5_000 });
    await app.start();
    kit = new TestKit(app);
    out = kit.mock<{ qty: number }>('memory:orders.out');
    elsewhere = kit.mock('memory:elsewhere');
    await kit.sendAll('memory:orders', [{ qty: -1 }, { qty: -2 }, { qty: 0 }]);
    await kit.send('memory:telemetry', { deviceId: 'd 1', temperature: 21 });
    await until(() => open.deadLetters.size === 4, () => `${open.deadLetters.size} dead letters kept`);
  });

  afterAll(async () => {
    kit.close();
    await open.close();
    await guarded.close();
    await app.stop({ drainTimeoutMs: 100 });
    rmSync(staticDir, { recursive: true, force: true });
  });

  it('answers the probes, the graph and the scrape', async () => {
    const live = await call<Health['live']>(open, '/health/live');
    expect(live).toMatchObject({ status: 200, type: 'application/json; charset=utf-8', json: { status: 'up' } });
    expect(live.headers.get('cache-control')).toBe('no-store');
    const ready = await call<Health['ready']>(open, '/health/ready');
    expect(ready.status).toBe(200);
    expect(ready.json.status).toBe('ready');
    expect(ready.json.checks.routes).toEqual([
      { id: 'orders', status: 'started', ok: true },
      { id: 'telemetry', status: 'started', ok: true },
    ]);
    expect(ready.json.checks.transports).toContainEqual({ scheme: 'memory', state: 'not-reported', ok: true });

    const graph = await call<IntegrationGraph>(open, '/graph');
    expect(graph.status).toBe(200);
    expect(graph.json.routes.map((route) => route.id)).toEqual(['orders', 'telemetry']);
    expect(graph.json.nodes.some((node) => node.id === 'step:orders/check-qty')).toBe(true);
    expect(graph.json.edges.find((edge) => edge.id === 'dead-letter:orders')?.counters.messages).toBe(3);

    expect((await call(open, '/metrics')).status).toBe(503);
    const scrape = await call<string>(guarded, '/metrics');
    expect(scrape.status).toBe(200);
    expect(scrape.type).toMatch(/^text\/plain/);
    expect(scrape.json).toContain('interchange_');
    // probes and the scrape are open without the token; the rest needs it
    expect((await call(guarded, '/health/ready')).status).toBe(200);
    expect((await call(guarded, '/graph')).status).toBe(401);
    expect((await call(guarded, '/graph', { token: TOKEN })).status).toBe(200);
    expect((await call(guarded, '/graph', { token: `${TOKEN}x` })).status).toBe(401);
    expect((await call(open, '/nothing')).status).toBe(404);
  });

  it('lists the dead letters of a route with their failure, and shows one with its body', async () => {
    const list = await call<{ deadLetters: DeadLetterSummary[] }>(open, '/api/dead-letters?route=orders');
    expect(list.status).toBe(200);
    expect(list.json.deadLetters).toHaveLength(3);
    for (const entry of list.json.deadLetters) {
      expect(entry).toMatchObject({ route: 'orders', outcome: 'dead-lettered', step: 'check-qty', reason: 'bad order', uri: 'memory:orders.dlq', code: 'STEP_FAILED', replays: [] });
      expect(entry.declaredAt).toMatch(/console-server\.test\.ts:\d+/);
      expect(entry.error).toMatch(/^qty must be positive/);
      expect(entry.headers['x-interchange-step']).toBe('check-qty');
      expect(entry.headers['x-interchange-reason']).toBe('bad order');
    }
    // most recent first
    expect(list.json.deadLetters.map((entry) => entry.bodyPreview)).toEqual(['{"qty":0}', '{"qty":-2}', '{"qty":-1}']);
    expect((await call<{ deadLetters: unknown[] }>(open, '/api/dead-letters?limit=2')).json.deadLetters).toHaveLength(2);
    expect((await call(open, '/api/dead-letters?limit=zero')).status).toBe(400);

    const [invalid] = (await call<{ deadLetters: DeadLetterSummary[] }>(open, '/api/dead-letters?route=telemetry')).json.deadLetters;
    expect(invalid).toMatchObject({ step: 'check', code: 'SCHEMA_INVALID', reason: 'invalid telemetry' });
    expect(invalid?.headers['x-interchange-validation-errors']).toBeTypeOf('string');
    expect(invalid?.validationErrors).toEqual(expect.arrayContaining([expect.objectContaining({ keyword: 'required' })]));

    const first = list.json.deadLetters[2] as DeadLetterSummary;
    const detail = await call<DeadLetterDetail>(open, `/api/dead-letters/${first.id}`);
    expect(detail.status).toBe(200);
    expect(detail.json).toMatchObject({ id: first.id, bodyEncoding: 'json', body: JSON.stringify({ qty: -1 }, null, 2), messageId: first.messageId });
    expect((await call(open, '/api/dead-letters/no-such-id')).status).toBe(404);
  });

  it('refuses writes without the token', async () => {
    const [entry] = open.deadLetters.list({ route: 'orders' });
    const refused = await call<{ error: string }>(open, '/api/dead-letters/replay', { method: 'POST', body: { ids: [entry?.id] } });
    expect(refused.status).toBe(403);
    expect(refused.json.error).toMatch(/INTERCHANGE_CONSOLE_TOKEN/);
    expect((await call(open, '/api/routes/orders/stop', { method: 'POST' })).status).toBe(403);
    expect((await call(guarded, '/api/dead-letters/replay', { method: 'POST', body: { ids: [entry?.id] } })).status).toBe(401);
    expect((await call(guarded, '/api/dead-letters/replay', { method: 'POST', token: 'wrong-token-0123456789', body: { ids: [entry?.id] } })).status).toBe(401);
    expect(entry?.replays).toEqual([]);
  });

  it('replays a dead letter unchanged: it fails again, dead-lettered with the audit headers', async () => {
    const entry = open.deadLetters.list({ route: 'orders' }).at(-1);
    const before = Date.now();
    const replayed = await call<{ results: unknown[] }>(guarded, '/api/dead-letters/replay', { method: 'POST', token: TOKEN, body: { ids: [entry?.id] } });
    expect(replayed.status).toBe(200);
    expect(replayed.json.results).toEqual([{ id: entry?.id, outcome: 'dead-lettered' }]);
    const [again] = open.deadLetters.list({ route: 'orders', limit: 1 });
    expect(again?.id).not.toBe(entry?.id);
    expect(again?.messageId).toBe(entry?.messageId);
    expect(again?.headers['x-interchange-replays']).toBe(1);
    expect(again?.headers['x-interchange-replay-of']).toBe(entry?.id);
    expect(again?.headers['x-interchange-replayed-by']).toBe('console');
    expect(again?.headers['x-interchange-replayed-at']).toBeGreaterThanOrEqual(before);
    expect(entry?.replays).toEqual([expect.objectContaining({ outcome: 'dead-lettered', target: 'route:orders' })]);
    // a replay of the replay's dead letter counts on
    const twice = await call<{ results: { outcome: string }[] }>(guarded, '/api/dead-letters/replay', { method: 'POST', token: TOKEN, body: { ids: [again?.id] } });
    expect(twice.json.results[0]?.outcome).toBe('dead-lettered');
    expect(open.deadLetters.list({ route: 'orders', limit: 1 })[0]?.headers['x-interchange-replays']).toBe(2);
  });

  it('replays with an edited body that passes: completed, and it reaches the destination', async () => {
    const entry = open.deadLetters.list({ route: 'orders' }).find((candidate) => candidate.headers['x-interchange-replays'] === undefined);
    const invalid = await call<{ error: string }>(guarded, '/api/dead-letters/replay', { method: 'POST', token: TOKEN, body: { ids: [entry?.id], body: '{ qty: 5' } });
    expect(invalid.status).toBe(400);
    expect(invalid.json.error).toMatch(/not JSON/);
    expect((await call(guarded, '/api/dead-letters/replay', { method: 'POST', token: TOKEN, body: '{"ids": [' })).status).toBe(400);
    expect((await call(guarded, '/api/dead-letters/replay', { method: 'POST', token: TOKEN, body: { ids: 'one' } })).status).toBe(400);

    const replayed = await call<{ results: unknown[] }>(guarded, '/api/dead-letters/replay', { method: 'POST', token: TOKEN, body: { ids: [entry?.id], body: '{ "qty": 5 }' } });
    expect(replayed.json.results).toEqual([{ id: entry?.id, outcome: 'completed' }]);
    const [arrived] = await out.expect(1);
    expect(arrived?.body).toEqual({ qty: 5 });
    expect(arrived?.id).toBe(entry?.messageId);
    expect(arrived?.headers['x-interchange-replay-of']).toBe(entry?.id);
    expect(arrived?.headers['x-interchange-error']).toBeUndefined();
    expect(arrived?.headers['x-interchange-step']).toBeUndefined();
  });

  it('replays a selection to a chosen endpoint', async () => {
    const entries = open.deadLetters.list({ route: 'orders' }).slice(0, 2);
    const sent = await call<{ results: unknown[] }>(guarded, '/api/dead-letters/replay', { method: 'POST', token: TOKEN, body: { ids: [...entries.map((entry) => entry.id), 'gone'], endpoint: 'memory:elsewhere' } });
    expect(sent.json.results).toEqual([
      { id: entries[0]?.id, outcome: 'sent' },
      { id: entries[1]?.id, outcome: 'sent' },
      { id: 'gone', outcome: 'failed', error: expect.stringMatching(/no dead letter/) },
    ]);
    const arrived = await elsewhere.expect(2);
    expect(arrived.map((message) => message.headers['x-interchange-replayed-by'])).toEqual(['console', 'console']);
    expect(entries[0]?.replays.at(-1)).toMatchObject({ outcome: 'sent', target: 'memory:elsewhere' });
  });

  it('stops and starts a route (control bus); readiness follows', async () => {
    const stopped = await call(guarded, '/api/routes/orders/stop', { method: 'POST', token: TOKEN });
    expect(stopped).toMatchObject({ status: 200, json: { id: 'orders', status: 'stopped' } });
    const unready = await call<Health['ready']>(open, '/health/ready');
    expect(unready.status).toBe(503);
    expect(unready.json.status).toBe('unready');
    expect(unready.json.checks.routes).toContainEqual({ id: 'orders', status: 'stopped', ok: false });
    const [entry] = open.deadLetters.list({ route: 'orders' });
    const refused = await call<{ results: { outcome: string; error?: string }[] }>(guarded, '/api/dead-letters/replay', { method: 'POST', token: TOKEN, body: { ids: [entry?.id] } });
    expect(refused.json.results[0]).toMatchObject({ outcome: 'failed', error: expect.stringMatching(/stopped/) });

    const started = await call(guarded, '/api/routes/orders/start', { method: 'POST', token: TOKEN });
    expect(started).toMatchObject({ status: 200, json: { id: 'orders', status: 'started' } });
    expect((await call(open, '/health/ready')).status).toBe(200);
    expect((await call(guarded, '/api/routes/nope/stop', { method: 'POST', token: TOKEN })).status).toBe(404);
    expect((await call(guarded, '/api/routes/orders/stop', { token: TOKEN })).status).toBe(405);
  });

  it('serves the page and its files, never a file outside them', async () => {
    const page = await call<string>(open, '/');
    expect(page).toMatchObject({ status: 200, type: 'text/html; charset=utf-8' });
    expect(page.headers.get('content-security-policy')).toContain("default-src 'self'");
    expect((await call(open, '/static/app.js')).type).toBe('text/javascript; charset=utf-8');
    const dagre = await call<string>(open, '/static/dagre.min.js');
    expect(dagre.status).toBe(200);
    expect(dagre.json).toContain('dagre');
    const missing = await call<string>(open, '/static/nothing.js');
    expect(missing.status).toBe(404);
    expect(missing.json).toMatch(/console's page is missing/);
    for (const path of ['/static/../../package.json', '/static/%2e%2e/%2e%2e/package.json', '/static/..%2f..%2fpackage.json', '/static/%2fetc%2fpasswd', '/static/app.js%00.html']) {
      const answer = await rawGet(open, path);
      expect(answer.status, path).toBe(404);
      expect(answer.body, path).not.toContain('"name"');
    }
    // the page itself is open on a guarded console (it asks for the token)
    expect((await call(guarded, '/')).status).toBe(200);
  });

  it('answers only loopback Host names without a token (no DNS rebinding)', async () => {
    expect((await rawGet(open, '/graph', 'evil.example:80')).status).toBe(403);
    expect((await rawGet(open, '/graph', `localhost:${open.port}`)).status).toBe(200);
    expect((await rawGet(open, '/health/live', 'evil.example')).status).toBe(200);
  });

  it('refuses to listen beyond loopback without a token, and a short token', async () => {
    await expect(startConsole(app, { host: '0.0.0.0' })).rejects.toThrow(/not loopback.*token/);
    await expect(startConsole(app, { token: 'short' })).rejects.toThrow(/at least 16/);
  });
});

describe('console server (RabbitMQ)', () => {
  const admin = new BrokerAdmin();
  afterAll(() => admin.close());

  it('is ready with the amqp transport connected, unready once it is closed', async () => {
    const [input, output] = ['console-in', 'console-out'].map(uniqueName) as [string, string];
    admin.track({ queues: [input, output] });
    const app = createIntegration({
      logger: silentLogger,
      modules: [amqpModule({ url: AMQP_URL, topology: { queues: [{ name: input }, { name: output }] } })],
      routes: [from(`amqp:queue/${input}`, { id: 'relay' }).to(`amqp:queue/${output}`, { id: 'out' })],
    });
    const console = await startConsole(app);
    try {
      const before = await call<Health['ready']>(console, '/health/ready');
      expect(before.status).toBe(503);
      expect(before.json.checks.transports).toContainEqual(expect.objectContaining({ scheme: 'amqp', ok: false }));
      await app.start();
      await until(async () => (await call(console, '/health/ready')).status === 200, () => 'ready after start');
      const ready = await call<Health['ready']>(console, '/health/ready');
      expect(ready.json.checks.transports).toContainEqual({ scheme: 'amqp', state: 'connected', ok: true });
      expect(ready.json.checks.routes).toEqual([{ id: 'relay', status: 'started', ok: true }]);
      await app.stop({ drainTimeoutMs: 1_000 });
      const after = await call<Health['ready']>(console, '/health/ready');
      expect(after.status).toBe(503);
      expect(after.json.checks.transports).toContainEqual(expect.objectContaining({ scheme: 'amqp', state: 'closed', ok: false }));
    } finally {
      await console.close();
      await app.stop({ drainTimeoutMs: 100 });
    }
  });
});

describe('console health (durable buffer)', () => {
  it('turns unready when a buffer reaches its high-water mark', async () => {
    const directory = mkdtempSync(join(tmpdir(), 'interchange-console-buffer-'));
    const app = createIntegration({
      logger: silentLogger,
      modules: [bufferModule({ directory, logger: silentLogger })],
      routes: [from('memory:fill', { id: 'fill' }).to('buffer:held?maxEntries=10', { id: 'hold' })],
    });
    const console = await startConsole(app, { health: { highWaterMark: 0.8 } });
    try {
      await app.start();
      const kit = new TestKit(app);
      await kit.sendAll('memory:fill', [1, 2, 3, 4, 5, 6, 7]);
      await until(() => (app.metrics().fill?.completed ?? 0) === 7, () => JSON.stringify(app.metrics().fill));
      await until(async () => (await call<Health['ready']>(console, '/health/ready')).json.checks.buffers.length === 1, () => 'buffer reported');
      const below = await call<Health['ready']>(console, '/health/ready');
      expect(below.status).toBe(200);
      expect(below.json.checks.transports).toContainEqual(expect.objectContaining({ scheme: 'buffer', state: 'open', ok: true }));
      expect(below.json.checks.buffers[0]).toMatchObject({ uri: 'buffer:held', messages: 7, capacityMessages: 10, full: false, ok: true });
      await kit.send('memory:fill', 8);
      await until(() => (app.metrics().fill?.completed ?? 0) === 8, () => JSON.stringify(app.metrics().fill));
      const above = await call<Health['ready']>(console, '/health/ready');
      expect(above.status).toBe(503);
      expect(above.json.checks.buffers[0]).toMatchObject({ messages: 8, ok: false });
      kit.close();
    } finally {
      await console.close();
      await app.stop({ drainTimeoutMs: 100 });
      rmSync(directory, { recursive: true, force: true });
    }
  });
});
