import { afterAll, expect, it } from 'vitest';
import { ensureRabbitRunningAsync, rabbitmqctlAsync } from './rabbitmq-control.ts';
import { OwnMosquitto } from './mqtt-broker-fixture.ts';
import { createIntegration, from, silentLogger } from '../../facade/index.ts';
import { startConsole, type RunningConsole } from '../../facade/console/console-server.ts';
import type { Health, TransportCheck } from '../../facade/observability/health.ts';
import { createPrometheusMetrics } from '../../facade/observability/prometheus-metrics.ts';
import { amqpModule } from '../../adapters/amqp/index.ts';
import { mqttModule } from '../../adapters/mqtt/index.ts';
import { BrokerAdmin, uniqueName, until } from '../integration/amqp-support.ts';
import { runClientId } from '../integration/mqtt-helpers.ts';
import { parse, value } from '../support/prometheus-text.ts';
import { freePort } from '../support/free-port.ts';

// /health/ready and /metrics of a running integration while its brokers go away and come back:
// RabbitMQ's application is stopped and started again (rabbitmqctl, run asynchronously so the
// integration keeps running meanwhile), then a Mosquitto of the test's own (its own loopback port and
// config; the machine's broker on 1883 is never touched) is killed and started again.
// Always leaves RabbitMQ running.

const admin = new BrokerAdmin();
let broker: OwnMosquitto | undefined;
afterAll(async () => {
  await ensureRabbitRunningAsync();
  await admin.cleanup().catch(() => undefined);
  await admin.close();
  await broker?.dispose();
});


async function ready(server: RunningConsole): Promise<{ status: number; body: Health['ready'] }> {
  const response = await fetch(new URL('/health/ready', server.url));
  return { status: response.status, body: (await response.json()) as Health['ready'] };
}

async function metric(server: RunningConsole, name: string, transport: string): Promise<number> {
  const response = await fetch(new URL('/metrics', server.url));
  return value(parse(await response.text()), name, { transport });
}

function transportCheck(body: Health['ready'], scheme: string): TransportCheck | undefined {
  return body.checks.transports.find((check) => check.scheme === scheme);
}

/** Polls /health/ready until it answers `status` and `accept` holds for its body; the last answer. */
async function readiness(server: RunningConsole, status: 200 | 503, accept: (body: Health['ready']) => boolean, timeoutMs: number): Promise<Health['ready']> {
  let last: { status: number; body: Health['ready'] } | undefined;
  await until(
    async () => {
      last = await ready(server);
      return last.status === status && accept(last.body);
    },
    () => `/health/ready never answered ${status} as expected; last: ${JSON.stringify(last)}`,
    timeoutMs,
  );
  return (last as { body: Health['ready'] }).body;
}

it('/health/ready turns unready while RabbitMQ, then Mosquitto, is down, and ready again after; transport metrics follow', async () => {
  const started = Date.now();
  broker = new OwnMosquitto(await freePort(), false);
  await broker.start();
  const queue = uniqueName('health');
  admin.track({ queues: [queue] });
  const integration = createIntegration({
    logger: silentLogger,
    modules: [
      amqpModule({ url: 'amqp://guest:guest@127.0.0.1:5672', topology: { queues: [{ name: queue }] }, reconnect: { initialDelayMs: 100, maxDelayMs: 1_000 } }),
      mqttModule({ url: broker.url, clientId: runClientId('health'), sessionExpirySeconds: 600, reconnect: { initialDelayMs: 50, maxDelayMs: 1_000 } }),
    ],
    routes: [from(`amqp:queue/${queue}`, { id: 'from-rabbit' }).to('memory:from-rabbit'), from('mqtt:health/+device?qos=1', { id: 'from-mqtt' }).to('memory:from-mqtt')],
  });
  const metrics = createPrometheusMetrics(integration, { defaultMetrics: false });
  const server = await startConsole(integration, { port: 0, metrics });
  let rabbitStopped = false;
  try {
    await integration.start();
    const first = await readiness(server, 200, () => true, 15_000);
    expect(first.status).toBe('ready');
    expect(transportCheck(first, 'amqp')).toMatchObject({ state: 'connected', ok: true });
    expect(transportCheck(first, 'mqtt')).toMatchObject({ state: 'connected', ok: true });
    expect(await metric(server, 'interchange_transport_up', 'amqp')).toBe(1);
    expect(await metric(server, 'interchange_transport_up', 'mqtt')).toBe(1);
    // a clean start (the MQTT consumer connecting after the publisher) counts no reconnect
    expect(await metric(server, 'interchange_transport_reconnects_total', 'mqtt')).toBe(0);

    // RabbitMQ down → unready, the amqp check not ok and its state named
    const stopping = rabbitmqctlAsync('stop_app');
    rabbitStopped = true;
    const amqpDown = await readiness(server, 503, (body) => transportCheck(body, 'amqp')?.ok === false, 60_000);
    await stopping;
    expect(amqpDown.status).toBe('unready');
    expect(transportCheck(amqpDown, 'amqp')?.state).toMatch(/^(reconnecting|connecting)$/);
    expect(transportCheck(amqpDown, 'mqtt')).toMatchObject({ state: 'connected', ok: true });
    expect(await metric(server, 'interchange_transport_up', 'amqp')).toBe(0);
    const rabbitDownFor = Date.now();

    // RabbitMQ back → ready again, after the adapter's reconnect backoff
    await ensureRabbitRunningAsync();
    rabbitStopped = false;
    const amqpBack = await readiness(server, 200, () => true, 60_000);
    expect(transportCheck(amqpBack, 'amqp')).toMatchObject({ state: 'connected', ok: true });
    expect(await metric(server, 'interchange_transport_up', 'amqp')).toBe(1);
    expect(await metric(server, 'interchange_transport_reconnects_total', 'amqp')).toBeGreaterThanOrEqual(1);
    const rabbitBackAfter = Date.now() - rabbitDownFor;

    // Mosquitto killed → unready with the mqtt check not ok; restarted → ready
    await broker.stop();
    // the lost connection's close carries no error: the next attempt's (connection refused) is the lastError
    const mqttDown = await readiness(server, 503, (body) => transportCheck(body, 'mqtt')?.lastError !== undefined, 10_000);
    expect(mqttDown.status).toBe('unready');
    expect(transportCheck(mqttDown, 'mqtt')).toMatchObject({ state: 'reconnecting', ok: false });
    expect(transportCheck(mqttDown, 'mqtt')?.lastError).toMatch(/ECONNREFUSED|disconnected/);
    expect(transportCheck(mqttDown, 'amqp')).toMatchObject({ state: 'connected', ok: true });
    expect(await metric(server, 'interchange_transport_up', 'mqtt')).toBe(0);
    await broker.start();
    const mqttBack = await readiness(server, 200, () => true, 15_000);
    expect(transportCheck(mqttBack, 'mqtt')).toMatchObject({ state: 'connected', ok: true });
    expect(await metric(server, 'interchange_transport_up', 'mqtt')).toBe(1);
    expect(await metric(server, 'interchange_transport_reconnects_total', 'mqtt')).toBeGreaterThanOrEqual(1);
    console.log(`console-health: RabbitMQ back to ready ${rabbitBackAfter} ms after start_app began; whole outage test ${Date.now() - started} ms`);
  } finally {
    if (rabbitStopped) await ensureRabbitRunningAsync();
    await integration.stop();
    await server.close();
    metrics.close();
  }
});
