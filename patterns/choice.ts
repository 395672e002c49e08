import { fanOut, type AnyStep, type Message, type Step, type StepFactory } from '../src/core/index.ts';

export interface ChoiceBranch<T> {
  readonly when: (message: Message<T>) => boolean;
  readonly step: AnyStep;
}

/**
 * Content-based router: each message goes to the first branch whose predicate holds, else to
 * `otherwise`; with no `otherwise` it continues after the choice unchanged (Camel's semantics).
 * What leaves the branches continues after the choice. A throwing predicate fails that message only.
 * @example choice([{ when: (m) => m.body.temperatureC >= 50, step: alerts }], normal)
 */
export function choice<T>(branches: readonly ChoiceBranch<T>[], otherwise?: AnyStep): StepFactory<T, unknown> {
  return (context) => {
    const steps: AnyStep[] = [...branches.map((branch) => branch.step), otherwise ?? ((source) => source)];
    const fallback = branches.length;
    return fanOut(context, steps, (delivery, inputs) => {
      const message = delivery.message as Message<T>;
      let index = 0;
      while (index < fallback && !(branches[index] as ChoiceBranch<T>).when(message)) index += 1;
      inputs[index]?.next(delivery);
    }) as Step<T, unknown>;
  };
}
