/**
 * What the flagship's durability tests share: devices that publish at their own fixed rate (never
 * slowing down for the bridge), the bridge as the real CLI process (SIGKILL-able), the durable
 * buffer's depth read off its live lines, Mosquitto's log, and the per-device summary totals.
 */
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import mqtt from 'mqtt';
import { afterAll, afterEach, beforeAll, expect } from 'vitest';
import type { Message } from '../../src/core/index.ts';
import type { DeviceSummary } from '../../examples/mqtt-to-amqp/telemetry.ts';
import { cli, killCliProcesses, type CliRun } from '../support/cli-process.ts';
import { BrokerAdmin, readUntilQuiet } from '../integration/amqp-support.ts';
import { launchMosquitto, terminate } from '../support/mosquitto-process.ts';
import { deviceId, temperatureOf, timestampOf, type E2eMessage } from '../integration/flagship-support.ts';

export interface FixedRatePublisher {
  /** Messages handed to the MQTT client so far. */
  readonly published: () => number;
  /** Resolves once every message is published and acknowledged by the broker (PUBACK). */
  readonly done: Promise<void>;
  /**
   * The most messages that were ever due at once when a tick came (about rate × 10 ms when the clock
   * is kept): a large figure means this process paused and the devices then published in a burst.
   */
  readonly largestBurst: () => number;
}

/**
 * Publishes `messages` at QoS 1 (MQTT 3.1.1, as `mosquitto_pub` and most devices do) at `ratePerSecond`,
 * on the clock: each 10 ms tick sends what the schedule says is due, whatever the broker or the
 * bridge is doing — a device does not wait for its readings to be taken.
 */
