/**
 * A fleet of simulated field devices publishing `device.telemetry@1` readings over MQTT (QoS 1) to
 * `<prefix>/devices/<deviceId>/telemetry` — a share of them invalid on purpose, to exercise the
 * flagship's dead-letter path. Plain mqtt.js: devices are not Interchange applications.
 */
import mqtt, { type MqttClient } from 'mqtt';
import { FleetSigner, FORGERY_KINDS, type ForgeryKind } from './signing.ts';

/** `forged`: a forgery of `--forge` (its kind in `forged`), never a genuine reading. */
export type TelemetryKind = 'valid' | 'bad-json' | 'schema' | 'mismatch' | 'forged';

/** One message the fleet publishes. */
export interface PlannedMessage {
  readonly deviceId: string;
  readonly topic: string;
  readonly payload: Buffer;
  readonly kind: TelemetryKind;
  /** Valid and at or above 50 °C. */
  readonly alert: boolean;
  /** The device's signature (MQTT 5 user property `signature`), when the fleet signs. */
  readonly signature?: string;
  /** What kind of forgery this is (kind `forged`). */
  readonly forged?: ForgeryKind;
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

export interface SignPlanOptions {
  /** The fleet's signing (`FleetSigner`: every device's key from one master secret). */
  readonly signer: FleetSigner;
  /** Share of valid readings replaced by forgeries, 0–1 (default 0): the `ForgeryKind`s in turn. */
  readonly forge?: number;
  /** Devices in the fleet, to pick an attacker among them (default 50). */
  readonly devices?: number;
  /** Seed of the choice of forgeries (default 1). */
  readonly seed?: number;
}

/**
 * Signs planned telemetry as each device would (`signature` on every message, invalid ones too: a
 * device signs what it sends) and replaces a share `forge` of the valid readings with forgeries of
 * them — kinds in turn, the attacker another device of the fleet, a `replayed` one the last genuine
 * reading sent again. Forgeries come only after a first genuine reading. A forged reading is never
 * sent genuinely, so none of its values may reach the back end.
 */
export function* signTelemetry(messages: Iterable<PlannedMessage>, { signer, forge = 0, devices = 50, seed = 1 }: SignPlanOptions): Generator<PlannedMessage> {
  const next = random(seed ^ 0x5eed);
  const ids = deviceIds(Math.max(devices, 2));
  let forgeries = 0;
  let previous: PlannedMessage | undefined;
  for (const message of messages) {
    if (message.kind === 'valid' && previous !== undefined && forge > 0 && next() < forge) {
      const kind = FORGERY_KINDS[forgeries % FORGERY_KINDS.length] as ForgeryKind;
      forgeries += 1;
      const attacker = ids.find((id) => id !== message.deviceId) as string;
      const forged = signer.forge(kind, message.deviceId, message.payload, attacker, { payload: previous.payload, ...(previous.signature === undefined ? {} : { signature: previous.signature }) });
      const target = kind === 'replayed' ? previous : message;
      yield { deviceId: target.deviceId, topic: target.topic, payload: forged.payload, kind: 'forged', forged: kind, alert: false, ...(forged.signature === undefined ? {} : { signature: forged.signature }) };
      continue;
    }
    const signed: PlannedMessage = { ...message, signature: signer.sign(message.deviceId, message.payload) };
    if (message.kind === 'valid') previous = signed;
    yield signed;
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
  /** 4 (MQTT 3.1.1, default: the embedded broker speaks only that) or 5 (the default when signing: the signature is a user property). */
  readonly protocolVersion?: 4 | 5;
  /** Signs every message as its device (`signing.ts`): each device's key derived from this master secret (`signed-devices.ts`). MQTT 5. */
  readonly signingSecret?: Uint8Array;
  /** With `signingSecret`: share of valid readings replaced by forgeries, 0–1 (default 0; see `signTelemetry`). */
  readonly forge?: number;
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
  /** Whether the devices signed (`signingSecret`). */
  readonly signed: boolean;
  /** Forgeries sent, by kind (all 0 without `forge`). */
  readonly forged: Readonly<Record<ForgeryKind, number>>;
  readonly seconds: number;
}

/**
 * Publishes `count` planned messages at `rate` (QoS 1, one connection for the fleet) and resolves once
 * the broker acknowledged all of them (or `signal` aborted), with what was sent. Rejects if the broker
 * cannot be reached.
 * @example const report = await simulate({ url: 'mqtt://127.0.0.1:1883', devices: 50, rate: 1000, count: 10_000, invalid: 0.02 })
 */
export async function simulate({ url = process.env.MQTT_URL || 'mqtt://127.0.0.1:1883', rate = 1_000, count = 10_000, maxInFlight = 500, signingSecret, forge = 0, protocolVersion = signingSecret === undefined ? 4 : 5, signal, onSent, ...plan }: SimulateOptions = {}): Promise<SimulatorReport> {
  if (signingSecret !== undefined && protocolVersion !== 5) throw new RangeError('signed devices need MQTT 5: the signature travels as a user property');
  if (forge > 0 && signingSecret === undefined) throw new RangeError('forgeries need the signing secret: forge only with signingSecret');
  const planned = planTelemetry(plan);
  const messages = signingSecret === undefined ? planned : signTelemetry(planned, { signer: new FleetSigner(signingSecret), forge, ...(plan.devices === undefined ? {} : { devices: plan.devices }), ...(plan.seed === undefined ? {} : { seed: plan.seed }) });
  const client: MqttClient = await mqtt.connectAsync(url, { protocolVersion, clean: true, reconnectPeriod: 1_000, connectTimeout: 10_000, clientId: `device-simulator-${process.pid}-${Date.now().toString(36)}` });
  const counts = { sent: 0, valid: 0, alerts: 0, badJson: 0, schema: 0, mismatch: 0 };
  const forged = Object.fromEntries(FORGERY_KINDS.map((kind) => [kind, 0])) as Record<ForgeryKind, number>;
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
          if (message.forged !== undefined) forged[message.forged] += 1;
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
          client.publish(message.topic, message.payload, { qos: 1, ...(message.signature === undefined ? {} : { properties: { userProperties: { signature: message.signature } } }) }, acknowledged(message));
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
  return { devices: plan.devices ?? 50, sent: counts.sent, valid: counts.valid, alerts: counts.alerts, invalid: { badJson: counts.badJson, schema: counts.schema, mismatch: counts.mismatch }, signed: signingSecret !== undefined, forged, seconds };
}

/** One line saying what the fleet sent. */
export function describeReport(report: SimulatorReport): string {
  const invalid = report.invalid.badJson + report.invalid.schema + report.invalid.mismatch;
  const rate = report.seconds > 0 ? report.sent / report.seconds : 0;
  return (
    `sent ${report.sent} messages from ${report.devices} devices in ${report.seconds.toFixed(1)} s (${rate.toFixed(0)} msgs/s): ` +
    `${report.valid} valid (${report.alerts} alerts ≥ 50 °C), ${invalid} invalid ` +
    `(${report.invalid.badJson} bad JSON, ${report.invalid.schema} schema violations, ${report.invalid.mismatch} device id mismatches)` +
    (report.signed ? `; signed, ${Object.values(report.forged).reduce((sum, n) => sum + n, 0)} forged (${Object.entries(report.forged).map(([kind, n]) => `${n} ${kind}`).join(', ')})` : '')
  );
}
