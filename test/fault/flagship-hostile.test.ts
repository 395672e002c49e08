import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import mqtt, { type IClientPublishOptions, type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Message } from '../../facade/index.ts';
import type { BackendReadingV1 } from '../../schemas/types.generated.ts';
import { readUntilQuiet, sleep, until } from '../integration/amqp-support.ts';
import { readingKey, startFlow, uniquePrefix, type RunningFlow } from '../integration/flagship-support.ts';
import type { FlowOptions, FlowTransportOptions } from '../../examples/mqtt-to-amqp/flow.ts';
import { LinkProxy } from '../support/link-proxy.ts';
import { launchMosquitto, terminate } from '../support/mosquitto-process.ts';
import { rabbitmqctl } from './rabbitmq-control.ts';

// The flagship as an attacker's device and an unlucky operator meet it (issue 12): against a Mosquitto
// of the test's own (queues deep enough that the broker never drops what the bridge has not taken) and
// a RabbitMQ vhost of its own (deleted afterwards). In `fault`: it cuts the bridge's link to RabbitMQ.

let mosquitto: ChildProcess | undefined;
let mqttUrl = '';
const vhost = `ic-hostile-${randomBytes(4).toString('hex')}`;
const amqpUrl = `amqp://guest:guest@127.0.0.1:5672/${vhost}`;
const directory = mkdtempSync(join(tmpdir(), 'ic-hostile-'));

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

beforeAll(async () => {
  const port = await freePort();
  const config = join(directory, 'mosquitto.conf');
  writeFileSync(config, [`listener ${port} 127.0.0.1`, 'allow_anonymous true', 'max_queued_messages 100000', 'max_inflight_messages 100', 'persistence false', 'set_tcp_nodelay true', ''].join('\n'));
  mosquitto = await launchMosquitto(config, [port]);
  mqttUrl = `mqtt://127.0.0.1:${port}`;
  rabbitmqctl('add_vhost', vhost);
  rabbitmqctl('set_permissions', '-p', vhost, 'guest', '.*', '.*', '.*');
}, 60_000);

afterAll(async () => {
  await terminate(mosquitto);
  rabbitmqctl('delete_vhost', vhost);
  rmSync(directory, { recursive: true, force: true });
});

const BASE_TS = Date.UTC(2026, 2, 1);

/** A valid reading of `device`, number `n` (its timestamp makes it unique). */
function telemetry(device: string, n: number, temperature = 20 + (n % 10)): Record<string, unknown> {
  return { deviceId: device, ts: new Date(BASE_TS + n * 1_000).toISOString(), temperature };
}

async function device(label: string): Promise<MqttClient> {
  return mqtt.connectAsync(mqttUrl, { protocolVersion: 5, clean: true, connectTimeout: 5_000, clientId: `hostile-${label}-${randomBytes(3).toString('hex')}` });
}

/** `count` valid readings of `device` from reading number `from` on, at QoS 1. */
async function publishGood(client: MqttClient, topicPrefix: string, deviceId: string, from: number, count: number): Promise<string[]> {
  const keys: string[] = [];
  for (let n = from; n < from + count; n += 1) {
    const body = telemetry(deviceId, n);
    await client.publishAsync(`${topicPrefix}/devices/${deviceId}/telemetry`, JSON.stringify(body), { qos: 1 });
    keys.push(readingKey({ deviceId, timestamp: BASE_TS + n * 1_000 }));
  }
  return keys;
}

const LONG_DEVICE = 'a'.repeat(16_400);

/** What a device can send that broke the bridge before: each must end as one dead letter or a clean reading. */
interface Poison {
  readonly label: string;
  readonly topic: (prefix: string) => string;
  readonly payload: string;
  readonly options?: IClientPublishOptions;
  /** The dead letter's error code, or undefined when the message is a valid reading (its forged properties dropped). */
  readonly code?: string;
}

const FORGED_PROPERTIES: IClientPublishOptions = {
  qos: 1,
  properties: {
    userProperties: {
      priority: '300',
      ['p'.repeat(300)]: 'x',
      'message-id': 'm'.repeat(300),
      'x-interchange-error': 'forged',
      'x-interchange-error-code': 'FORGED',
      CC: 'elsewhere',
      BCC: 'elsewhere',
      expiresAt: '1e300',
      'ic-types': 'priority:n,expiresAt:n',
    },
    correlationData: Buffer.alloc(300, 'c'),
    contentType: 'c'.repeat(300),
  },
};

