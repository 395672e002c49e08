/**
 * The flagship with signed devices: the flow of `flow.ts` with one step first — every reading must
 * carry its device's signature (a detached JWS in the MQTT 5 user property `signature`, over the
 * payload bytes and the topic's device id), by the key of the device its topic names. Unsigned,
 * forged, tampered, impersonating, expired or replayed readings are dead-lettered to the flow's
 * `telemetry.dlx` with the reason (`x-interchange-signature-rejected`) and never reach RabbitMQ's
 * `telemetry.readings`; what passes is the flagship's flow, unchanged.
 */
import { from, withHeaders, type Message, type RouteBuilder } from 'interchange-eip';
import { InMemoryPersistentAggregationRepository, MemoryIdempotencyStore } from 'interchange-eip/spi';
import { SIGNATURE_REJECTED_HEADER, type ReplayOptions, type VerifyingKeys } from 'interchange-eip/security';
import type { BackendReadingV1 } from '../../schemas/types.generated.ts';
import { flowErrorPolicy, flowNames, flowRoutes, type FlowOptions } from './flow.ts';
import { deviceKeyId } from './signed-devices.ts';
import { asReceived, checkTelemetry, foldReading, isAlert, READING_CONTRACT, readingHeaders, TELEMETRY_CONTRACT, toBackendReading, toSummary, type DeviceSummary, type SummaryState } from './telemetry.ts';

export interface SignedFlowOptions extends FlowOptions {
  /**
   * The devices' keys by key id (`device-<deviceId>`): `derivedDeviceKeys(masterSecret)` in the demo,
   * a lookup in the device registry in production. A key id it does not know is refused (`unknown-key`).
   */
  readonly deviceKeys: VerifyingKeys;
  /**
   * Where signature ids are remembered against replays (default: one in-memory store shared by this
   * process's consumers). Several instances of the bridge (`MQTT_SHARE_GROUP`) need a shared store
   * (`RedisIdempotencyStore`, `PostgresInbox`), else a copy sent to another instance is not a replay there.
   */
  readonly replay?: ReplayOptions;
  /** Oldest signature accepted, in ms (default 300,000: the verifier's). */
  readonly maxAgeMs?: number;
}

/** The verifier's defaults (`interchange-eip/security`): signatures up to 5 minutes old, 30 s of clock skew. */
const DEFAULT_MAX_AGE_MS = 300_000;
const DEFAULT_TOLERANCE_MS = 30_000;

/** The step id of the verification in each intake route (its counters: `rejected-<reason>`). */
export const VERIFY_STEP_ID = 'verify-device';

/**
 * What the signed flow dead-letters: the flagship's `asReceived` (the device's bytes, topic, reason)
 * plus the signature verdict (`x-interchange-signature-rejected: missing | mismatch | signer-mismatch | …`).
 */
export function asReceivedWithVerdict(failed: Message, original: Message): Message {
  const dead = asReceived(failed, original);
  const verdict = failed.headers[SIGNATURE_REJECTED_HEADER];
  return typeof verdict === 'string' ? withHeaders(dead, { [SIGNATURE_REJECTED_HEADER]: verdict }) : dead;
}

/**
 * The signed flagship's routes: `flowRoutes` with a verifying intake. The source also takes the MQTT 5
 * user property `signature` (`headers=standard&userProperties=signature`: nothing else a device sends
 * becomes a header); `.verify()` requires the topic's device id (header `deviceId`) to be signed and the
 * key to be that device's (`bindTo`: `device-<deviceId>`), then the flagship's check, translation,
 * routing and summaries follow. Buffered (`buffered: true`), the `forward` and `dead-letters` routes are
 * `flowRoutes`' own. A rejection is permanent: dead-lettered with its reason, never retried; a copy
 * arriving while its twin is in flight is retried (the flow's transient policy) until judged.
 * @example createIntegration({ modules, routes: signedFlowRoutes({ names, deviceKeys: derivedDeviceKeys(secret) }) })
 */