export function publishAtFixedRate(url: string, messages: readonly E2eMessage[], ratePerSecond: number): FixedRatePublisher {
  let published = 0;
  let largestBurst = 0;
  const done = (async () => {
    const client = await mqtt.connectAsync(url, { protocolVersion: 4, clean: true, connectTimeout: 5_000, reconnectPeriod: 500, clientId: `fixed-rate-${process.pid}-${randomBytes(3).toString('hex')}` });
    try {
      const acknowledged: Promise<unknown>[] = [];
      const started = performance.now();
      while (published < messages.length) {
        const due = Math.min(messages.length, Math.floor(((performance.now() - started) / 1000) * ratePerSecond));
        largestBurst = Math.max(largestBurst, due - published);
        for (; published < due; published += 1) {
          const message = messages[published] as E2eMessage;
          acknowledged.push(client.publishAsync(message.topic, message.payload, { qos: 1 }));
        }
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      await Promise.all(acknowledged);
    } finally {
      await client.endAsync();
    }
  })();
  return { published: () => published, done, largestBurst: () => largestBurst };
}

/** A fresh directory for one bridge's state (its buffer, its embedded PGlite). */
export function stateDirectory(label: string): string {
  return mkdtempSync(join(tmpdir(), `interchange-${label}-`));
}

/** The flagship as `npm start` runs it — the real CLI process — with the environment a test gives. */
export function startBridge(env: Readonly<Record<string, string>>): CliRun {
  return cli(['run', 'examples/mqtt-to-amqp/route.ts'], { ...process.env, SIMULATE: '0', ...env });
}

/** Waits until the bridge has started its routes and announced what it uses (its last announcement names the summaries' store). */
export async function bridgeStarted(run: CliRun): Promise<void> {
  await run.waitForStdout(/mqtt-to-amqp: summaries: .*\n/);
}

/** Every depth the bridge's live lines showed for `uri`, in order. */
export function depthsShown(run: CliRun, uri: string): number[] {
  const pattern = new RegExp(`^${uri.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}  depth (\\d+)`, 'gm');
  return [...run.stdout().matchAll(pattern)].map((match) => Number(match[1]));
}

export const MOSQUITTO_LOG = '/var/log/mosquitto/mosquitto.log';

/** Where the shared Mosquitto's log ends now: read what it logs from here on with `mosquittoLogSince`. */
export function mosquittoLogOffset(): number {
  return statSync(MOSQUITTO_LOG).size;
}

export function mosquittoLogSince(offset: number): string {
  return readFileSync(MOSQUITTO_LOG).subarray(offset).toString('utf8');
}

/**
 * Checks the summaries of `devices × perDevice` readings: each distinct summary (by message id — a
 * summary published twice is one summary, counted in `duplicates`) is consistent — temperatures rise
 * with time, so its min is the temperature at its `from` and its max at its `to` — and per device the
 * summaries add up exactly: the counts to `perDevice` (every reading folded once: none lost, none
 * twice), the sums of temperatures to the device's total, the lowest min and highest max to its
 * first and last reading.
 */
export function checkSummaryTotals(summaries: readonly Message[], { devices, perDevice, size }: { readonly devices: number; readonly perDevice: number; readonly size: number }): { readonly duplicates: number; readonly distinct: number } {
  const distinct = new Map<string, DeviceSummary>();
  for (const message of summaries) distinct.set(message.id, message.body as DeviceSummary);
  const byDevice = new Map<string, DeviceSummary[]>();
  for (const summary of distinct.values()) byDevice.set(summary.deviceId, [...(byDevice.get(summary.deviceId) ?? []), summary]);
  expect(byDevice.size).toBe(devices);
  for (let device = 0; device < devices; device += 1) {
    const list = byDevice.get(deviceId(device)) ?? [];
    const indexOf = (timestamp: number): number => (timestamp - timestampOf(device, 0)) / 1_000;
    let count = 0;
    let total = 0;
    for (const summary of list) {
      expect(summary.count).toBeGreaterThanOrEqual(1);
      expect(summary.count).toBeLessThanOrEqual(size);
      expect(summary.minC).toBe(temperatureOf(device, indexOf(summary.from)));
      expect(summary.maxC).toBe(temperatureOf(device, indexOf(summary.to)));
      expect(summary.avgC).toBeGreaterThanOrEqual(summary.minC);
      expect(summary.avgC).toBeLessThanOrEqual(summary.maxC);
      count += summary.count;
      total += summary.avgC * summary.count;
    }
    expect(count, `readings folded into ${deviceId(device)}'s summaries`).toBe(perDevice);
    const expectedTotal = Array.from({ length: perDevice }, (_, index) => temperatureOf(device, index)).reduce((sum, value) => sum + value, 0);
    const ranges = (): string => list.map((summary) => `${indexOf(summary.from)}..${indexOf(summary.to)}×${summary.count}`).join(' ');
    expect(total, `${deviceId(device)}'s summaries fold other readings than its own, once each: ${ranges()}`).toBeCloseTo(expectedTotal, 6);
    expect(Math.min(...list.map((summary) => summary.minC))).toBe(temperatureOf(device, 0));
    expect(Math.max(...list.map((summary) => summary.maxC))).toBe(temperatureOf(device, perDevice - 1));
  }
  return { duplicates: summaries.length - distinct.size, distinct: distinct.size };
}

/**
 * Reads `queue` (acking) until `enough` says what has arrived so far is complete, or `timeoutMs`
 * passes: for outputs that trickle in late (summaries re-published after a crashed instance's lease).
 */
export async function collectUntil(queue: string, enough: (messages: readonly Message[]) => boolean, timeoutMs: number): Promise<Message[]> {
  const got: Message[] = [];
  const deadline = Date.now() + timeoutMs;
  while (!enough(got) && Date.now() < deadline) got.push(...(await readUntilQuiet(queue, 0, 30_000)));
  return got;
}

/** How many readings the distinct summaries (by id) fold, over every device. */
export function foldedReadings(summaries: readonly Message[]): number {
  const distinct = new Map<string, number>();
  for (const message of summaries) distinct.set(message.id, (message.body as DeviceSummary).count);
  return [...distinct.values()].reduce((sum, count) => sum + count, 0);
}

/**
 * A Mosquitto of the test's own, on a free loopback port, with room for every queued message (the
 * crash tests' broker is not under test: it must not drop what waits for a killed bridge).
 * Returns its URL and how to stop it.
 */
export async function startRoomyMosquitto(directory: string): Promise<{ readonly url: string; stop(): Promise<void> }> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  const config = join(directory, 'mosquitto.conf');
  writeFileSync(config, [`listener ${port} 127.0.0.1`, 'allow_anonymous true', 'max_queued_messages 0', 'max_inflight_messages 100', 'persistence false', 'set_tcp_nodelay true', ''].join('\n'));
  const child = await launchMosquitto(config, [port]);
  return { url: `mqtt://127.0.0.1:${port}`, stop: () => terminate(child) };
}

/** What a crash test's file shares: its own roomy Mosquitto, a RabbitMQ admin that deletes what the test declared, a scratch directory. */
export interface CrashFixture {
  /** The Mosquitto's URL (once `beforeAll` has run). */
  readonly mqttUrl: () => string;
  readonly admin: BrokerAdmin;
  readonly directory: string;
}

/**
 * Registers the hooks of a crash test's file: a roomy Mosquitto of its own before all, every CLI
 * process killed after each test (a failed assertion must not leave a bridge running), and the
 * broker, the RabbitMQ objects and the scratch directory removed after all.
 */
export function crashFixture(label: string): CrashFixture {
  const directory = mkdtempSync(join(tmpdir(), `ic-${label}-`));
  const admin = new BrokerAdmin();
  let mosquitto: { readonly url: string; stop(): Promise<void> } | undefined;
  beforeAll(async () => {
    mosquitto = await startRoomyMosquitto(directory);
  }, 60_000);
  afterEach(() => killCliProcesses());
  afterAll(async () => {
    await mosquitto?.stop();
    await admin.close();
    rmSync(directory, { recursive: true, force: true });
  });
  return {
    mqttUrl: () => {
      if (mosquitto === undefined) throw new Error('the crash fixture\'s Mosquitto is not started: use mqttUrl() inside a test');
      return mosquitto.url;
    },
    admin,
    directory,
  };
}
