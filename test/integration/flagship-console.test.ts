import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import mqtt from 'mqtt';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, afterEach, expect, it } from 'vitest';
import { parseEndpoint, type Message } from '../../src/core/index.ts';
import { aggregationTables, openDatabase } from '../../adapters/postgres/index.ts';
import { flowNames } from '../../examples/mqtt-to-amqp/flow.ts';
import { fahrenheit } from '../../examples/mqtt-to-amqp/telemetry.ts';
import { simulate, telemetryTopic, type SimulatorReport } from '../../examples/device-simulator/simulator.ts';
import { AMQP_URL, BrokerAdmin, connectedTransport, sleep, until } from './amqp-support.ts';
import { MOSQUITTO_URL, requireBroker } from './mqtt-helpers.ts';
import { cli, killCliProcesses } from '../support/cli-process.ts';

// Issue 16's "done when": the flagship (examples/mqtt-to-amqp/route.ts, buffered, against the machine's
// Mosquitto, RabbitMQ and PostgreSQL) run by the real `interchange run … --http 0`, its console driven by
// real headless Chromium: the graph of all three routes, rates while simulated devices publish, an invalid
// message in the dead-letter list, replayed as it is (dead-lettered again, with the replay headers) and
// replayed corrected (completed, the reading on RabbitMQ), /metrics against what was sent, then SIGINT.
// Screenshots go to test-artifacts/console/flagship-*.png; with UPDATE_SCREENSHOT=1 the graph with rates
// also goes to docs/images/console.png (the README's picture).

const ARTIFACTS = fileURLToPath(new URL('../../test-artifacts/console/', import.meta.url));
const README_SCREENSHOT = fileURLToPath(new URL('../../docs/images/console.png', import.meta.url));
const CHROMIUM = '/usr/bin/chromium';
const DATABASE_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const TOKEN = randomBytes(24).toString('hex');
/** The simulated fleet: 10 devices, 50 valid readings a second for 10 s. */
const FLEET = { devices: 10, rate: 50, count: 500 } as const;
/** The device of the one invalid message this test publishes itself (none of the fleet's `dev-0001` …). */
const DEVICE = 'console-1';

interface GraphNode { readonly id: string; readonly kind: 'endpoint' | 'step'; readonly route?: string }
interface GraphEdge { readonly id: string; readonly from: string; readonly to: string; readonly route: string; readonly kind: string }
interface RouteMetrics { readonly received: number; readonly completed: number; readonly deadLettered: number; readonly inFlight: number }
interface Graph { readonly routes: readonly { readonly id: string; readonly status: string; readonly metrics: RouteMetrics }[]; readonly nodes: readonly GraphNode[]; readonly edges: readonly GraphEdge[] }
interface DeadLetterSummary {
  readonly id: string;
  readonly route: string;
  readonly outcome: string;
  readonly step: string;
  readonly code: string;
  readonly error: string;
  readonly reason?: string;
  readonly headers: Readonly<Record<string, unknown>>;
  readonly replays: readonly { readonly outcome: string }[];
}

const admin = new BrokerAdmin();
const cleanups: (() => Promise<unknown>)[] = [];
let browser: Browser | undefined;
afterEach(() => killCliProcesses());
afterAll(async () => {
  await browser?.close();
  for (const cleanup of cleanups.reverse()) await cleanup().catch((error: unknown) => console.warn(`cleanup failed: ${String(error)}`));
  await admin.close();
});

const byTestId = (id: string): string => `[data-testid=${JSON.stringify(id)}]`;

