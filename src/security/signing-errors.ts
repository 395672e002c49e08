import { InterchangeError } from '../core/errors.ts';

/**
 * Why a message's signature was refused: a short, stable word for dead-letter headers
 * (`x-interchange-signature-rejected`), metrics and `switch`es.
 */
export type SignatureRejection =
  | 'missing'
  | 'malformed'
  | 'mismatch'
  | 'header-not-signed'
  | 'unknown-key'
  | 'algorithm-not-allowed'
  | 'expired'
  | 'future-dated'
  | 'replayed'
  | 'signer-mismatch';

/**
 * A message's signature was refused. Permanent: the same message is refused the same way every
 * time, so it is dead-lettered with `reason` (never processed, never retried). Messages name the
 * key id and what was wrong — never key material, never the signature itself.
 */
export class SignatureError extends InterchangeError {
  override readonly name: string = 'SignatureError';
  constructor(
    code: string,
    readonly reason: SignatureRejection,
    message: string,
  ) {
    super(code, message, { permanent: true });
  }
}

/** The message carries no signature header (or an empty one). */
export class SignatureMissingError extends SignatureError {
  override readonly name = 'SignatureMissingError';
  constructor(header: string) {
    super('SIGNATURE_MISSING', 'missing', `unsigned message: no '${header}' header`);
  }
}

/**
 * The signature is not valid: not a detached JWS of ours (`malformed`), it does not match the
 * message — body, a signed header or the signature altered, or made for another message
 * (`mismatch`) — or a header the verifier requires was not signed (`header-not-signed`).
 */
export class SignatureInvalidError extends SignatureError {
  override readonly name = 'SignatureInvalidError';
  constructor(reason: 'malformed' | 'mismatch' | 'header-not-signed', detail: string) {
    super('SIGNATURE_INVALID', reason, `invalid signature: ${detail}`);
  }
}

/** The signature names a key id the verifier does not hold (never issued, or removed after rotation). */
export class UnknownKeyError extends SignatureError {
  override readonly name = 'UnknownKeyError';
  constructor(readonly keyId: string) {
    super('SIGNATURE_UNKNOWN_KEY', 'unknown-key', `signed with unknown key '${keyId}'`);
  }
}

/**
 * The signature's algorithm is not the one its key is bound to: `alg: none`, or an HMAC signature
 * claiming an asymmetric key (the algorithm-confusion attack), or the reverse.
 */
export class AlgorithmNotAllowedError extends SignatureError {
  override readonly name = 'AlgorithmNotAllowedError';
  constructor(alg: string, keyId: string | undefined, allowed: string | undefined) {
    super(
      'SIGNATURE_ALGORITHM',
      'algorithm-not-allowed',
      allowed === undefined ? `algorithm '${alg.slice(0, 20)}' is never accepted` : `algorithm '${alg.slice(0, 20)}' is not allowed for key '${keyId ?? ''}' (bound to ${allowed})`,
    );
  }
}

/** The signature is older than the verifier's `maxAgeMs` (plus `toleranceMs` of clock skew). */
export class SignatureExpiredError extends SignatureError {
  override readonly name = 'SignatureExpiredError';
  constructor(ageMs: number, maxAgeMs: number) {
    super('SIGNATURE_EXPIRED', 'expired', `signature expired: signed ${ageMs} ms ago, at most ${maxAgeMs} ms accepted`);
  }
}

/** The signature is dated further in the future than the verifier's `toleranceMs` of clock skew. */
export class SignatureFutureDatedError extends SignatureError {
  override readonly name = 'SignatureFutureDatedError';
  constructor(aheadMs: number, toleranceMs: number) {
    super('SIGNATURE_FUTURE_DATED', 'future-dated', `signature dated ${aheadMs} ms in the future, at most ${toleranceMs} ms of clock skew tolerated`);
  }
}

/** A validly signed message was already processed (same key id and signature id): a replay. */
export class ReplayedMessageError extends SignatureError {
  override readonly name = 'ReplayedMessageError';
  constructor(keyId: string, signatureId: string) {
    super('SIGNATURE_REPLAYED', 'replayed', `replayed message: signature id '${signatureId.slice(0, 64)}' of key '${keyId}' was already processed`);
  }
}

/** The key that signed may not sign this message (`verify`'s `bindTo` said no: another device's key). */
export class SignerMismatchError extends SignatureError {
  override readonly name = 'SignerMismatchError';
  constructor(keyId: string) {
    super('SIGNATURE_SIGNER_MISMATCH', 'signer-mismatch', `key '${keyId}' may not sign this message`);
  }
}

/**
 * A copy of this validly signed message is being processed right now (its replay claim is held)
 * and still was after `inProgressDelayMs`: whether this copy is a replay is not known yet. Not
 * permanent: the route's error handler decides (reject → the source redelivers it later, then it is
 * a replay if the first copy succeeded, processed if it failed).
 */
export class ReplayInProgressError extends InterchangeError {
  override readonly name = 'ReplayInProgressError';
  constructor(keyId: string, signatureId: string) {
    super('SIGNATURE_REPLAY_IN_PROGRESS', `signature id '${signatureId.slice(0, 64)}' of key '${keyId}' is being processed by another copy; try again later`);
  }
}

/**
 * The step's in-memory replay memory holds `maxEntries` signature ids, none of them expired: a new
 * signature is refused rather than one still within its window forgotten (which would let its copy be
 * replayed). Not permanent: the route's error handler decides (retry later, or reject to the source);
 * the memory frees itself as ids expire. A sign of a flood, or of a `maxEntries` too small for the traffic.
 */
export class ReplayMemoryFullError extends InterchangeError {
  override readonly name = 'ReplayMemoryFullError';
  constructor(maxEntries: number) {
    super('SIGNATURE_REPLAY_MEMORY_FULL', `the replay memory holds ${maxEntries} unexpired signature ids; try again later`);
  }
}

/**
 * A message cannot be signed: its body has no canonical form (a cycle, a `BigInt`, a non-finite
 * number) — permanent — or the signer has no usable key (no private key, no keyring) — not permanent.
 */
export class SigningError extends InterchangeError {
  override readonly name = 'SigningError';
  constructor(message: string, options: { readonly cause?: unknown; readonly permanent: boolean }) {
    super('SIGNING_FAILED', `cannot sign: ${message}`, options);
  }
}
