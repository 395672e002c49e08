import { deliveryStep, stepSpec, type Message, type StepFactory, type StepSpec } from '../src/core/index.ts';
import { DEFAULT_MAX_ENVELOPE_BYTES, type EncryptionKey } from '../src/security/envelope.ts';
import { checkKeys, decryptWith, parsePointers, type DecryptOptions } from '../src/security/encrypt-message.ts';
import type { Keyring } from '../src/security/keyring.ts';

export type { DecryptOptions };

/**
 * Decrypts what `.encrypt()` made, on the way in: the whole body (an envelope object, or its JSON as
 * text or bytes) or each of `fields` — a present field must hold an envelope (plaintext there is
 * refused). The key is picked by the envelope's `kid`, active or retiring (rotation without downtime).
 * Every rejection is permanent and typed — `DecryptionFailedError` (tampered, moved to another
 * message or field, wrong key), `UnknownEncryptionKeyError`, `MalformedEnvelopeError` (shape, encoding, size over
 * `maxEnvelopeBytes`, plaintext), `UnsupportedEnvelopeError` (other version or algorithm: no
 * downgrade): never retried, never passed on — the dead-letter channel gets the message as it came,
 * still encrypted, with the reason; no key, plaintext or ciphertext in the error. A keyring key that is
 * not 32 bytes (a `keys` function's fault) fails transiently: `EncryptionKeyInvalidError`.
 * A failure in a LATER step dead-letters the message as that step got it — decrypted — unless the
 * route's error handler dead-letters the original: `.onError(policy, { deadLetterUri, prepareDeadLetter: (_failed, original) => original })`.
 * The outer body (fields mode) and decrypted JSON are parsed with `parseJsonSafely` (no `__proto__`/`constructor` keys, nesting ≤ 64).
 * Synchronous, no state between messages.
 * @example from('amqp:queue/records').decrypt<Record>({ keys, fields: ['/patient/name', '/card'] }).process(store)
 */
export function decrypt<T = unknown, I = unknown>({ keys, fields, bindMessageId = true, maxEnvelopeBytes = DEFAULT_MAX_ENVELOPE_BYTES }: DecryptOptions): StepFactory<I, T> {
  checkKeys(keys, 'decrypt');
  const pointers = fields === undefined ? undefined : parsePointers(fields, 'decrypt');
  const current: () => Keyring<EncryptionKey> = typeof keys === 'function' ? keys : () => keys;
  return (context) =>
    deliveryStep<I, T>(context, (delivery, emit) => {
      emit(delivery.with(decryptWith(delivery.message, current(), fields, pointers, bindMessageId, maxEnvelopeBytes) as Message<T>));
    });
}

/** `.decrypt(options)`: the decryptor's DSL entry (kind `decrypt`). `T` is the body type from here on, `I` the one arriving. */
export function decryptStep<T = unknown, I = unknown>(options: DecryptOptions): StepSpec<I, T> {
  return stepSpec('decrypt', decrypt<T, I>(options));
}
