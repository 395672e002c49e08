import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { mkdir, readFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AddressInfo } from 'node:net';
import { chromium, type Browser, type Page } from 'playwright-core';
import { until } from '../support/wait.ts';

// The console's page (facade/console/static/) in real headless Chromium, against a fixture HTTP server
// that serves the page, dagre and fixture JSON in the console server's shapes: the flagship's three
// buffered routes (telemetry → buffer:telemetry → forward → the exchange, with the choice's branches and
// the summaries; dead-letters), counters that grow with time, two dead letters, replay and stop/start.

const STATIC_DIR = fileURLToPath(new URL('../../facade/console/static/', import.meta.url));
const DAGRE = fileURLToPath(new URL('../../node_modules/@dagrejs/dagre/dist/dagre.min.js', import.meta.url));
const ARTIFACTS = fileURLToPath(new URL('../../test-artifacts/console/', import.meta.url));
const CHROMIUM = '/usr/bin/chromium';
const TOKEN = 's3cret';
// The strict policy the real console server is expected to send: the page must work under it.
const CSP = "default-src 'self'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'";

const MQTT = 'mqtt:devices/+deviceId/telemetry?qos=1&payload=raw&headers=trace';
const BUFFER = 'buffer:telemetry';
const DEAD_BUFFER = 'buffer:telemetry.dead';
const ALERTS = 'amqp:exchange/telemetry?routingKey=alert.{deviceId}';
const READINGS = 'amqp:exchange/telemetry?routingKey=reading.{deviceId}';
const SUMMARIES = 'amqp:exchange/telemetry?routingKey=summary.{deviceId}';
const DLX = 'amqp:exchange/telemetry.dlx';
const TELEMETRY = 'device.telemetry@1';
const READING = 'backend.reading@1';
const HOSTILE = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>';

type Role = 'source' | 'destination' | 'channel' | 'dead-letter';
type EdgeKind = 'flow' | 'send' | 'dead-letter';
interface NodeSpec { readonly id: string; readonly kind: 'endpoint' | 'step'; readonly [key: string]: unknown }
interface EdgeSpec { readonly id: string; readonly from: string; readonly to: string; readonly route: string; readonly kind: EdgeKind; readonly contract: string | null; readonly weight: number; readonly failures: number }

const endpointId = (uri: string): string => `endpoint:${uri}`;
const stepId = (route: string, id: string): string => `${route}/${id}`;

function endpoint(uri: string, role: Role, routes: string[]): NodeSpec {
  return { id: endpointId(uri), kind: 'endpoint', label: uri, uri, role, routes };
}

function step(route: string, id: string, stepKind: string, line: number, extra: { parent?: string; branch?: number } = {}): NodeSpec {
  return { id: stepId(route, id), kind: 'step', label: id, route, stepId: id, stepKind, declaredAt: `examples/mqtt-to-amqp/flow.ts:${line}`, ...extra };
}

const choice = stepId('forward', 'route-by-temperature');
const NODES: NodeSpec[] = [
  endpoint(MQTT, 'source', ['telemetry']),
  step('telemetry', 'check-telemetry', 'step', 188),
  step('telemetry', 'translate', 'transform', 189),
  step('telemetry', 'reading-headers', 'setHeaders', 190),
  step('telemetry', 'buffered', 'to', 191),
  endpoint(BUFFER, 'channel', ['telemetry', 'forward']),
  endpoint(DEAD_BUFFER, 'dead-letter', ['telemetry', 'dead-letters']),
  step('forward', 'route-by-temperature', 'choice', 164),
  step('forward', 'alerts', 'to', 167, { parent: choice, branch: 0 }),
  step('forward', 'readings', 'to', 168, { parent: choice, branch: 1 }),
  step('forward', 'per-device', 'aggregate', 173),
  step('forward', 'summarise', 'transform', 174),
  step('forward', 'set-headers-1', 'setHeaders', 175),
  step('forward', 'summaries', 'to', 176),
  endpoint(ALERTS, 'destination', ['forward']),
  endpoint(READINGS, 'destination', ['forward']),
  endpoint(SUMMARIES, 'destination', ['forward']),
  endpoint(DLX, 'dead-letter', ['forward', 'dead-letters']),
  step('dead-letters', 'invalid', 'to', 205),
];

