/**
 * The flagship with signed devices: the flow of `flow.ts` with one step first — every reading must
 * carry its device's signature (a detached JWS in the MQTT 5 user property `signature`, over the
 * payload bytes and the topic's device id), by the key of the device its topic names. Unsigned,
 * forged, tampered, impersonating, expired or replayed readings are dead-lettered to the flow's
 * `telemetry.dlx` with the reason (`x-interchange-signature-rejected`) and never reach RabbitMQ's
 * `telemetry.readings`; what passes is the flagship's flow, unchanged.
 */
import { withHeaders, type Message, type RouteBuilder } from 'interchange-eip';
import { MemoryIdempotencyStore } from 'interchange-eip/spi';
import { SIGNATURE_REJECTED_HEADER, type ReplayOptions, type VerifyingKeys } from 'interchange-eip/security';
import { flowRoutes, type FlowOptions } from './flow.ts';
import { deviceKeyId } from './signed-devices.ts';
import { asReceived } from './telemetry.ts';

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
  // one replay memory for every consumer of this process: a copy may arrive on any of them
  const replayOptions: ReplayOptions = replay ?? { store: new MemoryIdempotencyStore({ retentionMs: maxAgeMs + 2 * DEFAULT_TOLERANCE_MS, maxEntries: 1_000_000 }) };
  return flowRoutes({
    ...options,
    intake: {
      sourceOptions: 'qos=1&payload=raw&headers=standard&userProperties=signature',
      prepareDeadLetter: asReceivedWithVerdict,
      first: (route) =>
        route.verify({
          id: VERIFY_STEP_ID,
          keys: deviceKeys,
          headers: ['deviceId'],
          bindTo: (message, keyId) => typeof message.headers.deviceId === 'string' && keyId === deviceKeyId(message.headers.deviceId),
          maxAgeMs,
          replay: replayOptions,
        }),
    },
  });
}
