import { fanOut, stepSpec, type AnyStep, type DeclaredStep, type Message, type Step, type StepFactory, type StepSpec } from '../src/core/index.ts';

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

/** A `when` of the DSL's choice: its predicate and the steps of its branch. */
export interface ChoiceWhen<T> {
  readonly when: (message: Message<T>) => boolean;
  readonly steps: readonly DeclaredStep[];
}

/**
 * `.choice(…)`: the content-based router's DSL entry (kind `choice`; its branches are the `when`s in
 * order, then `otherwise`). `O` is what leaves the branches, as the DSL typed them.
 */
export function choiceStep<T, O = unknown>(whens: readonly ChoiceWhen<T>[], otherwise?: readonly DeclaredStep[]): StepSpec<T, O> {
  return stepSpec<T, O>(
    'choice',
    (context, branches) =>
      choice(
        whens.map((when, index) => ({ when: when.when, step: branches[index] as AnyStep })),
        otherwise === undefined ? undefined : branches[whens.length],
      )(context) as Step<T, O>,
    { branches: [...whens.map((when) => when.steps), ...(otherwise === undefined ? [] : [otherwise])] },
  );
}