let edgeCount = 0;
function edge(route: string, from: string, to: string, kind: EdgeKind, contract: string | null, weight: number, failures = 0): EdgeSpec {
  edgeCount += 1;
  return { id: `${route}#${edgeCount}`, from, to, route, kind, contract, weight, failures };
}

const EDGES: EdgeSpec[] = [
  edge('telemetry', endpointId(MQTT), stepId('telemetry', 'check-telemetry'), 'flow', TELEMETRY, 10),
  edge('telemetry', stepId('telemetry', 'check-telemetry'), stepId('telemetry', 'translate'), 'flow', TELEMETRY, 9),
  edge('telemetry', stepId('telemetry', 'translate'), stepId('telemetry', 'reading-headers'), 'flow', READING, 9),
  edge('telemetry', stepId('telemetry', 'reading-headers'), stepId('telemetry', 'buffered'), 'flow', READING, 9),
  edge('telemetry', stepId('telemetry', 'buffered'), endpointId(BUFFER), 'send', READING, 9),
  edge('telemetry', stepId('telemetry', 'check-telemetry'), endpointId(DEAD_BUFFER), 'dead-letter', null, 1, 3),
  edge('forward', endpointId(BUFFER), choice, 'flow', READING, 9),
  edge('forward', choice, stepId('forward', 'alerts'), 'flow', READING, 2),
  edge('forward', choice, stepId('forward', 'readings'), 'flow', READING, 7),
  edge('forward', stepId('forward', 'alerts'), endpointId(ALERTS), 'send', READING, 2),
  edge('forward', stepId('forward', 'readings'), endpointId(READINGS), 'send', READING, 7),
  edge('forward', choice, stepId('forward', 'per-device'), 'flow', READING, 9),
  edge('forward', stepId('forward', 'per-device'), stepId('forward', 'summarise'), 'flow', null, 1),
  edge('forward', stepId('forward', 'summarise'), stepId('forward', 'set-headers-1'), 'flow', null, 1),
  edge('forward', stepId('forward', 'set-headers-1'), stepId('forward', 'summaries'), 'flow', null, 1),
  edge('forward', stepId('forward', 'summaries'), endpointId(SUMMARIES), 'send', null, 1),
  edge('forward', choice, endpointId(DLX), 'dead-letter', null, 0),
  edge('dead-letters', endpointId(DEAD_BUFFER), stepId('dead-letters', 'invalid'), 'flow', null, 1),
  edge('dead-letters', stepId('dead-letters', 'invalid'), endpointId(DLX), 'send', null, 1),
];
const CHECK_TO_DEAD = EDGES[5] as EdgeSpec;
const SOURCE_EDGE = EDGES[0] as EdgeSpec;

interface DeadLetterFixture { readonly id: string; readonly route: string; readonly [key: string]: unknown; replays: { at: string; outcome: string; target: string }[] }

const DEAD_LETTERS: DeadLetterFixture[] = [
  {
    id: 'dl-1', route: 'telemetry', outcome: 'dead-lettered', at: '2025-01-01T10:00:00.000Z', step: 'check-telemetry', code: 'SCHEMA_INVALID',
    error: `${TELEMETRY}: /temperatureC must be number`, reason: 'invalid device telemetry', declaredAt: 'examples/mqtt-to-amqp/flow.ts:188', uri: DEAD_BUFFER, messageId: 'm-1',
    headers: {
      deviceId: 'dev-1',
      'x-interchange-error': `${TELEMETRY}: /temperatureC must be number`,
      'x-interchange-error-code': 'SCHEMA_INVALID',
      'x-interchange-step': 'check-telemetry',
      'x-interchange-route': 'telemetry',
      'x-interchange-declared-at': 'examples/mqtt-to-amqp/flow.ts:188',
      'x-interchange-reason': 'invalid device telemetry',
      'x-interchange-validation-errors': JSON.stringify([{ pointer: '/temperatureC', keyword: 'type', message: 'must be number' }]),
      'x-device-note': HOSTILE,
    },
    bodyPreview: '{"deviceId":"dev-1","temperatureC":"hot"}', body: '{"deviceId":"dev-1","temperatureC":"hot"}', bodyEncoding: 'utf8', replays: [],
  },
  {
    id: 'dl-2', route: 'forward', outcome: 'dead-lettered', at: '2025-01-01T10:00:05.000Z', step: 'alerts', code: 'PUBLISH_REFUSED',
    error: `refused: ${HOSTILE}`, reason: 'invalid', declaredAt: 'examples/mqtt-to-amqp/flow.ts:167', uri: DLX, messageId: 'm-2',
    headers: { 'x-interchange-error': `refused: ${HOSTILE}`, 'x-interchange-step': 'alerts' },
    bodyPreview: '3q2+7w==', body: '3q2+7w==', bodyEncoding: 'base64', replays: [],
  },
];