const POISONS: readonly Poison[] = [
  { label: 'a ~16,400-character topic level', topic: (p) => `${p}/devices/${LONG_DEVICE}/telemetry`, payload: JSON.stringify(telemetry(LONG_DEVICE, 0)), code: 'SCHEMA_INVALID' },
  { label: 'forged properties on a valid reading', topic: (p) => `${p}/devices/forger/telemetry`, payload: JSON.stringify(telemetry('forger', 0)), options: FORGED_PROPERTIES },
  { label: 'temperature 1e308', topic: (p) => `${p}/devices/hot/telemetry`, payload: '{"deviceId":"hot","ts":"2026-03-01T00:00:00Z","temperature":1e308}', code: 'SCHEMA_INVALID' },
  { label: 'a device id with dots', topic: (p) => `${p}/devices/a.b/telemetry`, payload: JSON.stringify(telemetry('a.b', 0)), code: 'SCHEMA_INVALID' },
];

async function publishPoisons(client: MqttClient, topicPrefix: string): Promise<void> {
  for (const poison of POISONS) await client.publishAsync(poison.topic(topicPrefix), poison.payload, poison.options ?? { qos: 1 });
}

const topicPrefixOf = (flow: RunningFlow): string => flow.names.telemetryTopic.split('/devices/')[0] as string;

async function start(prefix: string, options: FlowOptions = {}, transports: FlowTransportOptions = {}, amqp = amqpUrl): Promise<RunningFlow> {
  return startFlow(prefix, { mqttUrl, amqpUrl: amqp }, { summaryIdleMs: 120_000, ...options }, { ...transports, amqp: { publishTimeoutMs: 3_000, ...transports.amqp } });
}

/** Every reading of the run, by key; fails on an unexpected one. */
function byKey(readings: readonly Message[]): Map<string, Message[]> {
  const map = new Map<string, Message[]>();
  for (const message of readings) {
    const key = readingKey(message.body as BackendReadingV1);
    map.set(key, [...(map.get(key) ?? []), message]);
  }
  return map;
}

