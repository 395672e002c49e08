import { randomBytes } from 'node:crypto';
import mqtt, { type MqttClient } from 'mqtt';
import { expect } from 'vitest';
import { createIntegration, silentLogger, type Integration, type Message } from '../../facade/index.ts';
import { parseEndpoint } from '../../src/spi.ts';
import type { Container } from 'inversify';
import type { BackendReadingV1 } from '../../schemas/types.generated.ts';
import { flowModules, flowNames, flowRoutes, type FlowEnvironment, type FlowModules, type FlowNames, type FlowOptions, type FlowTransportOptions } from '../../examples/mqtt-to-amqp/flow.ts';
import type { MqttTransport } from '../../adapters/mqtt/index.ts';
import { fahrenheit, type DeviceSummary } from '../../examples/mqtt-to-amqp/telemetry.ts';

/**
 * The flagship under test: the example's own routes and modules, under names unique to the test
 * (`flowNames(prefix)`: exchanges, queues and the MQTT topic filter), with short-lived MQTT sessions.
 */
export interface RunningFlow {
  readonly app: Integration & { readonly container: Container };
  readonly names: FlowNames;
  readonly flow: FlowModules;
  readonly mqtt: MqttTransport;
  stop(): Promise<void>;
}

/** `fl<random>-`: a prefix for one test's names. */
export function uniquePrefix(label: string): string {
  return `fl-${label}-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}-`;
}

/**
 * Starts the flow. With one consumer, its MQTT session (and subscription) is created before the routes
 * run, so nothing a test publishes right after `start` resolves is dropped by the broker.
 */
export async function startFlow(prefix: string, environment: FlowEnvironment, options: FlowOptions = {}, transports: FlowTransportOptions = {}): Promise<RunningFlow> {
  const names = flowNames(prefix);
  const flow = flowModules(names, { ...environment, mqttClientId: `${prefix}flow`.slice(0, 40) }, {
    mqtt: { sessionExpirySeconds: 600, connectTimeoutMs: 5_000, reconnect: { initialDelayMs: 50, maxDelayMs: 1_000 }, ...transports.mqtt },
    amqp: { connectTimeoutMs: 5_000, reconnect: { initialDelayMs: 100, maxDelayMs: 1_000 }, ...transports.amqp },
  });
  const app = createIntegration({ logger: silentLogger, modules: flow.modules, routes: flowRoutes({ names, ...options }) });
  const transport = app.transport<MqttTransport>('mqtt');
  await transport.connect(); // starts the embedded broker, if that is the one
  // a shared subscription's members subscribe as they connect: such tests wait for each member instead
  if ((options.consumers ?? 1) === 1) await transport.provision(parseEndpoint(`mqtt:${names.telemetryTopic}?qos=1`));
  await app.start();
  return { app, names, flow, mqtt: transport, stop: () => app.stop({ drainTimeoutMs: 30_000 }) };
}

export type InvalidKind = 'bad-json' | 'schema' | 'mismatch';

/** One MQTT message of the end-to-end run, and what the flow must make of it. */
export interface E2eMessage {
  readonly id: string;
  readonly topic: string;
  readonly payload: Buffer;
  /** The reading the back end must get, for a valid message. */
  readonly reading?: BackendReadingV1;
  readonly invalid?: InvalidKind;
}

/** The error code the dead letter of each kind of invalid message carries. */
export const INVALID_CODES: Readonly<Record<InvalidKind, string>> = { 'bad-json': 'PAYLOAD_UNPARSEABLE', schema: 'SCHEMA_INVALID', mismatch: 'DEVICE_MISMATCH' };

const BASE_TS = Date.UTC(2026, 0, 1);

/** The temperature of device `d`'s reading `i`: rising with `i`, so a group's min is at its `from` and its max at its `to`. */
export const temperatureOf = (device: number, index: number): number => (device % 10) * 5 + index * 0.5;
export const timestampOf = (device: number, index: number): number => BASE_TS + index * 1_000 + device;
export const deviceId = (device: number): string => `dev-${String(device).padStart(3, '0')}`;

/**
 * `devices × perDevice` valid messages, round-robin over the devices (each device's readings in
 * order), with `invalid` invalid ones spread evenly — bad JSON, schema violations and topic/body
 * device id mismatches in turn. Ids (MQTT 5 user property `message-id`) are `v-<device>-<i>` and `x-<n>`.
 */
