import { deliveryStep, isPermanentFailure, stepSpec, type StepFactory, type StepSpec } from '../src/core/index.ts';
import { failPermanently } from '../src/schema/index.ts';
import { createSigner, type SignOptions } from '../src/security/signing.ts';

export interface SignStepOptions<T> extends Omit<SignOptions<T>, 'now'> {
  /** EdDSA/ES256 signatures in progress at once (default 16; HS256 signs synchronously). */
  readonly concurrency?: number;
}

/**
 * Signer: signs each message with the keyring's active key and passes it on with the signature in
 * its `signature` header (a detached JWS over the body and the `headers` named; see `createSigner`).
 * The signing time is the step's scheduler clock. HS256 is synchronous; EdDSA/ES256 run up to
 * `concurrency` at once, in order of completion.
 * Failures: a body with no canonical JSON form (a cycle, a `BigInt`, `NaN`, a lone surrogate, a
 * `__proto__`/`constructor` member, a `Map`/`Set`/class instance — see `canonicalJson`) fails that message with
 * a permanent `SigningError` (dead-lettered, never retried); a keyring function that throws or
 * returns a key that cannot sign fails it transiently (the route's error handler decides).
 * Throws `RouteDefinitionError` for wrong options when the route is built.
 * @example from('memory:readings').sign({ keys: signingKeys, headers: ['deviceId'] }).to('amqp:exchange/readings')
 */
export function sign<T>({ concurrency = 16, ...options }: SignStepOptions<T>): StepFactory<T, T> {
  return (context) => {
    const signer = createSigner<T>({ ...options, now: () => context.scheduler.now() });
    return deliveryStep<T, T>(
      context,
      (delivery, emit) => {
        let signed;
        try {
          signed = signer(delivery.message);
        } catch (error) {
          if (!isPermanentFailure(error)) throw error;
          failPermanently(context, delivery, error);
          return undefined;
        }
        if (!(signed instanceof Promise)) return emit(delivery.with(signed));
        return signed.then((message) => emit(delivery.with(message)));
      },
      { concurrency },
    );
  };
}

/** `.sign(options)`: the signer's DSL entry (kind `sign`). */
export function signStep<T>(options: SignStepOptions<T>): StepSpec<T, T> {
  return stepSpec('sign', sign<T>(options));
}
