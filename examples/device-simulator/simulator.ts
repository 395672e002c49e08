/**
 * A fleet of simulated field devices publishing `device.telemetry@1` readings over MQTT (QoS 1) to
 * `<prefix>/devices/<deviceId>/telemetry` — a share of them invalid on purpose, to exercise the
 * flagship's dead-letter path. Plain mqtt.js: devices are not Interchange applications.
 */
import mqtt, { type MqttClient } from 'mqtt';

export type TelemetryKind = 'valid' | 'bad-json' | 'schema' | 'mismatch';

/** One message the fleet publishes. */
export interface PlannedMessage {
  readonly deviceId: string;
  readonly topic: string;
  readonly payload: Buffer;
  readonly kind: TelemetryKind;
  /** Valid and at or above 50 °C. */
  readonly alert: boolean;
}

export interface PlanOptions {
  /** Devices `dev-0001` … (default 50). */
  readonly devices?: number;
  /** Share of invalid messages, 0–1 (default 0.02): bad JSON, schema violations and topic/body device id mismatches in turn. */
  readonly invalid?: number;
  /** Topic prefix (default none: `devices/<id>/telemetry`). */
  readonly topicPrefix?: string;
  /** Seed of the pseudo-random generator: the same seed gives the same messages (default 1). */
  readonly seed?: number;
  /** The clock for `ts` (default `Date.now`). */
  readonly now?: () => number;
}

/** `dev-0001`, `dev-0002`, …. */
export function deviceIds(devices: number): string[] {
  return Array.from({ length: devices }, (_, index) => `dev-${String(index + 1).padStart(4, '0')}`);
}

export function telemetryTopic(deviceId: string, topicPrefix = ''): string {
  return `${topicPrefix === '' ? '' : `${topicPrefix}/`}devices/${deviceId}/telemetry`;
}

/** mulberry32: small, fast, seeded; good enough for test data. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const round1 = (value: number): number => Math.round(value * 10) / 10;

/**
 * An endless, reproducible stream of telemetry, round-robin over the devices. Each device drifts
 * around its own baseline temperature (15–35 °C) with rare heat spikes of 50–70 °C (about 1 %: the
 * alerts), humidity around 30–70 %, and a battery that slowly drains; invalid messages are spread
 * evenly (every ⌈1 / invalid⌉-th on average, chosen at random).
 */
export function* planTelemetry({ devices = 50, invalid = 0.02, topicPrefix = '', seed = 1, now = Date.now }: PlanOptions = {}): Generator<PlannedMessage> {
  const next = random(seed);
  const ids = deviceIds(devices);
  const state = ids.map(() => ({ base: 15 + next() * 20, temperature: 0, humidity: 30 + next() * 40, battery: 60 + next() * 40, lastTs: 0 }));
  let invalidKinds = 0;
  for (let n = 0; ; n += 1) {
    const index = n % ids.length;
    const deviceId = ids[index] as string;
    const device = state[index] as { base: number; temperature: number; humidity: number; battery: number; lastTs: number };
    const topic = telemetryTopic(deviceId, topicPrefix);
    device.temperature = next() < 0.01 ? round1(50 + next() * 20) : round1(device.base + (next() - 0.5) * 4);
    device.humidity = Math.min(100, Math.max(0, device.humidity + (next() - 0.5) * 2));
    device.battery = Math.max(0, device.battery - next() * 0.01);
    // a device's clock moves between its readings: two readings of one device never share a timestamp
    // (the bridge takes identical bytes from one device for the same reading, redelivered)
    device.lastTs = Math.max(now(), device.lastTs + 1);
    const reading = { deviceId, ts: new Date(device.lastTs).toISOString(), temperature: device.temperature, humidity: round1(device.humidity), battery: round1(device.battery) };
    if (next() < invalid) {
      const kind = (['bad-json', 'schema', 'mismatch'] as const)[invalidKinds % 3] as TelemetryKind;
      invalidKinds += 1;
      yield { deviceId, topic, kind, alert: false, payload: Buffer.from(invalidPayload(kind, reading, ids[(index + 1) % ids.length] as string, invalidKinds)) };
      continue;
    }
    yield { deviceId, topic, kind: 'valid', alert: reading.temperature >= 50, payload: Buffer.from(JSON.stringify(reading)) };
  }
}

function invalidPayload(kind: TelemetryKind, reading: { deviceId: string; ts: string; temperature: number; humidity: number; battery: number }, otherDevice: string, n: number): string {
  if (kind === 'bad-json') return JSON.stringify(reading).slice(0, 20 + (n % 10)); // truncated on the wire
  if (kind === 'mismatch') return JSON.stringify({ ...reading, deviceId: otherDevice });
  // schema violations, in turn: a string temperature, no timestamp, humidity out of range, an unknown field
  switch (n % 4) {
    case 0:
      return JSON.stringify({ ...reading, temperature: `${reading.temperature}C` });
    case 1:
      return JSON.stringify({ deviceId: reading.deviceId, temperature: reading.temperature });
    case 2:
      return JSON.stringify({ ...reading, humidity: 140 });
    default:
      return JSON.stringify({ ...reading, firmware: '1.2.3' });
  }
}

