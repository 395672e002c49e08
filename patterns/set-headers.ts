import { deliveryStep, stepSpec, withHeaders, type Headers, type Message, type StepFactory, type StepSpec } from '../src/core/index.ts';

/**
 * Header enricher: adds or replaces headers computed from the message (`undefined` removes one).
 * @example .setHeaders((m) => ({ deviceId: m.body.deviceId }))
 */
export function setHeaders<T>(compute: (message: Message<T>) => Headers): StepFactory<T, T> {
  return (context) =>
    deliveryStep<T, T>(context, (delivery, emit) => {
      emit(delivery.with(withHeaders(delivery.message, compute(delivery.message))));
    });
}

/** `.setHeaders(compute)`: the header enricher's DSL entry (kind `setHeaders`). */
export function setHeadersStep<T>(compute: (message: Message<T>) => Headers): StepSpec<T, T> {
  return stepSpec('setHeaders', setHeaders(compute));
}