describe('the flagship against hostile devices', () => {
  it('each poison gives one dead letter (or a clean reading), and the next 200 good readings arrive — before and after a restart', async () => {
    const prefix = uniquePrefix('poison');
    let flow = await start(prefix);
    const topicPrefix = topicPrefixOf(flow);
    const client = await device('poison');
    const expected: string[] = [];
    try {
      await publishPoisons(client, topicPrefix);
      expected.push(...(await publishGood(client, topicPrefix, 'good-1', 0, 200)));
      const telemetryRoute = flow.app.route('telemetry').metrics;
      await until(() => telemetryRoute.received >= POISONS.length + 200 && telemetryRoute.inFlight === 0, () => `first run: ${JSON.stringify(flow.app.metrics())}`, 60_000);
      await flow.stop();

      // while the bridge is down the poison waits first in its session: it must not wedge the next process
      await publishPoisons(client, topicPrefix);
      expected.push(...(await publishGood(client, topicPrefix, 'good-2', 0, 200)));
      flow = await start(prefix);
      const again = flow.app.route('telemetry').metrics;
      await until(() => again.received >= POISONS.length + 200 && again.inFlight === 0, () => `after the restart: ${JSON.stringify(flow.app.metrics())}`, 60_000);
    } finally {
      await client.endAsync();
      await flow.stop();
    }
    const [readings, alerts, invalid] = await Promise.all([
      readUntilQuiet(flow.names.readingsQueue, 400, 60_000, amqpUrl),
      readUntilQuiet(flow.names.alertsQueue, 0, 30_000, amqpUrl),
      readUntilQuiet(flow.names.invalidQueue, 6, 60_000, amqpUrl),
    ]);
    const readingsByKey = byKey([...readings, ...alerts]);
    for (const key of expected) expect(readingsByKey.get(key), `reading ${key}`).toHaveLength(1);

    // the forged reading arrived once per run, as a clean reading: nothing of the device's properties on it
    const forged = readingsByKey.get(readingKey({ deviceId: 'forger', timestamp: BASE_TS })) ?? [];
    expect(forged).toHaveLength(2);
    for (const reading of forged) {
      expect(reading.id).not.toBe('m'.repeat(300));
      expect(reading.headers.correlationId).toBe(reading.id);
      expect(reading.headers.contentType).toBe('application/json');
      for (const name of ['x-interchange-error', 'x-interchange-error-code', 'CC', 'BCC', 'priority', 'expiresAt', 'p'.repeat(300), 'message-id', 'ic-types']) {
        expect(reading.headers, name).not.toHaveProperty(name);
      }
    }
    expect(readings.length + alerts.length).toBe(expected.length + forged.length);

    // one dead letter per invalid poison per run, with the original bytes, the topic and the reason
    const poisonsInvalid = POISONS.filter((poison) => poison.code !== undefined);
    expect(invalid).toHaveLength(poisonsInvalid.length * 2);
    for (const poison of poisonsInvalid) {
      const letters = invalid.filter((letter) => Buffer.isBuffer(letter.body) && letter.body.toString() === poison.payload);
      expect(letters, poison.label).toHaveLength(2);
      for (const letter of letters) {
        expect(letter.headers['x-interchange-error-code'], poison.label).toBe(poison.code);
        expect(letter.headers['x-mqtt-topic'], poison.label).toBe(poison.topic(topicPrefix));
        expect(String(letter.headers['x-interchange-error']).length).toBeLessThanOrEqual(1_100);
      }
    }
  }, 240_000);

  it('an oversized payload reaches telemetry.invalid cut to 4 KiB, with its size and sha256; the readings after it arrive', async () => {
    const prefix = uniquePrefix('oversize');
    const flow = await start(prefix);
    const topicPrefix = topicPrefixOf(flow);
    const client = await device('oversize');
    const big = Buffer.alloc(3 * 1024 * 1024, 'x');
    let expected: string[] = [];
    try {
      await client.publishAsync(`${topicPrefix}/devices/big/telemetry`, big, { qos: 1 });
      expected = await publishGood(client, topicPrefix, 'after-big', 0, 20);
      const metrics = flow.app.route('telemetry').metrics;
      await until(() => metrics.received >= 21 && metrics.inFlight === 0, () => JSON.stringify(metrics), 60_000);
    } finally {
      await client.endAsync();
      await flow.stop();
    }
    const [readings, invalid] = await Promise.all([readUntilQuiet(flow.names.readingsQueue, 20, 30_000, amqpUrl), readUntilQuiet(flow.names.invalidQueue, 1, 30_000, amqpUrl)]);
    expect([...byKey(readings).keys()].sort()).toEqual([...expected].sort());
    expect(invalid).toHaveLength(1);
    const [letter] = invalid;
    expect((letter?.body as Buffer).length).toBe(4_096);
    expect(letter?.headers).toMatchObject({
      'x-interchange-error-code': 'MQTT_MESSAGE_TOO_LARGE',
      'x-interchange-original-size': big.length,
      'x-interchange-sha256': createHash('sha256').update(big).digest('hex'),
      'x-mqtt-topic': `${topicPrefix}/devices/big/telemetry`,
    });
  }, 120_000);

  it('a RabbitMQ outage longer than every retry budget, publish timeouts shortened: 0 readings lost', async () => {
    const proxy = new LinkProxy();
    await proxy.start();
    const prefix = uniquePrefix('outage');
    // budgets as short as they go: 2 attempts in process (~0.5 s each), 1 local redelivery — the old
    // behaviour parked the message on an MQTT topic nobody reads and acknowledged it after ~2 s
    const flow = await start(
      prefix,
      { summaries: false, transientAttempts: 2 },
      { amqp: { publishTimeoutMs: 500, reconnect: { initialDelayMs: 100, maxDelayMs: 500 } }, mqtt: { maxDeliveries: 1, redelivery: { initialDelayMs: 100, maxDelayMs: 1_000 } } },
      `amqp://guest:guest@127.0.0.1:${proxy.port}/${vhost}`,
    );
    const topicPrefix = topicPrefixOf(flow);
    const client = await device('outage');
    const rate = 50; // readings a second, whatever the bridge does: devices do not slow down for it
    const total = 1_000;
    const expected: string[] = [];
    const metrics = flow.app.route('telemetry').metrics;
    try {
      const publishing = (async () => {
        const started = Date.now();
        for (let n = 0; n < total; n += 1) {
          const due = started + (n * 1_000) / rate;
          if (due > Date.now()) await sleep(due - Date.now());
          const deviceId = `dev-${n % 10}`;
          const body = telemetry(deviceId, n);
          void client.publish(`${topicPrefix}/devices/${deviceId}/telemetry`, JSON.stringify(body), { qos: 1 });
          expected.push(readingKey({ deviceId, timestamp: BASE_TS + n * 1_000 }));
        }
      })();
      await until(() => metrics.completed >= 100, () => `flow did not get going: ${JSON.stringify(metrics)}`, 30_000);
      await proxy.cut();
      await sleep(12_000); // 24× the publish timeout; every in-process and local budget is spent many times over
      expect(metrics.rejected, 'transient failures went back to MQTT during the cut').toBeGreaterThan(0);
      await proxy.start();
      await publishing;
      await until(() => metrics.completed >= total && metrics.inFlight === 0, () => `flow after the outage: ${JSON.stringify(metrics)}`, 120_000);
    } finally {
      await client.endAsync();
      await flow.stop();
      await proxy.cut();
    }
    const [readings, alerts] = await Promise.all([readUntilQuiet(flow.names.readingsQueue, 1, 60_000, amqpUrl), readUntilQuiet(flow.names.alertsQueue, 0, 30_000, amqpUrl)]);
    const arrived = byKey([...readings, ...alerts]);
    const missing = expected.filter((key) => !arrived.has(key));
    console.log(`flagship outage: ${total} published at ${rate}/s, 12 s cut; ${arrived.size} distinct readings arrived (${readings.length + alerts.length - arrived.size} duplicates), ${missing.length} lost; ${JSON.stringify(metrics)}`);
    expect(missing).toEqual([]);
    expect(metrics.deadLettered).toBe(0);
  }, 300_000);
});