it(
  'the flagship run with --http: every step of its three routes drawn, rates while devices publish, an invalid message replayed as it is (dead-lettered again, with replay headers) and corrected (completed, on RabbitMQ), /metrics = messages sent, SIGINT exits 0',
  async () => {
    await requireBroker(MOSQUITTO_URL);
    await mkdir(ARTIFACTS, { recursive: true });
    const shot = (name: string): string => join(ARTIFACTS, `flagship-${name}.png`);
    // short names: they show in the screenshots
    const prefix = `fl-${randomBytes(3).toString('hex')}-`;
    const names = flowNames(prefix);
    const clientId = `${prefix}bridge`.slice(0, 48);
    admin.track({ queues: [names.readingsQueue, names.alertsQueue, names.summariesQueue, names.invalidQueue], exchanges: [names.exchange, names.deadLetterExchange] });
    const state = await mkdtemp(join(tmpdir(), 'flagship-console-'));
    cleanups.push(() => rm(state, { recursive: true, force: true }));
    cleanups.push(() => forgetMqttSession(clientId));
    cleanups.push(() => deleteSummaryRows(`${names.exchange}.summaries`));

    // --- the flagship, as an operator runs it (summaries complete 1 s after a device's last reading)
    const run = cli(['run', 'examples/mqtt-to-amqp/route.ts', '--http', '0', '--quiet'], {
      ...process.env,
      MQTT_URL: MOSQUITTO_URL,
      AMQP_URL,
      DATABASE_URL,
      FLOW_PREFIX: prefix,
      MQTT_CLIENT_ID: clientId,
      STATE_DIR: state,
      BUFFER_DIR: join(state, 'buffer'),
      SIMULATE: '0',
      SUMMARY_IDLE_MS: '1000',
      INTERCHANGE_CONSOLE_TOKEN: TOKEN,
    });
    const consoleUrl = (await run.waitForStdout(/interchange: console on (http:\/\/127\.0\.0\.1:\d+\/)/))[1] as string;
    await run.waitForStdout(/mqtt-to-amqp: waiting for devices/);
    const api = consoleApi(consoleUrl);

    const graph = await api.json<Graph>('graph');
    expect(graph.routes.map((route) => [route.id, route.status])).toEqual([['telemetry', 'started'], ['forward', 'started'], ['dead-letters', 'started']]);
    const steps = graph.nodes.filter((node) => node.kind === 'step');
    expect(steps.map((node) => node.id)).toEqual(expect.arrayContaining(['step:telemetry/translate', 'step:telemetry/buffered', 'step:forward/route-by-temperature', 'step:forward/readings', 'step:forward/per-device', 'step:dead-letters/invalid']));
    const sourceEdge = graph.edges.find((edge) => edge.route === 'telemetry' && edge.kind === 'flow' && edge.from === `endpoint:mqtt:${names.telemetryTopic}`) as GraphEdge;
    const forwardEdge = graph.edges.find((edge) => edge.route === 'forward' && edge.kind === 'flow' && edge.from === `endpoint:buffer:${names.exchange}`) as GraphEdge;
    expect(sourceEdge, 'the telemetry source edge').toBeDefined();
    expect(forwardEdge, "the forward route's edge out of the buffer").toBeDefined();

    // --- the page, in real headless Chromium (the token from ?token=)
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless=new', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    const page = await browser.newPage({ viewport: { width: 1920, height: 1080 } });
    const problems: string[] = [];
    watchProblems(page, problems);
    const textOf = async (id: string): Promise<string> => (await page.locator(byTestId(id)).textContent()) ?? '';
    const textShows = async (id: string, needle: string): Promise<void> => {
      let text = '';
      await until(async () => (text = await textOf(id)).includes(needle), () => `${id} shows '${text}', not '${needle}'`, 15_000);
    };
    await page.goto(`${consoleUrl}?token=${TOKEN}`);
    await page.locator(byTestId('graph')).waitFor();
    for (const node of steps) await page.locator(byTestId(`node-${node.id}`)).waitFor({ state: 'visible', timeout: 10_000 });
    expect(await page.locator('[data-testid="graph"] g.edge').count()).toBe(graph.edges.length);
    for (const route of graph.routes) await page.locator(byTestId(`route-card-${route.id}`)).waitFor();
    await until(async () => (await textOf('readiness')) === 'ready', () => 'readiness badge', 10_000);
    await page.screenshot({ path: shot('idle') });

    // --- devices publish at a fixed rate; the rates rise on the page
    const topicPrefix = names.telemetryTopic.split('/devices/')[0] as string;
    const invalidTopic = telemetryTopic(DEVICE, topicPrefix);
    const listed = async (): Promise<DeadLetterSummary[]> => (await api.json<{ deadLetters: DeadLetterSummary[] }>('api/dead-letters?route=telemetry')).deadLetters;
    const fleet = simulate({ url: MOSQUITTO_URL, ...FLEET, invalid: 0, topicPrefix });
    let report: SimulatorReport | undefined;
    let found: DeadLetterSummary | undefined;
    try {
      await until(async () => parseFloat(await textOf(`edge-rate-${sourceEdge.id}`)) > 0, () => `source edge rate: '${run.stderr().slice(-500)}'`, 15_000);
      await until(async () => parseFloat(await textOf(`edge-rate-${forwardEdge.id}`)) > 0, () => 'forward edge rate', 10_000);
      expect(await textOf(`edge-rate-${sourceEdge.id}`)).toMatch(/^\d+(\.\d+)?\/s$/);
      expect(parseFloat(await textOf('route-rate-telemetry'))).toBeGreaterThan(0);
      // the README's picture (UPDATE_SCREENSHOT=1): a page of its own, sharp (2× pixels), sized for the fitted graph
      const readme = process.env.UPDATE_SCREENSHOT === '1' ? await (await browser.newContext({ viewport: { width: 1600, height: 820 }, deviceScaleFactor: 2 })).newPage() : undefined;
      if (readme !== undefined) {
        watchProblems(readme, problems);
        await readme.goto(`${consoleUrl}?token=${TOKEN}`);
      }
      // one invalid message of our own, while the fleet publishes: a schema violation
      await publishOnce(invalidTopic, JSON.stringify({ deviceId: DEVICE, ts: new Date().toISOString(), temperature: 'hot' }));
      await until(
        async () => {
          found = (await listed()).find((deadLetter) => deadLetter.headers['x-mqtt-topic'] === invalidTopic);
          return found !== undefined;
        },
        () => 'the dead letter of the invalid message',
      );
      await page.locator(byTestId(`dead-letter-row-${found?.id ?? ''}`)).waitFor({ state: 'visible', timeout: 10_000 });
      // a full rate window of steady traffic, then the picture: the graph with rates and the dead letter
      await sleep(2_000);
      expect(parseFloat(await textOf(`edge-rate-${sourceEdge.id}`))).toBeGreaterThan(0);
      await page.locator(byTestId('graph-zoom-fit')).click();
      await page.screenshot({ path: shot('graph-rates') });
      if (readme !== undefined) {
        await readme.locator(byTestId(`dead-letter-row-${found?.id ?? ''}`)).waitFor({ state: 'visible', timeout: 10_000 });
        expect(parseFloat((await readme.locator(byTestId(`edge-rate-${sourceEdge.id}`)).textContent()) ?? '')).toBeGreaterThan(0);
        await readme.locator(byTestId('graph-zoom-fit')).click();
        await mkdir(join(README_SCREENSHOT, '..'), { recursive: true });
        await readme.screenshot({ path: README_SCREENSHOT });
        await readme.context().close();
      }
      report = await fleet;
    } finally {
      await fleet.catch(() => undefined);
    }
    expect(report.sent).toBe(FLEET.count);
    const sent = FLEET.count + 1;

    // --- the counters, once the routes have settled every message: /metrics against what was sent
    const metricsOf = async (): Promise<Map<string, RouteMetrics>> => new Map((await api.json<Graph>('graph')).routes.map((route) => [route.id, route.metrics]));
    await until(
      async () => {
        const metrics = await metricsOf();
        const telemetry = metrics.get('telemetry');
        const forward = metrics.get('forward');
        return telemetry?.received === sent && telemetry.inFlight === 0 && forward?.received === FLEET.count && forward.inFlight === 0;
      },
      () => `route metrics: ${run.stderr().slice(-500)}`,
      20_000,
    );
    const scraped = await api.text('metrics');
    expect(counter(scraped, 'interchange_route_messages_received_total{route="telemetry"}')).toBe(sent);
    expect(counter(scraped, 'interchange_route_message_outcomes_total{route="telemetry",outcome="completed"}')).toBe(FLEET.count);
    expect(counter(scraped, 'interchange_route_message_outcomes_total{route="telemetry",outcome="dead_lettered"}')).toBe(1);
    expect(counter(scraped, 'interchange_route_messages_received_total{route="forward"}')).toBe(FLEET.count);
    expect(counter(scraped, 'interchange_route_messages_received_total{route="dead-letters"}')).toBe(1);

    // --- the invalid message in the dead-letter list, with its reason
    if (found === undefined) throw new Error('the dead letter of the invalid message');
    const original = found;
    expect(original).toMatchObject({ route: 'telemetry', outcome: 'dead-lettered', code: 'SCHEMA_INVALID', reason: 'invalid device telemetry', replays: [] });
    expect(original.step).toMatch(/^check-telemetry/);
    const row = page.locator(byTestId(`dead-letter-row-${original.id}`));
    await row.waitFor({ state: 'visible', timeout: 10_000 });
    const cells = async (): Promise<string[]> => row.locator('td').allTextContents();
    const [, , routeCell, stepCell, codeCell, reasonCell] = await cells();
    expect(routeCell).toBe('telemetry');
    expect(stepCell).toBe(original.step);
    expect(codeCell).toBe('SCHEMA_INVALID');
    expect(reasonCell).toContain('invalid device telemetry');
    expect(reasonCell).toContain(original.error);
    expect(original.error).toContain('temperature');

    await row.locator('td:nth-child(4)').click();
    await page.locator(byTestId('dead-letter-detail')).waitFor({ state: 'visible' });
    await until(async () => (await page.locator(byTestId('body-editor')).inputValue()).includes('hot'), () => 'the dead letter body in the editor');
    expect(JSON.parse(await page.locator(byTestId('body-editor')).inputValue())).toEqual({ deviceId: DEVICE, ts: expect.any(String), temperature: 'hot' });
    expect(await textOf('validation-errors')).toContain('/temperature');
    expect(await page.locator(`${byTestId('dead-letter-header-x-interchange-error-code')} td`).textContent()).toBe('SCHEMA_INVALID');
    await page.locator(byTestId('validation-errors')).scrollIntoViewIfNeeded();
    await page.screenshot({ path: shot('dead-letter') });

    // --- replayed as it is (the token is in the page): dead-lettered again, with the replay headers
    await page.locator(byTestId('replay-one')).click();
    await textShows('replay-result', 'dead-lettered');
    expect(await textOf('replay-result')).toContain(original.id);
    let again: DeadLetterSummary | undefined;
    await until(
      async () => {
        again = (await listed()).find((deadLetter) => deadLetter.headers['x-interchange-replay-of'] === original.id);
        return again !== undefined;
      },
      () => 'the replay dead-lettered again',
    );
    const replayed = again as DeadLetterSummary;
    expect(replayed).toMatchObject({ route: 'telemetry', outcome: 'dead-lettered', code: 'SCHEMA_INVALID', step: original.step });
    expect(replayed.headers).toMatchObject({ 'x-interchange-replays': 1, 'x-interchange-replayed-at': expect.any(Number), 'x-interchange-replayed-by': 'console', deviceId: DEVICE });
    expect((await listed()).find((deadLetter) => deadLetter.id === original.id)?.replays).toMatchObject([{ outcome: 'dead-lettered' }]);
    // …and in the page: a new row; its detail shows the replay headers
    const againRow = page.locator(byTestId(`dead-letter-row-${replayed.id}`));
    await againRow.waitFor({ state: 'visible', timeout: 10_000 });
    let replaysCell = '';
    await until(async () => (replaysCell = (await cells())[6] ?? '').includes('1× · dead-lettered'), () => `the original row's replays: '${replaysCell}'`);
    await againRow.locator('td:nth-child(4)').click();
    await page.locator(byTestId('dead-letter-header-x-interchange-replays')).waitFor({ state: 'visible' });
    expect(await page.locator(`${byTestId('dead-letter-header-x-interchange-replays')} td`).textContent()).toBe('1');
    expect(await page.locator(`${byTestId('dead-letter-header-x-interchange-replay-of')} td`).textContent()).toBe(original.id);
    expect(Number(await page.locator(`${byTestId('dead-letter-header-x-interchange-replayed-at')} td`).textContent())).toBe(replayed.headers['x-interchange-replayed-at']);
    expect(await page.locator(`${byTestId('dead-letter-header-x-interchange-error-code')} td`).textContent()).toBe('SCHEMA_INVALID');
    await page.locator(byTestId('dead-letter-header-x-interchange-replays')).scrollIntoViewIfNeeded();
    await page.screenshot({ path: shot('replayed-dead-lettered') });

    // --- replayed corrected, from the page's body editor: completed, and the reading reaches RabbitMQ
    await until(async () => (await page.locator(byTestId('body-editor')).inputValue()).includes('hot'), () => "the replay's dead letter body in the editor");
    const corrected = { deviceId: DEVICE, ts: '2026-01-01T00:00:00.000Z', temperature: 21.5 };
    await page.locator(byTestId('body-editor')).fill(JSON.stringify(corrected, null, 2));
    await page.locator(byTestId('replay-edited')).click();
    await textShows('replay-result', 'completed');
    expect(await textOf('replay-result')).toContain(replayed.id);
    await until(async () => (await textOf('dead-letter-replays')).includes('completed'), () => 'the replay in the detail');
    await page.locator(byTestId('dead-letter-replays')).scrollIntoViewIfNeeded();
    await page.screenshot({ path: shot('replayed-completed') });
    const reading = await findReading(names.readingsQueue, DEVICE);
    expect(reading.body).toEqual({ deviceId: DEVICE, timestamp: Date.parse(corrected.ts), temperatureC: 21.5, temperatureF: fahrenheit(21.5) });
    expect(reading.headers).toMatchObject({ 'x-schema': 'backend.reading@1', contentType: 'application/json' });
    const settled = await metricsOf();
    expect(settled.get('telemetry')).toMatchObject({ received: sent + 2, completed: FLEET.count + 1, deadLettered: 2, inFlight: 0 });
    // RabbitMQ's dead-letter queue, the durable record: the invalid message and its replay's dead letter
    await until(async () => (await admin.messageCount(names.invalidQueue)) === 2, () => 'two dead letters in the invalid queue');

    expect(problems).toEqual([]);
    await page.close();

    // --- Ctrl-C: drains and exits 0
    run.signal('SIGINT');
    expect(await run.exited, `stderr: ${run.stderr().slice(-2_000)}`).toBe(0);
    expect(run.stdout()).toMatch(/stopped after/);
  },
  110_000,
);

