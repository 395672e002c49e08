import { createDelivery, deliveryStep, stepSpec, toError, type Delivery, type Emit, type StepFactory, type StepSpec } from '../src/core/index.ts';
import { failWithEvidence } from '../src/schema/index.ts';
import { ReplayedMessageError, ReplayInProgressError, SignatureError } from '../src/security/signing-errors.ts';
import { createVerifier, DEFAULT_MAX_AGE_MS, DEFAULT_TOLERANCE_MS, replayKey, SIGNATURE_REJECTED_HEADER, type VerifiedMessage, type VerifyOptions } from '../src/security/signing.ts';
import { MemoryIdempotencyStore, type IdempotencyStore } from '../src/stores/idempotency-store.ts';

export interface ReplayOptions {
  /**
   * Where signature ids are remembered. Default: a `MemoryIdempotencyStore` of this step (one
   * process; remembers `maxAgeMs + 2 × toleranceMs`). With more than one instance, a shared store
   * (`RedisIdempotencyStore`, `PostgresInbox`) whose retention is at least that long and whose lease
   * outlasts the route's processing of a message.
   */
  readonly store?: IdempotencyStore;
  /** Prefix of the store's keys (default `signature:`): `<prefix><kid>#<jti>`. */
  readonly keyPrefix?: string;
}

export interface VerifyStepOptions<T> extends Omit<VerifyOptions<T>, 'now'> {
  /** Replay protection (default on, in memory); `false` turns it off (then a captured message can be replayed within `maxAgeMs`). */
  readonly replay?: ReplayOptions | false;
  /** Verifications in progress at once when they are asynchronous (EdDSA/ES256, a replay store): default 64. */
  readonly concurrency?: number;
}

/**
 * Verifier: passes on only messages whose signature (`sign`'s detached JWS) is valid, by a key held,
 * recent, and not seen before — with header `x-interchange-signer` (the key id), and a JSON-signed
 * body that arrived as text or bytes parsed, as it was checked. The clock is the step's scheduler.
 *
 * Rejections are permanent `SignatureError`s — `SignatureMissingError`, `SignatureInvalidError`
 * (malformed, mismatch, header-not-signed), `UnknownKeyError`, `AlgorithmNotAllowedError`,
 * `SignatureExpiredError`, `SignatureFutureDatedError`, `SignerMismatchError`, `ReplayedMessageError`
 * — handed to the route's error handler with header `x-interchange-signature-rejected: <reason>`:
 * dead-lettered with the reason by a dead-letter channel (rejected to the source without one), never
 * processed, never retried. See `createVerifier` for the order of the checks.
 *
 * Replay protection and settlement: once a signature is valid, `<kid>#<jti>` is claimed in the replay
 * store. The claim is confirmed only when the message settles with ack (every later step done, its
 * publishes confirmed) and released when it is rejected — so a verified message that failed
 * downstream and is redelivered verifies again, and only a copy of a message that was processed (or
 * filtered, or dead-lettered later) is a replay. A copy arriving while its twin's claim is held fails
 * with `ReplayInProgressError`, not permanent: the error handler decides (retry after a delay → then
 * judged; reject → the source redelivers it). A store failure fails the message transiently too.
 * Without a store error, a message is processed at most once per store retention.
 * @example from('mqtt:devices/+deviceId/telemetry?userProperties=signature').verify({ keys: deviceKeys, bindTo: (m, kid) => kid === m.headers.deviceId }).to('amqp:queue/telemetry').deadLetterChannel('amqp:queue/rejected')
 */
export function verify<T = unknown>({ replay = {}, concurrency = 64, ...options }: VerifyStepOptions<T>): StepFactory<unknown, T> {
  return (context) => {
    const verifier = createVerifier<T>({ ...options, now: () => context.scheduler.now() });
    const tolerance = options.toleranceMs ?? DEFAULT_TOLERANCE_MS;
    const store = replay === false ? undefined : (replay.store ?? new MemoryIdempotencyStore({ retentionMs: (options.maxAgeMs ?? DEFAULT_MAX_AGE_MS) + 2 * tolerance, maxEntries: 1_000_000, now: () => context.scheduler.now() }));
    const prefix = replay === false ? '' : (replay.keyPrefix ?? 'signature:');

    /** A refused signature: permanent, with its reason as evidence. Anything else goes to the error handler as it is. */
    const refuse = (delivery: Delivery, error: unknown): void => {
      if (!(error instanceof SignatureError)) throw error;
      context.count(`rejected-${error.reason}`);
      failWithEvidence(context, delivery, error, { [SIGNATURE_REJECTED_HEADER]: error.reason });
    };

    const claim = async (delivery: Delivery, verified: VerifiedMessage<T>, emit: Emit<T>): Promise<void> => {
      const { keyId, signatureId } = verified.signature;
      const key = replayKey(verified.signature, prefix);
      const claimed = await (store as IdempotencyStore).claim(key);
      if (claimed === 'in-progress') throw new ReplayInProgressError(keyId, signatureId);
      if (claimed === 'duplicate') return refuse(delivery, new ReplayedMessageError(keyId, signatureId));
      emit(
        createDelivery(
          verified.message,
          {
            ack: () => {
              (store as IdempotencyStore).confirm(key).then(
                () => delivery.ack(),
                (error: unknown) => {
                  context.log.warn('verify: could not record a processed signature; a replay of it may be accepted', { keyId, error: toError(error).message });
                  delivery.ack();
                },
              );
            },
            nack: (reason) => {
              const rejected = (): void => delivery.nack(reason);
              (store as IdempotencyStore).release(key).then(rejected, rejected);
            },
          },
          delivery.origin,
        ),
      );
    };

    const pass = (delivery: Delivery, verified: VerifiedMessage<T>, emit: Emit<T>): void | Promise<void> => {
      if (store === undefined) return emit(delivery.with(verified.message));
      return claim(delivery, verified, emit);
    };

    return deliveryStep<unknown, T>(
      context,
      (delivery, emit) => {
        let verified;
        try {
          verified = verifier(delivery.message);
        } catch (error) {
          return refuse(delivery, error);
        }
        if (!(verified instanceof Promise)) return pass(delivery, verified, emit);
        return verified.then(
          (result) => pass(delivery, result, emit),
          (error: unknown) => refuse(delivery, error),
        );
      },
      { concurrency },
    );
  };
}

/** `.verify(options)`: the verifier's DSL entry (kind `verify`); `T` is the body type it passes on. */
export function verifyStep<T = unknown>(options: VerifyStepOptions<T>): StepSpec<unknown, T> {
  return stepSpec('verify', verify<T>(options));
}
