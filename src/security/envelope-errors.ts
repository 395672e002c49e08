import { InterchangeError } from '../core/errors.ts';

/*
 * Why a message cannot be decrypted. Every one is permanent (the same envelope fails the same way on
 * every attempt): the runtime never retries it, a dead-letter channel takes the message — still
 * encrypted — with the reason. No message text holds key material, plaintext or ciphertext: only key
 * ids (public: they travel in every envelope), JSON pointers and sizes.
 */

/**
 * The envelope names a key id the keyring does not hold (never had it, or the key was removed after
 * rotation). Not signing's `UnknownKeyError` (a `SignatureError`, code `SIGNATURE_UNKNOWN_KEY`): a
 * decryption failure is not a signature failure, and both are exported from `interchange-eip/security`.
 */
export class UnknownEncryptionKeyError extends InterchangeError {
  override readonly name = 'UnknownEncryptionKeyError';
  constructor(
    readonly keyId: string,
    where: string,
  ) {
    super('ENCRYPTION_UNKNOWN_KEY', `${where}: encrypted with key '${keyId.slice(0, 128)}', which the keyring does not hold`, { permanent: true });
  }
}

/**
 * Authentication failed (AES-GCM tag of the wrapped data key or of the content): the envelope was
 * altered, was made for another message or field (its AAD differs), or with another key of that id.
 */
export class DecryptionFailedError extends InterchangeError {
  override readonly name = 'DecryptionFailedError';
  constructor(where: string, what: 'data key' | 'content') {
    super('DECRYPTION_FAILED', `${where}: the ${what} failed authentication — the envelope was altered, made for another message or field, or with another key`, { permanent: true });
  }
}

/** Not an envelope where one must be: wrong shape, bad encoding, wrong sizes, over the size bound — or a plain value where the step expects ciphertext. */
export class MalformedEnvelopeError extends InterchangeError {
  override readonly name = 'MalformedEnvelopeError';
  constructor(where: string, problem: string) {
    super('ENVELOPE_MALFORMED', `${where}: ${problem}`, { permanent: true });
  }
}

/** A well-formed envelope of another version or algorithm than this one (`v` 1, `A256GCMKW` + `A256GCM`): refused, never downgraded. */
export class UnsupportedEnvelopeError extends InterchangeError {
  override readonly name = 'UnsupportedEnvelopeError';
  constructor(where: string, problem: string) {
    super('ENVELOPE_UNSUPPORTED', `${where}: ${problem}`, { permanent: true });
  }
}

/**
 * A key the keyring holds is not a 32-byte AES-256 key (a `keys` function returned a wrong keyring):
 * a configuration fault, not the message's. Not permanent — the route's error handler decides (retry,
 * reject to the source) — so that genuine messages are not dead-lettered as undecryptable meanwhile.
 */
export class EncryptionKeyInvalidError extends InterchangeError {
  override readonly name = 'EncryptionKeyInvalidError';
  constructor(keyId: string, size: number | undefined) {
    super('ENCRYPTION_KEY_INVALID', `key '${keyId.slice(0, 128)}' is not a 32-byte AES-256 key (${size === undefined ? 'not a secret key' : `${size} bytes`}): check the keyring`);
  }
}