/** The console's API with the token: `json('graph')`, `text('metrics')`. */
function consoleApi(base: string): { json<T>(path: string): Promise<T>; text(path: string): Promise<string> } {
  const get = async (path: string): Promise<Response> => {
    const response = await fetch(new URL(path, base), { headers: { authorization: `Bearer ${TOKEN}` } });
    if (!response.ok) throw new Error(`GET /${path}: ${response.status} ${await response.text()}`);
    return response;
  };
  return { json: async <T>(path: string) => (await (await get(path)).json()) as T, text: async (path: string) => (await get(path)).text() };
}

/** The value of one sample line (`name{labels} value`) of a Prometheus text exposition. */
function counter(exposition: string, sample: string): number | undefined {
  const line = exposition.split('\n').find((candidate) => candidate.startsWith(`${sample} `));
  return line === undefined ? undefined : Number(line.slice(sample.length + 1));
}

async function publishOnce(topic: string, payload: string): Promise<void> {
  const client = await mqtt.connectAsync(MOSQUITTO_URL, { protocolVersion: 5, clean: true, connectTimeout: 5_000, clientId: `fl-console-pub-${randomBytes(3).toString('hex')}` });
  try {
    await client.publishAsync(topic, payload, { qos: 1 });
  } finally {
    await client.endAsync();
  }
}

