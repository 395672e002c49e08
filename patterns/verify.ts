import { deliveryStep, RouteDefinitionError, Settlement, settlementOf, stepSpec, toError, type Delivery, type Emit, type GaveUpOutcome, type Logger, type Message, type StepFactory, type StepSpec } from '../src/core/index.ts';
import { failWithEvidence } from '../src/schema/index.ts';
import { ReplayedMessageError, ReplayInProgressError, ReplayMemoryFullError, SignatureError } from '../src/security/signing-errors.ts';
import { createVerifier, DEFAULT_MAX_AGE_MS, DEFAULT_TOLERANCE_MS, replayKey, replayWindowMs, SIGNATURE_REJECTED_HEADER, type VerifiedMessage, type VerifyOptions } from '../src/security/signing.ts';
import type { ClaimResult, IdempotencyStore } from '../src/stores/idempotency-store.ts';

export interface ReplayOptions {
  /**
   * Where signature ids are remembered. Default: a `ReplayMemory` of this step (one process), whose
   * claims and ids both last the whole window (`maxAgeMs + 2 × toleranceMs`, see `replayWindowMs`).
   * With more than one instance, a shared store (`RedisIdempotencyStore`, `PostgresInbox`) whose
   * retention AND claim lease are each at least that window: a shorter lease lets a copy of a message
   * still being processed claim it again once the lease runs out, and be processed twice.
   */
  readonly store?: IdempotencyStore;
  /**
   * Most signature ids the default memory holds (default 1,000,000; ignored with `store`). When it is
   * full of unexpired ids, a new signature fails with `ReplayMemoryFullError` (not permanent) rather
   * than an unexpired id being forgotten.
   */
  readonly maxEntries?: number;
  /** Prefix of the store's keys (default `signature:`): `<prefix><kid>#<jti>`. */
  readonly keyPrefix?: string;
}

export interface VerifyStepOptions<T> extends Omit<VerifyOptions<T>, 'now'> {
  /** Replay protection (default on, in memory); `false` turns it off (then a captured message can be replayed within `maxAgeMs`). */
  readonly replay?: ReplayOptions | false;
  /**
   * Verifications in progress at once when they are asynchronous (EdDSA/ES256, a replay `store`):
   * default 64. HS256 with the default replay memory (or none) is synchronous and never waits for it.
   */
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
 * filtered) is a replay; one a later step dead-lettered or discarded is released too, so that a copy
 * with an altered unsigned header, dead-lettered downstream, does not burn the genuine message's id. A copy arriving while its twin's claim is held fails
 * with `ReplayInProgressError`, not permanent: the error handler decides (retry after a delay → then
 * judged; reject → the source redelivers it). A store failure fails the message transiently too.
 * Without a store error, a message is processed at most once per store retention.
 * @example from('mqtt:devices/+deviceId/telemetry?userProperties=signature').verify({ keys: deviceKeys, bindTo: (m, kid) => kid === m.headers.deviceId }).to('amqp:queue/telemetry').deadLetterChannel('amqp:queue/rejected')
 */
