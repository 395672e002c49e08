import { fanOut, stepSpec, type AnyStep, type DeclaredStep, type Step, type StepFactory, type StepSpec } from '../src/core/index.ts';

/**
 * Multicast: every message goes to every branch (the same message, so ids stay stable for
 * idempotent consumers). The source message is acked once every copy has settled; if any copy is
 * rejected, the source is rejected with that reason. What leaves the branches continues after it.
 * @example multicast([toReadings, toAggregator])
 */
export function multicast<T>(branches: readonly AnyStep[]): StepFactory<T, unknown> {
  return (context) =>
    fanOut(context, branches, (delivery, inputs) => {
      const copies = delivery.fork(inputs.map(() => delivery.message));
      copies.forEach((copy, index) => inputs[index]?.next(copy));
    }) as Step<T, unknown>;
}

/** `.multicast(branches)`: the multicast's DSL entry (kind `multicast`). `O` is what leaves the branches, as the DSL typed them. */
export function multicastStep<T, O = unknown>(branches: readonly (readonly DeclaredStep[])[]): StepSpec<T, O> {
  return stepSpec<T, O>('multicast', (context, compiled) => multicast<T>(compiled)(context) as Step<T, O>, { branches });
}