export interface SimulateOptions extends PlanOptions {
  /** Broker URL (default `MQTT_URL`, else `mqtt://127.0.0.1:1883`). */
  readonly url?: string;
  /** Messages per second; 0 = as fast as the broker acknowledges (default 1,000). */
  readonly rate?: number;
  /** Messages to send; 0 = until `signal` aborts (default 10,000). */
  readonly count?: number;
  /** Publishes awaiting PUBACK at most (default 500). */
  readonly maxInFlight?: number;
  /** 4 (MQTT 3.1.1, default: the embedded broker speaks only that) or 5. */
  readonly protocolVersion?: 4 | 5;
  readonly signal?: AbortSignal;
  /** Called after each acknowledged message. */
  readonly onSent?: (message: PlannedMessage) => void;
}

export interface SimulatorReport {
  readonly devices: number;
  readonly sent: number;
  readonly valid: number;
  readonly alerts: number;
  readonly invalid: { readonly badJson: number; readonly schema: number; readonly mismatch: number };
  readonly seconds: number;
}

/**
 * Publishes `count` planned messages at `rate` (QoS 1, one connection for the fleet) and resolves once
 * the broker acknowledged all of them (or `signal` aborted), with what was sent. Rejects if the broker
 * cannot be reached.
 * @example const report = await simulate({ url: 'mqtt://127.0.0.1:1883', devices: 50, rate: 1000, count: 10_000, invalid: 0.02 })
 */
export async function simulate({ url = process.env.MQTT_URL || 'mqtt://127.0.0.1:1883', rate = 1_000, count = 10_000, maxInFlight = 500, protocolVersion = 4, signal, onSent, ...plan }: SimulateOptions = {}): Promise<SimulatorReport> {
  const client: MqttClient = await mqtt.connectAsync(url, { protocolVersion, clean: true, reconnectPeriod: 1_000, connectTimeout: 10_000, clientId: `device-simulator-${process.pid}-${Date.now().toString(36)}` });
  const messages = planTelemetry(plan);
  const counts = { sent: 0, valid: 0, alerts: 0, badJson: 0, schema: 0, mismatch: 0 };
  const started = performance.now();
  let issued = 0;
  let inFlight = 0;
  let failure: Error | undefined;
  try {
    await new Promise<void>((resolve) => {
      let wake: (() => void) | undefined;
      const done = (): boolean => failure !== undefined || signal?.aborted === true || (count > 0 && counts.sent >= count);
      const acknowledged = (message: PlannedMessage) => (error?: Error | null): void => {
        inFlight -= 1;
        if (error !== undefined && error !== null) failure ??= error;
        else {
          counts.sent += 1;
          if (message.kind === 'valid') counts.valid += 1;
          if (message.alert) counts.alerts += 1;
          if (message.kind === 'bad-json') counts.badJson += 1;
          if (message.kind === 'schema') counts.schema += 1;
          if (message.kind === 'mismatch') counts.mismatch += 1;
          onSent?.(message);
        }
        wake?.();
      };
      const pump = (): void => {
        wake = undefined;
        if (done()) return resolve();
        const due = rate > 0 ? Math.floor(((performance.now() - started) / 1000) * rate) + 1 : Number.POSITIVE_INFINITY;
        while (inFlight < maxInFlight && issued < due && (count === 0 || issued < count) && signal?.aborted !== true) {
          const message = messages.next().value as PlannedMessage;
          issued += 1;
          inFlight += 1;
          client.publish(message.topic, message.payload, { qos: 1 }, acknowledged(message));
        }
        if (issued >= due || (count > 0 && issued >= count)) setTimeout(pump, 5);
        else wake = pump;
      };
      signal?.addEventListener('abort', () => wake?.(), { once: true });
      pump();
    });
  } finally {
    await client.endAsync();
  }
  if (failure !== undefined) throw failure;
  const seconds = (performance.now() - started) / 1000;
  return { devices: plan.devices ?? 50, sent: counts.sent, valid: counts.valid, alerts: counts.alerts, invalid: { badJson: counts.badJson, schema: counts.schema, mismatch: counts.mismatch }, seconds };
}

/** One line saying what the fleet sent. */
export function describeReport(report: SimulatorReport): string {
  const invalid = report.invalid.badJson + report.invalid.schema + report.invalid.mismatch;
  const rate = report.seconds > 0 ? report.sent / report.seconds : 0;
  return (
    `sent ${report.sent} messages from ${report.devices} devices in ${report.seconds.toFixed(1)} s (${rate.toFixed(0)} msgs/s): ` +
    `${report.valid} valid (${report.alerts} alerts ≥ 50 °C), ${invalid} invalid ` +
    `(${report.invalid.badJson} bad JSON, ${report.invalid.schema} schema violations, ${report.invalid.mismatch} device id mismatches)`
  );
}