export function verify<T = unknown>({ replay = {}, concurrency = 64, ...options }: VerifyStepOptions<T>): StepFactory<unknown, T> {
  const maxEntries = replay === false ? 1 : (replay.maxEntries ?? 1_000_000);
  if (!Number.isSafeInteger(maxEntries) || maxEntries < 1) throw new RouteDefinitionError(`verify: replay.maxEntries must be a positive integer, got ${String(maxEntries)}`);
  const windowMs = replayWindowMs(options.maxAgeMs ?? DEFAULT_MAX_AGE_MS, options.toleranceMs ?? DEFAULT_TOLERANCE_MS);
  return (context) => {
    const verifier = createVerifier<T>({ ...options, now: () => context.scheduler.now() });
    const store = replay === false ? undefined : (replay.store ?? new ReplayMemory({ windowMs, maxEntries, now: () => context.scheduler.now() }));
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
      emit(new VerifiedDelivery(delivery, verified.message, store as IdempotencyStore, key, context.log));
    };

    /** The step's own memory answers at once: claimed and passed on in the same call, no promise per message. */
    const claimNow = (memory: ReplayMemory, delivery: Delivery, verified: VerifiedMessage<T>, emit: Emit<T>): void => {
      const { keyId, signatureId } = verified.signature;
      const key = replayKey(verified.signature, prefix);
      const claimed = memory.claimNow(key);
      if (claimed === 'in-progress') throw new ReplayInProgressError(keyId, signatureId);
      if (claimed === 'duplicate') return refuse(delivery, new ReplayedMessageError(keyId, signatureId));
      emit(new VerifiedDelivery(delivery, verified.message, memory, key, context.log));
    };

    const pass = (delivery: Delivery, verified: VerifiedMessage<T>, emit: Emit<T>): void | Promise<void> => {
      if (store === undefined) return emit(delivery.with(verified.message));
      if (store instanceof ReplayMemory) return claimNow(store, delivery, verified, emit);
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

/**
 * The delivery `verify` passes on: settles its source once the claim is settled — confirmed when the
 * message was processed or filtered, released when it was rejected, or given up on by a later step
 * (dead-lettered, discarded: told through `noteOutcome`, which it passes on to its source). So a copy
 * that a later step dead-letters (an unsigned header altered) does not burn the genuine message's id.
 */
class VerifiedDelivery<T> extends Settlement<T> {
  private gaveUp: GaveUpOutcome | undefined;

  constructor(
    private readonly source: Delivery,
    message: Message<T>,
    private readonly store: IdempotencyStore,
    private readonly key: string,
    private readonly log: Logger,
  ) {
    super(message);
  }

  override get origin(): Message {
    return this.source.origin;
  }

  override noteOutcome(outcome: GaveUpOutcome, reason?: string): void {
    this.gaveUp = outcome;
    settlementOf(this.source)?.noteOutcome(outcome, reason);
  }

  protected onAck(): void {
    const acked = (): void => this.source.ack();
    if (this.store instanceof ReplayMemory) {
      // the step's own memory cannot fail: settled in the same call
      if (this.gaveUp === 'dead-lettered' || this.gaveUp === 'discarded') this.store.releaseNow(this.key);
      else this.store.confirmNow(this.key);
      acked();
      return;
    }
    if (this.gaveUp === 'dead-lettered' || this.gaveUp === 'discarded') {
      this.store.release(this.key).then(acked, acked);
      return;
    }
    this.store.confirm(this.key).then(acked, (error: unknown) => {
      this.log.warn('verify: could not record a processed signature; a replay of it may be accepted', { key: this.key, error: toError(error).message });
      acked();
    });
  }

  protected onNack(reason: Error): void {
    const rejected = (): void => this.source.nack(reason);
    if (this.store instanceof ReplayMemory) {
      this.store.releaseNow(this.key);
      rejected();
      return;
    }
    this.store.release(this.key).then(rejected, rejected);
  }
}

/**
 * The step's default replay memory (one process): claims and processed ids both last `windowMs`
 * (`replayWindowMs`), so a message still being processed keeps its claim for as long as a copy of it
 * could be accepted. At most `maxEntries` ids: expired ones are forgotten first (oldest first — entries
 * are kept in expiry order); when all are unexpired, `claim` rejects with `ReplayMemoryFullError`
 * (transient) — an unexpired id is never forgotten, so a flood by one signer cannot make room for
 * replays of others' messages. Implements `IdempotencyStore`.
 * @example new ReplayMemory({ windowMs: replayWindowMs(300_000, 30_000), maxEntries: 100_000, now: Date.now })
 */
export class ReplayMemory implements IdempotencyStore {
  private readonly entries = new Map<string, { done: boolean; until: number }>();
  private readonly windowMs: number;
  private readonly maxEntries: number;
  private readonly now: () => number;

  constructor({ windowMs, maxEntries, now = Date.now }: { readonly windowMs: number; readonly maxEntries: number; readonly now?: () => number }) {
    this.windowMs = windowMs;
    this.maxEntries = maxEntries;
    this.now = now;
  }

  get size(): number {
    return this.entries.size;
  }

  claim(key: string): Promise<ClaimResult> {
    try {
      return Promise.resolve(this.claimNow(key));
    } catch (error) {
      return Promise.reject(error);
    }
  }

  confirm(key: string): Promise<void> {
    this.confirmNow(key);
    return Promise.resolve();
  }

  release(key: string): Promise<void> {
    this.releaseNow(key);
    return Promise.resolve();
  }

  /** `claim`, answered at once (the `verify` step's path: no promise per message). Throws `ReplayMemoryFullError`. */
  claimNow(key: string): ClaimResult {
    const now = this.now();
    this.expire(now);
    const entry = this.entries.get(key);
    if (entry !== undefined && entry.until > now) return entry.done ? 'duplicate' : 'in-progress';
    this.entries.delete(key);
    if (this.entries.size >= this.maxEntries) throw new ReplayMemoryFullError(this.maxEntries);
    this.entries.set(key, { done: false, until: now + this.windowMs });
    return 'claimed';
  }

  /** `confirm`, done at once. */
  confirmNow(key: string): void {
    this.entries.delete(key); // re-inserted last: Map order is expiry order
    this.entries.set(key, { done: true, until: this.now() + this.windowMs });
  }

  /** `release`, done at once. */
  releaseNow(key: string): void {
    if (this.entries.get(key)?.done === false) this.entries.delete(key);
  }

  private expire(now: number): void {
    for (const [key, entry] of this.entries) {
      if (entry.until > now) break;
      this.entries.delete(key);
    }
  }
}

/** `.verify(options)`: the verifier's DSL entry (kind `verify`); `T` is the body type it passes on. */
export function verifyStep<T = unknown>(options: VerifyStepOptions<T>): StepSpec<unknown, T> {
  return stepSpec('verify', verify<T>(options));
}