interface Recorded { readonly method: string; readonly path: string; readonly authorization: string | undefined; readonly body: unknown }

/** The fixture console server: the page, dagre and the API in its documented shapes; records every write. */
class FixtureConsole {
  readonly writes: Recorded[] = [];
  readonly status = new Map<string, string>([['telemetry', 'started'], ['forward', 'started'], ['dead-letters', 'started']]);
  private readonly startedAt = Date.now();
  private readonly server: Server = createServer((request, response) => void this.handle(request, response));
  url = '';

  async start(): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  /** Counters grow with time: about `weight` × 10 messages a second. */
  private ticks(): number {
    return Math.floor((Date.now() - this.startedAt) / 100);
  }

  graph(): unknown {
    const ticks = this.ticks();
    const routes = [...this.status].map(([id, status], index) => ({
      id, status, source: id === 'telemetry' ? MQTT : id === 'forward' ? BUFFER : DEAD_BUFFER, declaredAt: `examples/mqtt-to-amqp/flow.ts:${186 + index}`,
      ...(id === 'dead-letters' ? {} : { deadLetterUri: id === 'telemetry' ? DEAD_BUFFER : DLX }),
      metrics: { received: ticks * 10, completed: ticks * 9, filtered: 0, failed: id === 'telemetry' ? 3 : 0, retried: 0, deadLettered: id === 'telemetry' ? 1 : 0, discarded: 0, rejected: 0, expired: 0, inFlight: 4, handedBack: 0 },
    }));
    const nodes = NODES.map((node) => (node.kind === 'step' ? { ...node, counters: { passed: ticks * 9, failed: node.id === stepId('telemetry', 'check-telemetry') ? 3 : 0 } } : node));
    const edges = EDGES.map(({ weight, failures, ...rest }) => ({ ...rest, counters: { messages: ticks * weight, failed: failures } }));
    return { generatedAt: Date.now(), routes, nodes, edges };
  }

  private health(): { code: number; body: unknown } {
    const routes = [...this.status].map(([id, status]) => ({ id, status, ok: status === 'started' }));
    const ready = routes.every((route) => route.ok);
    return {
      code: ready ? 200 : 503,
      body: { status: ready ? 'ready' : 'unready', checks: { routes, transports: [{ scheme: 'mqtt', state: 'connected', ok: true }, { scheme: 'amqp', state: 'connected', ok: true }], buffers: [{ uri: BUFFER, messages: 12, capacityMessages: 100_000, full: false, ok: true }] } },
    };
  }

