import { deliveryStep, stepSpec, type Message, type StepFactory, type StepSpec } from '../src/core/index.ts';

/**
 * Message filter: passes messages for which `predicate` is true. Dropped messages are acked and
 * counted as filtered (intentionally dropped, not lost). A throwing predicate fails that message only.
 * @example from('memory:readings').filter((m) => m.body.temperature > -50).to('memory:valid')
 */
export function filter<T>(predicate: (message: Message<T>) => boolean): StepFactory<T, T> {
  return (context) =>
    deliveryStep<T, T>(context, (delivery, emit) => {
      if (predicate(delivery.message)) emit(delivery);
      else context.filtered(delivery);
    });
}

/** `.filter(predicate)`: the filter's DSL entry (kind `filter`). */
export function filterStep<T>(predicate: (message: Message<T>) => boolean): StepSpec<T, T> {
  return stepSpec('filter', filter(predicate));
}