export function e2eMessages(topicPrefix: string, { devices = 50, perDevice = 100, invalid = 100 } = {}): E2eMessage[] {
  const topic = (device: number): string => `${topicPrefix}/devices/${deviceId(device)}/telemetry`;
  const valid: E2eMessage[] = [];
  for (let index = 0; index < perDevice; index += 1) {
    for (let device = 0; device < devices; device += 1) {
      const temperatureC = temperatureOf(device, index);
      const timestamp = timestampOf(device, index);
      const telemetry: Record<string, unknown> = { deviceId: deviceId(device), ts: new Date(timestamp).toISOString(), temperature: temperatureC };
      const reading: { -readonly [K in keyof BackendReadingV1]: BackendReadingV1[K] } = { deviceId: deviceId(device), timestamp, temperatureC, temperatureF: fahrenheit(temperatureC) };
      if (index % 3 === 0) telemetry.humidity = reading.humidity = 40 + (index % 20);
      if (index % 4 === 0) telemetry.battery = reading.battery = 100 - index / 2;
      valid.push({ id: `v-${device}-${index}`, topic: topic(device), payload: Buffer.from(JSON.stringify(telemetry)), reading });
    }
  }
  const all: E2eMessage[] = [];
  const every = Math.max(1, Math.floor(valid.length / Math.max(1, invalid)));
  let bad = 0;
  valid.forEach((message, position) => {
    all.push(message);
    if (bad < invalid && position % every === every - 1) all.push(invalidMessage(bad++, devices, topic));
  });
  while (bad < invalid) all.push(invalidMessage(bad++, devices, topic));
  return all;
}

function invalidMessage(n: number, devices: number, topic: (device: number) => string): E2eMessage {
  const kind = (['bad-json', 'schema', 'mismatch'] as const)[n % 3] as InvalidKind;
  const device = n % devices;
  const ts = new Date(BASE_TS).toISOString();
  const payload =
    kind === 'bad-json'
      ? `{"deviceId":"${deviceId(device)}","n":${n},"temperature":`
      : kind === 'schema'
        ? JSON.stringify({ deviceId: deviceId(device), ts, temperature: `${n} degrees` })
        : JSON.stringify({ deviceId: deviceId((device + 1) % devices), ts, temperature: n });
  return { id: `x-${n}`, topic: topic(device), payload: Buffer.from(payload), invalid: kind };
}

/**
 * Publishes at QoS 1 over MQTT 5 (id in the `message-id` user property), keeping at most `maxAhead`
 * messages published but not yet taken by the flow (`taken()`), so a broker's per-subscriber queue
 * limit (Mosquitto's max_queued_messages, 1,000 by default) is never reached. Resolves once every
 * message is acknowledged by the broker.
 */
export async function publishPaced(url: string, messages: readonly E2eMessage[], taken: () => number, { maxAhead = 400, onPublished }: { maxAhead?: number; onPublished?: (count: number) => void } = {}): Promise<void> {
  const client: MqttClient = await mqtt.connectAsync(url, { protocolVersion: 5, clean: true, connectTimeout: 5_000, reconnectPeriod: 500, clientId: `fl-pub-${process.pid}-${randomBytes(3).toString('hex')}` });
  try {
    let published = 0;
    const pending: Promise<unknown>[] = [];
    for (const message of messages) {
      while (published - taken() >= maxAhead) await new Promise((resolve) => setTimeout(resolve, 5));
      pending.push(client.publishAsync(message.topic, message.payload, { qos: 1, properties: { userProperties: { 'message-id': message.id } } }));
      published += 1;
      onPublished?.(published);
      if (pending.length >= 200) await Promise.all(pending.splice(0));
    }
    await Promise.all(pending);
  } finally {
    await client.endAsync();
  }
}

/** What came out of the four queues. */
export interface FlowOutput {
  readonly readings: readonly Message[];
  readonly alerts: readonly Message[];
  readonly summaries: readonly Message[];
  readonly invalid: readonly Message[];
}

/** A reading's identity in a run: its device and timestamp (ids are the bridge's own, not the device's). */
export const readingKey = (reading: Pick<BackendReadingV1, 'deviceId' | 'timestamp'>): string => `${reading.deviceId}@${reading.timestamp}`;