  private async handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const url = new URL(request.url ?? '/', 'http://fixture');
    const json = (code: number, body: unknown): void => {
      response.writeHead(code, { 'content-type': 'application/json', 'cache-control': 'no-store' });
      response.end(JSON.stringify(body));
    };
    const file = async (path: string, type: string): Promise<void> => {
      response.writeHead(200, { 'content-type': type, 'content-security-policy': CSP, 'x-content-type-options': 'nosniff' });
      response.end(await readFile(path));
    };
    const authorized = request.headers.authorization === `Bearer ${TOKEN}`;
    try {
      if (request.method === 'GET' && (url.pathname === '/' || url.pathname === '/index.html')) return await file(join(STATIC_DIR, 'index.html'), 'text/html; charset=utf-8');
      if (request.method === 'GET' && url.pathname === '/static/dagre.min.js') return await file(DAGRE, 'text/javascript');
      if (request.method === 'GET' && url.pathname.startsWith('/static/')) {
        const name = basename(url.pathname);
        const type = name.endsWith('.js') ? 'text/javascript' : name.endsWith('.css') ? 'text/css' : 'application/octet-stream';
        return await file(join(STATIC_DIR, name), type);
      }
      if (request.method === 'GET' && url.pathname === '/graph') return json(200, this.graph());
      if (request.method === 'GET' && url.pathname === '/health/ready') {
        const { code, body } = this.health();
        return json(code, body);
      }
      if (request.method === 'GET' && url.pathname === '/api/dead-letters') {
        const route = url.searchParams.get('route');
        const limit = Number(url.searchParams.get('limit') ?? 50);
        const list = DEAD_LETTERS.filter((deadLetter) => route === null || deadLetter.route === route)
          .slice(0, limit)
          .map(({ body: _body, bodyEncoding: _encoding, ...rest }) => rest);
        return json(200, { deadLetters: list });
      }
      const detail = /^\/api\/dead-letters\/([^/]+)$/.exec(url.pathname);
      if (request.method === 'GET' && detail !== null && detail[1] !== 'replay') {
        const found = DEAD_LETTERS.find((deadLetter) => deadLetter.id === decodeURIComponent(detail[1] ?? ''));
        return found === undefined ? json(404, { error: 'no such dead letter' }) : json(200, found);
      }
      if (request.method !== 'POST') return json(404, { error: 'not found' });
      const chunks: Buffer[] = [];
      for await (const chunk of request) chunks.push(chunk as Buffer);
      const text = Buffer.concat(chunks).toString('utf8');
      const body: unknown = text === '' ? undefined : JSON.parse(text);
      this.writes.push({ method: request.method, path: url.pathname, authorization: request.headers.authorization, body });
      if (!authorized) return json(403, { error: 'a bearer token is required for this request' });
      if (url.pathname === '/api/dead-letters/replay') {
        const { ids } = body as { ids: string[] };
        const results = ids.map((id) => {
          const outcome = id === 'dl-1' ? 'completed' : 'dead-lettered';
          DEAD_LETTERS.find((deadLetter) => deadLetter.id === id)?.replays.push({ at: new Date().toISOString(), outcome, target: (body as { endpoint?: string }).endpoint ?? 'source' });
          return outcome === 'completed' ? { id, outcome } : { id, outcome, error: 'still invalid: /temperatureC must be number' };
        });
        return json(200, { results });
      }
      const control = /^\/api\/routes\/([^/]+)\/(stop|start)$/.exec(url.pathname);
      if (control !== null) {
        const id = decodeURIComponent(control[1] ?? '');
        if (!this.status.has(id)) return json(404, { error: `no route ${id}` });
        this.status.set(id, control[2] === 'stop' ? 'stopped' : 'started');
        return json(200, { id, status: this.status.get(id) });
      }
      return json(404, { error: 'not found' });
    } catch (error) {
      json(500, { error: String(error) });
    }
  }
}

const fixture = new FixtureConsole();
let browser: Browser;
let page: Page;
const problems: string[] = [];

const byTestId = (id: string): string => `[data-testid=${JSON.stringify(id)}]`;
const textOf = async (id: string): Promise<string> => (await page.locator(byTestId(id)).textContent()) ?? '';

beforeAll(async () => {
  await mkdir(ARTIFACTS, { recursive: true });
  await fixture.start();
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless=new', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  page.on('console', (message) => {
    // 403 (writes without the token) and 503 (unready) are answers this test asks for
    const expected = /^Failed to load resource: the server responded with a status of (403|503)\b/.test(message.text());
    if ((message.type() === 'error' || message.type() === 'warning') && !expected) problems.push(`console ${message.type()}: ${message.text()} (${message.location().url})`);
  });
  await page.goto(`${fixture.url}/`);
});

afterAll(async () => {
  await browser?.close();
  await fixture.close();
});

