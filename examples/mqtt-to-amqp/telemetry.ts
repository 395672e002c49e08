/**
 * The flagship's message logic, free of any transport: checking device telemetry, translating it to
 * the backend's contract, routing, and summarising per device. Pure functions and one step, so unit
 * tests, the route and the benchmark's raw bridges all share the very same code.
 */
import { InterchangeError, withBody, withHeaders, type Message } from 'interchange-eip';
import { deliveryStep, derivedMessageId, failWithEvidence, registryFor, ValidationErrorsHeader, type HeaderValue, type StepFactory } from 'interchange-eip/spi';
import type { BackendReadingV1, DeviceTelemetryV1 } from '../../schemas/types.generated.ts';

export const TELEMETRY_CONTRACT = 'device.telemetry@1';
export const READING_CONTRACT = 'backend.reading@1';

/** At or above this temperature (°C) a reading is an alert. */
export const ALERT_THRESHOLD_C = 50;

/** Header naming the MQTT topic an invalid message arrived on. */
export const MQTT_TOPIC_HEADER = 'x-mqtt-topic';
/** Header naming the contract of what goes to the back end. */
export const SCHEMA_HEADER = 'x-schema';

/**
 * The topic says one device, the body another: the message is not trusted (`DEVICE_MISMATCH`,
 * permanent — dead-lettered, never retried).
 */
export class DeviceMismatchError extends InterchangeError {
  override readonly name = 'DeviceMismatchError';
  constructor(topicDeviceId: string | undefined, bodyDeviceId: string) {
    super('DEVICE_MISMATCH', `topic device id '${topicDeviceId ?? '(none)'}' does not match body deviceId '${bodyDeviceId}'`, { permanent: true });
  }
}

/** A valid `ts` that is no instant the back end can store (before 1970, or a leap second): `TIMESTAMP_UNUSABLE`, permanent. */
export class TimestampError extends InterchangeError {
  override readonly name = 'TimestampError';
  constructor(ts: string) {
    super('TIMESTAMP_UNUSABLE', `ts '${ts}' is not an instant at or after 1970-01-01T00:00:00Z that the back end can store`, { permanent: true });
  }
}

/**
 * The checks beyond the schema, on a body already valid against `device.telemetry@1`: the topic's
 * device id must be the body's, and `ts` an instant the back end can store. Returns the body, or
 * throws the typed, permanent error naming the reason.
 */
export function checkedTelemetry(body: DeviceTelemetryV1, topicDeviceId: string | undefined): DeviceTelemetryV1 {
  if (topicDeviceId !== body.deviceId) throw new DeviceMismatchError(topicDeviceId, body.deviceId);
  const timestamp = Date.parse(body.ts);
  if (!(timestamp >= 0)) throw new TimestampError(body.ts);
  return body;
}

/**
 * Step: device telemetry in, checked. Each message is parsed once and validated against
 * `device.telemetry@1`; its topic's device id (header `deviceId`, from `mqtt:…/+deviceId/…`) must
 * equal the body's. A valid message continues with the parsed body (header `schema` set) and its content-derived id (`readingIdOf`). An invalid
 * one — bad JSON, a schema violation, a device id mismatch — fails permanently *as it arrived*: the
 * original body (the payload bytes), plus `x-mqtt-topic` and, for schema violations,
 * `x-interchange-validation-errors`, so the route's dead-letter channel keeps the evidence intact.
 * Synchronous; no concurrency of its own.
 * @example from('mqtt:devices/+deviceId/telemetry').step('check-telemetry', checkTelemetry())
 */
export function checkTelemetry(): StepFactory<unknown, DeviceTelemetryV1> {
  return (context) => {
    const registry = registryFor(context, [TELEMETRY_CONTRACT]);
    return deliveryStep<unknown, DeviceTelemetryV1>(context, (delivery, emit) => {
      const { message } = delivery;
      let body: DeviceTelemetryV1;
      try {
        body = checkedTelemetry(registry.validate(TELEMETRY_CONTRACT, message.body) as DeviceTelemetryV1, deviceIdOf(message));
      } catch (error) {
        failWithEvidence(context, delivery, error, { [MQTT_TOPIC_HEADER]: topicOf(message) });
        return;
      }
      emit(delivery.with({ ...withHeaders(withBody(message, body), { schema: TELEMETRY_CONTRACT }), id: readingIdOf(topicOf(message), message.body) }));
    });
  };
}

/**
 * What the flow dead-letters (`prepareDeadLetter`): the message as the device sent it — its original
 * payload bytes, its topic in `x-mqtt-topic` — whichever step failed (the check, the translation, the
 * outbound contract, an unencodable reading), plus the validation errors if the check found any and
 * the adapter's own `x-interchange-*` evidence (a truncated oversized payload's size and sha256).
 * Nothing else of the failed message goes along (its headers may be the device's input).
 */