/**
 * Checks every reading and alert against what was sent: each valid message arrived (by device and
 * timestamp — the bridge gives readings ids of its own) with exactly the translated body, on the right
 * queue, with `x-schema`, JSON and a correlation id equal to its own id. Returns how many arrived
 * more than once (duplicates: allowed after a broker restart, never silently) and the ids sent that
 * are missing (lost).
 */
export function checkReadings(sent: readonly E2eMessage[], output: Pick<FlowOutput, 'readings' | 'alerts'>): { readonly duplicates: number; readonly missing: readonly string[] } {
  const expected = new Map(sent.filter((message) => message.reading !== undefined).map((message) => [readingKey(message.reading as BackendReadingV1), message]));
  const seen = new Map<string, number>();
  for (const [queue, messages] of [['alerts', output.alerts], ['readings', output.readings]] as const) {
    for (const message of messages) {
      const key = readingKey(message.body as BackendReadingV1);
      const reading = expected.get(key)?.reading;
      expect(reading, `unexpected reading ${key} in ${queue}`).toBeDefined();
      expect(message.body).toEqual(reading);
      expect(queue).toBe((reading as BackendReadingV1).temperatureC >= 50 ? 'alerts' : 'readings');
      expect(message.headers).toMatchObject({ 'x-schema': 'backend.reading@1', contentType: 'application/json', correlationId: message.id });
      seen.set(key, (seen.get(key) ?? 0) + 1);
    }
  }
  const duplicates = [...seen.values()].reduce((sum, count) => sum + count - 1, 0);
  return { duplicates, missing: [...expected].filter(([key]) => !seen.has(key)).map(([, message]) => message.id) };
}

/** Every dead letter is one of the invalid messages sent: its original bytes, the reason, the topic. */
export function checkInvalid(sent: readonly E2eMessage[], invalid: readonly Message[]): Set<string> {
  const byPayload = new Map(sent.filter((message) => message.invalid !== undefined).map((message) => [message.payload.toString('base64'), message]));
  const found = new Set<string>();
  for (const message of invalid) {
    expect(Buffer.isBuffer(message.body), 'a dead letter carries the original payload bytes').toBe(true);
    const original = byPayload.get((message.body as Buffer).toString('base64'));
    expect(original, `dead letter with unknown body ${String(message.body)}`).toBeDefined();
    const { invalid: kind, topic } = original as E2eMessage;
    expect(message.headers['x-interchange-error-code']).toBe(INVALID_CODES[kind as InvalidKind]);
    expect(String(message.headers['x-interchange-error'])).not.toBe('');
    expect(message.headers['x-mqtt-topic']).toBe(topic);
    found.add((original as E2eMessage).id);
  }
  return found;
}

/**
 * Checks the summaries: per device, groups of `size` covering all its readings; each summary's min at
 * its `from` and max at its `to` (temperatures rise with time), its average within them, and the
 * averages adding up to the device's total.
 */
export function checkSummaries(summaries: readonly Message[], { devices = 50, perDevice = 100, size = 10 } = {}): void {
  const byDevice = new Map<string, DeviceSummary[]>();
  for (const message of summaries) {
    const summary = message.body as DeviceSummary;
    byDevice.set(summary.deviceId, [...(byDevice.get(summary.deviceId) ?? []), summary]);
  }
  expect(byDevice.size).toBe(devices);
  for (let device = 0; device < devices; device += 1) {
    const list = byDevice.get(deviceId(device)) ?? [];
    expect(list).toHaveLength(perDevice / size);
    const indexOf = (timestamp: number): number => (timestamp - device - BASE_TS) / 1_000;
    let total = 0;
    for (const summary of list) {
      expect(summary.count).toBe(size);
      expect(summary.minC).toBe(temperatureOf(device, indexOf(summary.from)));
      expect(summary.maxC).toBe(temperatureOf(device, indexOf(summary.to)));
      expect(summary.avgC).toBeGreaterThanOrEqual(summary.minC);
      expect(summary.avgC).toBeLessThanOrEqual(summary.maxC);
      total += summary.avgC * summary.count;
    }
    const expectedTotal = Array.from({ length: perDevice }, (_, index) => temperatureOf(device, index)).reduce((sum, value) => sum + value, 0);
    expect(total).toBeCloseTo(expectedTotal, 6);
  }
}