describe('the console page', () => {
  it('draws every node of the three routes, the branch group and the contract labels', async () => {
    await page.locator(byTestId('graph')).waitFor();
    for (const node of NODES) await page.locator(byTestId(`node-${node.id}`)).waitFor({ state: 'visible', timeout: 10_000 });
    expect(await page.locator('[data-testid="graph"] g.edge').count()).toBe(EDGES.length);
    expect(await page.locator(byTestId(`group-${choice}`)).count()).toBe(1);
    expect(await textOf(`edge-contract-${SOURCE_EDGE.id}`)).toBe(TELEMETRY);
    expect(await textOf(`edge-contract-${EDGES[2]?.id ?? ''}`)).toBe(READING);
    expect(await page.locator(byTestId(`edge-contract-${CHECK_TO_DEAD.id}`)).count()).toBe(0);
    expect(await textOf(`node-${stepId('forward', 'alerts')}`)).toContain('branch 0');
    for (const route of ['telemetry', 'forward', 'dead-letters']) await page.locator(byTestId(`route-card-${route}`)).waitFor();
    await until(async () => (await textOf('readiness')) === 'ready', () => 'readiness badge');
  });

  it('shows live rates, in-flight and failure counts as the counters grow, without a new layout', async () => {
    // a mark on the drawn lane: a re-layout would replace the element
    await page.evaluate(`document.querySelector('[data-testid="graph"] g.lane')?.setAttribute('data-mark', 'drawn-once')`);
    await until(async () => parseFloat(await textOf(`edge-rate-${SOURCE_EDGE.id}`)) > 0, () => `edge rate stayed ${SOURCE_EDGE.id}`, 10_000);
    expect(await textOf(`edge-rate-${SOURCE_EDGE.id}`)).toMatch(/^\d+(\.\d)?\/s$/);
    expect(await textOf(`edge-failed-${CHECK_TO_DEAD.id}`)).toContain('3 failed');
    expect(await textOf(`edge-failed-${SOURCE_EDGE.id}`)).toBe('');
    expect(await textOf(`node-failed-${stepId('telemetry', 'check-telemetry')}`)).toContain('3 failed');
    expect(await textOf('route-inflight-telemetry')).toBe('4');
    await until(async () => parseFloat(await textOf('route-rate-telemetry')) > 0, () => 'route rate', 5_000);
    const before = Number((await textOf('route-received-telemetry')).replace(/,/g, ''));
    await until(async () => Number((await textOf('route-received-telemetry')).replace(/,/g, '')) > before, () => 'received did not grow', 5_000);
    expect(await page.locator('[data-testid="graph"] g.lane[data-mark="drawn-once"]').count()).toBe(1);
    await page.screenshot({ path: join(ARTIFACTS, 'graph.png') });
    await page.locator(byTestId('graph-zoom-fit')).click();
    await page.locator('.graph-panel').screenshot({ path: join(ARTIFACTS, 'graph-fit.png') });
  });

  it('clicking a dead letter shows its headers and body, as text', async () => {
    await page.locator(byTestId('dead-letter-row-dl-1')).waitFor();
    await page.locator(`${byTestId('dead-letter-row-dl-1')} td:nth-child(4)`).click();
    const detail = page.locator(byTestId('dead-letter-detail'));
    await detail.waitFor({ state: 'visible' });
    await page.locator(byTestId('body-editor')).waitFor();
    expect(await page.locator(byTestId('body-editor')).inputValue()).toBe('{"deviceId":"dev-1","temperatureC":"hot"}');
    expect(await textOf('dead-letter-header-x-interchange-error')).toContain('/temperatureC must be number');
    expect(await textOf('dead-letter-header-x-interchange-declared-at')).toContain('examples/mqtt-to-amqp/flow.ts:188');
    expect(await textOf('dead-letter-header-x-interchange-step')).toContain('check-telemetry');
    expect(await page.locator(byTestId('dead-letter-header-x-interchange-error')).getAttribute('class')).toContain('key');
    expect(await textOf('validation-errors')).toContain('/temperatureC');
    expect(await textOf('dead-letter-header-x-device-note')).toContain(HOSTILE);
    expect(await detail.locator('img, script').count()).toBe(0);
    expect(await page.locator('table.dead-letters img').count()).toBe(0);
    expect(await page.evaluate('window.__pwned')).toBeUndefined();
    await page.screenshot({ path: join(ARTIFACTS, 'dead-letter-detail.png') });

    await page.locator(byTestId('dead-letter-row-dl-2')).click();
    await until(async () => (await page.locator(byTestId('body-encoding')).textContent())?.includes('base64') === true, () => 'base64 note');
    expect(await page.locator(byTestId('body-editor')).inputValue()).toBe('3q2+7w==');
  });

  it('replay without a token shows the 403 message', async () => {
    await page.locator(byTestId('dead-letter-select-dl-1')).check();
    await page.locator(byTestId('dead-letter-select-dl-2')).check();
    await page.locator(byTestId('replay-selected')).click();
    await until(async () => (await textOf('replay-result')).includes('403'), () => `replay result: ${fixture.writes.length} writes`);
    expect(await textOf('replay-result')).toContain('token');
    expect(fixture.writes.at(-1)).toMatchObject({ path: '/api/dead-letters/replay', authorization: undefined });
  });

  it('replay with a token sends the ids and the edited body, then a selection into a chosen endpoint', async () => {
    await page.locator(byTestId('token-input')).fill(TOKEN);
    await page.locator(byTestId('dead-letter-row-dl-1')).click();
    await until(async () => (await page.locator(byTestId('body-editor')).inputValue()).includes('hot'), () => 'dl-1 body');
    const edited = '{"deviceId":"dev-1","temperatureC":21.5}';
    await page.locator(byTestId('body-editor')).fill(edited);
    const writes = fixture.writes.length;
    await page.locator(byTestId('replay-edited')).click();
    await until(async () => (await textOf('replay-result')).includes('completed'), () => `replay result: ${JSON.stringify(fixture.writes.slice(writes))}`);
    expect(fixture.writes.slice(writes)).toEqual([{ method: 'POST', path: '/api/dead-letters/replay', authorization: `Bearer ${TOKEN}`, body: { ids: ['dl-1'], body: edited } }]);
    expect(await page.evaluate(`sessionStorage.getItem('interchange-console-token')`)).toBe(TOKEN);

    await page.locator(byTestId('replay-endpoint')).fill('amqp:exchange/telemetry.retry');
    await page.locator(byTestId('replay-selected')).click();
    await until(async () => (await textOf('replay-result')).includes('dead-lettered'), () => 'selection replay result');
    const last = fixture.writes.at(-1) as Recorded;
    const request = last.body as { ids: string[]; endpoint: string; body?: string };
    expect(request.ids.toSorted()).toEqual(['dl-1', 'dl-2']);
    expect(request).toMatchObject({ endpoint: 'amqp:exchange/telemetry.retry' });
    expect(request.body).toBeUndefined();
    expect(await textOf('replay-result')).toContain('still invalid');
    // the replays show up in the list and the open detail at the next poll
    await until(async () => (await textOf('dead-letter-replays')).includes('completed'), () => 'replays in the detail');
    await page.screenshot({ path: join(ARTIFACTS, 'replay.png') });
    await page.locator(byTestId('replay-endpoint')).fill('');
  });

  it('stop and start call the control bus, and need the token', async () => {
    await page.locator(byTestId('token-input')).fill('');
    await page.locator(byTestId('route-stop-forward')).click();
    await until(async () => (await textOf('route-action-result-forward')).includes('403'), () => 'stop refused');
    expect(fixture.status.get('forward')).toBe('started');

    await page.locator(byTestId('token-input')).fill(TOKEN);
    await page.locator(byTestId('route-stop-forward')).click();
    await until(async () => (await textOf('route-status-forward')) === 'stopped', () => 'forward stopped');
    expect(fixture.writes.at(-1)).toMatchObject({ method: 'POST', path: '/api/routes/forward/stop', authorization: `Bearer ${TOKEN}` });
    expect(fixture.status.get('forward')).toBe('stopped');
    await until(async () => (await textOf('readiness')) === 'unready', () => 'readiness after stop');
    expect(await textOf('health-problems')).toContain('route forward: stopped');
    expect(await page.locator(byTestId('route-stop-forward')).isDisabled()).toBe(true);
    await until(async () => (await page.locator(byTestId('lane-forward')).getAttribute('class'))?.includes('not-started') === true, () => 'the stopped lane');
    await page.screenshot({ path: join(ARTIFACTS, 'stopped.png') });

    await page.locator(byTestId('route-start-forward')).click();
    await until(async () => (await textOf('route-status-forward')) === 'started', () => 'forward started');
    expect(fixture.writes.at(-1)).toMatchObject({ path: '/api/routes/forward/start' });
  });

  it('?token= fills the token field and is removed from the address bar', async () => {
    const other = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    try {
      await other.goto(`${fixture.url}/?view=1&token=from-url`);
      await other.locator(byTestId('graph')).waitFor();
      expect(await other.locator(byTestId('token-input')).inputValue()).toBe('from-url');
      expect(new URL(other.url()).searchParams.get('token')).toBeNull();
      expect(new URL(other.url()).searchParams.get('view')).toBe('1');
    } finally {
      await other.close();
    }
  });

  it('ran without page errors or policy violations', () => {
    expect(problems).toEqual([]);
  });
});
