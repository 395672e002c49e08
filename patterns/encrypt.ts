import { deliveryStep, stepSpec, type StepFactory, type StepSpec } from '../src/core/index.ts';
import { checkKeys, encryptWith, parsePointers, type EnvelopeOptions } from '../src/security/encrypt-message.ts';
import type { Keyring } from '../src/security/keyring.ts';
import type { EncryptionKey } from '../src/security/envelope.ts';

export type EncryptOptions = EnvelopeOptions;

/**
 * Envelope encryption: the whole body — or each of `fields` (JSON pointers) — sealed into a JWE
 * envelope (`A256GCMKW` + `A256GCM`, see `Envelope`): a fresh AES-256 data key per message and
 * field, wrapped by the keyring's active key, its id in the envelope; bound (AAD) to the message id
 * and the field's pointer. Same id and headers; a whole body's `contentType` becomes
 * `application/jose+json` (the original travels inside). Synchronous, no state between messages.
 * `keys` may be a function: read per message, so a rotated keyring takes over without a restart.
 * A body that is neither bytes, text nor JSON fails with `UnencodableMessageError` (permanent).
 * Key and field problems are `RouteDefinitionError`s when the route is declared.
 * @example from('memory:patients').encrypt({ keys, fields: ['/patient/name', '/card'] }).to('amqp:queue/records')
 */
export function encrypt<T>({ keys, fields, bindMessageId = true }: EncryptOptions): StepFactory<T, unknown> {
  checkKeys(keys, 'encrypt');
  const pointers = fields === undefined ? undefined : parsePointers(fields, 'encrypt');
  const current: () => Keyring<EncryptionKey> = typeof keys === 'function' ? keys : () => keys;
  return (context) =>
    deliveryStep<T, unknown>(context, (delivery, emit) => {
      emit(delivery.with(encryptWith(delivery.message, current(), fields, pointers, bindMessageId)));
    });
}

/** `.encrypt(options)`: the encryptor's DSL entry (kind `encrypt`). */
export function encryptStep<T>(options: EncryptOptions): StepSpec<T, unknown> {
  return stepSpec('encrypt', encrypt<T>(options));
}