/** Reads (and acks) the readings queue until the reading of `device` is there. */
async function findReading(queue: string, device: string): Promise<Message> {
  const reader = await connectedTransport();
  let found: Message | undefined;
  let read = 0;
  const subscription = reader.consume(parseEndpoint(`amqp:queue/${queue}`), { prefetch: 500 }).subscribe((delivery) => {
    read += 1;
    if ((delivery.message.body as { deviceId?: unknown }).deviceId === device) found = delivery.message;
    delivery.ack();
  });
  try {
    await until(() => found !== undefined, () => `no reading of ${device} among ${read} read from ${queue}`, 15_000);
  } finally {
    subscription.unsubscribe();
    await reader.close();
  }
  return found as Message;
}

/** Page errors and console errors or warnings: the page must run clean against the real flagship. */
function watchProblems(page: Page, problems: string[]): void {
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  page.on('console', (message) => {
    if (message.type() === 'error' || message.type() === 'warning') problems.push(`console ${message.type()}: ${message.text()} (${message.location().url})`);
  });
}

/** Ends the bridge's persistent MQTT session (its subscription would outlive the test in the shared broker). */
async function forgetMqttSession(clientId: string): Promise<void> {
  const client = await mqtt.connectAsync(MOSQUITTO_URL, { protocolVersion: 5, clean: true, connectTimeout: 5_000, clientId, properties: { sessionExpiryInterval: 0 } });
  await client.endAsync();
}

/** Deletes the rows the summaries' repository kept under `name` in the shared PostgreSQL tables. */
async function deleteSummaryRows(name: string): Promise<void> {
  const db = await openDatabase({ url: DATABASE_URL });
  try {
    const tables = aggregationTables();
    for (const table of [tables.groups, tables.completed, tables.seen]) await db.query(`DELETE FROM ${table} WHERE name = $1`, [name]);
  } finally {
    await db.close();
  }
}