export function signedFlowRoutes({ deviceKeys, replay, maxAgeMs = DEFAULT_MAX_AGE_MS, ...options }: SignedFlowOptions): RouteBuilder<unknown>[] {
  const { names = flowNames(), prefetch = 1_000, buffered = false, consumers = 1, transientAttempts = 10 } = options;
  const shareGroup = options.shareGroup ?? (consumers > 1 ? `${names.exchange}-bridge` : undefined);
  // one replay memory for every consumer of this process: a copy may arrive on any of them
  const replayOptions: ReplayOptions = replay ?? { store: new MemoryIdempotencyStore({ retentionMs: maxAgeMs + 2 * DEFAULT_TOLERANCE_MS, maxEntries: 1_000_000 }) };
  const exchange = `amqp:exchange/${names.exchange}`;
  const deadLetterUri = buffered ? `buffer:${names.exchange}.dead` : `amqp:exchange/${names.deadLetterExchange}`;
  const query = 'qos=1&payload=raw&headers=standard&userProperties=signature';
  const source = shareGroup === undefined ? `mqtt:${names.telemetryTopic}?${query}` : `mqtt:$share/${shareGroup}/${names.telemetryTopic}?${query}`;

  const intake = (id: string): RouteBuilder<unknown> => {
    const checked = from(source, { id, prefetch })
      .onError((failure) => flowErrorPolicy(failure, transientAttempts), { maxAttempts: transientAttempts + 1, deadLetterUri, deadLetterLabel: 'invalid', prepareDeadLetter: asReceivedWithVerdict })
      .verify({
        id: VERIFY_STEP_ID,
        keys: deviceKeys,
        headers: ['deviceId'],
        bindTo: (message, keyId) => typeof message.headers.deviceId === 'string' && keyId === deviceKeyId(message.headers.deviceId),
        maxAgeMs,
        replay: replayOptions,
      })
      .step('check-telemetry', checkTelemetry(), { id: 'check-telemetry', contract: TELEMETRY_CONTRACT })
      .transform((message) => toBackendReading(message.body), { id: 'translate', contract: READING_CONTRACT })
      .setHeaders(readingHeaders, { id: 'reading-headers' });
    return buffered ? (checked.to(`buffer:${names.exchange}`, { id: 'buffered' }) as RouteBuilder<unknown>) : toBackEnd(checked, exchange, options);
  };
  const intakes = consumers === 1 ? [intake('telemetry')] : Array.from({ length: consumers }, (_, index) => intake(`telemetry-${index + 1}`));
  if (!buffered) return intakes;
  const ours = new Set(intakes.map((route) => route.definition().id));
  return [...intakes, ...flowRoutes({ ...options, buffered: true }).filter((route) => !ours.has(route.definition().id))];
}

/** RabbitMQ, then the summaries: as `flow.ts` ends its unbuffered `telemetry` route (same step ids, so the same metrics and live line). */
function toBackEnd(route: RouteBuilder<BackendReadingV1>, exchange: string, options: FlowOptions): RouteBuilder<unknown> {
  const { summarySize = 10, summaryIdleMs = 5_000, summaries = true, summaryRepository = new InMemoryPersistentAggregationRepository<SummaryState>(), summaryRecovery = {}, completeSummariesOnStop = false } = options;
  const routed = route.choice(
    (router) =>
      router
        .when((message) => isAlert(message.body), (alerts) => alerts.to(`${exchange}?routingKey=alert.{deviceId}`, { contract: READING_CONTRACT, id: 'alerts' }))
        .otherwise((readings) => readings.to(`${exchange}?routingKey=reading.{deviceId}`, { contract: READING_CONTRACT, id: 'readings' })),
    { id: 'route-by-temperature' },
  );
  if (!summaries) return routed as RouteBuilder<unknown>;
  return routed
    .aggregate(
      { correlate: (message) => message.body.deviceId, strategy: foldReading, size: summarySize, timeoutMs: summaryIdleMs, repository: summaryRepository, ...summaryRecovery, ...(completeSummariesOnStop ? { onStop: 'complete' as const } : {}) },
      { id: 'per-device' },
    )
    .transform((message): DeviceSummary => toSummary(message.body), { id: 'summarise' })
    .setHeaders(() => ({ contentType: 'application/json' }), { id: 'summary-headers' })
    .to(`${exchange}?routingKey=summary.{deviceId}`, { id: 'summaries' }) as RouteBuilder<unknown>;
}