export function asReceived(failed: Message, original: Message): Message {
  const evidence: Record<string, HeaderValue> = { [MQTT_TOPIC_HEADER]: topicOf(original) };
  // the topic's device id (the adapter's, from the topic): a replay from the console runs the check again with it
  if (typeof original.headers.deviceId === 'string') evidence.deviceId = original.headers.deviceId;
  // what the adapter itself says of the message (an oversized one: its size and hash): never the device's input under headers=trace
  for (const name in original.headers) {
    const value = original.headers[name];
    if (name.startsWith('x-interchange-') && value !== undefined) evidence[name] = value;
  }
  const errors = failed.headers[ValidationErrorsHeader];
  if (typeof errors === 'string') evidence[ValidationErrorsHeader] = errors;
  return { id: original.id, headers: evidence, body: original.body };
}

/**
 * The id of a reading: derived from what the device sent (its topic and payload bytes, sha256, in
 * UUID form), so the same reading delivered twice — MQTT redelivers what was not acknowledged before
 * a crash — has the same id everywhere downstream: the durable buffer, the AMQP `messageId`, and the
 * summaries' repository, which folds an input id once (Camel's idempotent consumer on the body). A
 * device never sends two different readings with the same bytes: each carries its own `ts`.
 */
export function readingIdOf(topic: string, payload: unknown): string {
  return derivedMessageId([topic, payload instanceof Uint8Array ? payload : typeof payload === 'string' ? payload : (JSON.stringify(payload) ?? '')]);
}

/** The device's topic: the adapter's `mqttTopic`, or the evidence header of a dead letter replayed from the console. */
function topicOf(message: Message): string {
  return String(message.headers.mqttTopic ?? message.headers[MQTT_TOPIC_HEADER] ?? '');
}

function deviceIdOf(message: Message): string | undefined {
  const id = message.headers.deviceId;
  return typeof id === 'string' ? id : undefined;
}

/** °C → °F, as the contract defines it: C × 9/5 + 32 (not rounded). */
export function fahrenheit(celsius: number): number {
  return (celsius * 9) / 5 + 32;
}

/**
 * Message translator `device.telemetry@1` → `backend.reading@1`: epoch-ms timestamp, temperature in
 * both scales, humidity and battery only when the device sent them.
 */
export function toBackendReading(telemetry: DeviceTelemetryV1): BackendReadingV1 {
  const reading: { -readonly [K in keyof BackendReadingV1]: BackendReadingV1[K] } = {
    deviceId: telemetry.deviceId,
    timestamp: Date.parse(telemetry.ts),
    temperatureC: telemetry.temperature,
    temperatureF: fahrenheit(telemetry.temperature),
  };
  if (telemetry.humidity !== undefined) reading.humidity = telemetry.humidity;
  if (telemetry.battery !== undefined) reading.battery = telemetry.battery;
  return reading;
}

/** Content-based routing: `alert.<deviceId>` at or above the threshold, else `reading.<deviceId>`. */
export function isAlert(reading: BackendReadingV1): boolean {
  return reading.temperatureC >= ALERT_THRESHOLD_C;
}

export function routingKeyOf(reading: BackendReadingV1): string {
  return `${isAlert(reading) ? 'alert' : 'reading'}.${reading.deviceId}`;
}

/**
 * The headers a reading leaves with: JSON, its contract in `x-schema`, and the correlation id kept
 * from the source message (its id, unless it already belonged to a conversation).
 */
export function readingHeaders(source: Message): { readonly contentType: string; readonly correlationId: string; readonly [SCHEMA_HEADER]: string } {
  return { contentType: 'application/json', correlationId: source.headers.correlationId ?? source.id, [SCHEMA_HEADER]: READING_CONTRACT };
}

/** Per-device summary of a group of readings: temperatures in °C, `from`/`to` the group's first and last reading (epoch ms). */
export interface DeviceSummary {
  readonly deviceId: string;
  readonly count: number;
  readonly minC: number;
  readonly maxC: number;
  readonly avgC: number;
  readonly from: number;
  readonly to: number;
}

/** What the aggregator folds readings into (the sum, not the average, so folding stays exact). */
export interface SummaryState {
  readonly deviceId: string;
  readonly count: number;
  readonly minC: number;
  readonly maxC: number;
  readonly sumC: number;
  readonly from: number;
  readonly to: number;
}

/** The aggregation strategy (Camel's `aggregate(previous, next)`). */
export function foldReading(previous: SummaryState | undefined, next: Message<BackendReadingV1>): SummaryState {
  const { deviceId, temperatureC, timestamp } = next.body;
  if (previous === undefined) return { deviceId, count: 1, minC: temperatureC, maxC: temperatureC, sumC: temperatureC, from: timestamp, to: timestamp };
  return {
    deviceId,
    count: previous.count + 1,
    minC: Math.min(previous.minC, temperatureC),
    maxC: Math.max(previous.maxC, temperatureC),
    sumC: previous.sumC + temperatureC,
    from: Math.min(previous.from, timestamp),
    to: Math.max(previous.to, timestamp),
  };
}

export function toSummary({ deviceId, count, minC, maxC, sumC, from, to }: SummaryState): DeviceSummary {
  return { deviceId, count, minC, maxC, avgC: sumC / count, from, to };
}
