import { deliveryStep, stepSpec, withBody, type Message, type StepFactory, type StepSpec } from '../src/core/index.ts';

/**
 * Message translator: a new body from the message; id and headers kept (the `schema` header is
 * dropped, as the new body is unchecked). A throwing translator fails that message only.
 * @example from('memory:celsius').transform((m) => ({ ...m.body, f: m.body.c * 9 / 5 + 32 }))
 */
export function transform<I, O>(translate: (message: Message<I>) => O): StepFactory<I, O> {
  return (context) =>
    deliveryStep<I, O>(context, (delivery, emit) => {
      emit(delivery.with(withBody(delivery.message, translate(delivery.message))));
    });
}

/** `.transform(translate)`: the translator's DSL entry (kind `transform`). */
export function transformStep<I, O>(translate: (message: Message<I>) => O): StepSpec<I, O> {
  return stepSpec('transform', transform(translate));
}
