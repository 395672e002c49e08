import { describe, expect, it } from 'vitest';
import { from } from '../../facade/route-builder.ts';
import { aggregateStep } from '../../patterns/aggregate.ts';
import { choiceStep } from '../../patterns/choice.ts';
import { enrichStep } from '../../patterns/enrich.ts';
import { filterStep } from '../../patterns/filter.ts';
import { multicastStep } from '../../patterns/multicast.ts';
import { processStep } from '../../patterns/process.ts';
import { recipientListStep } from '../../patterns/recipient-list.ts';
import { setHeadersStep } from '../../patterns/set-headers.ts';
import { splitStep } from '../../patterns/split.ts';
import { toStep } from '../../patterns/to.ts';
import { transformStep } from '../../patterns/transform.ts';
import { upcast, upcastStep } from '../../patterns/upcast.ts';
import { validate, validateStep } from '../../patterns/validate.ts';
import { wireTapStep } from '../../patterns/wire-tap.ts';
import type { StepDefinition, StepSpec } from '../../src/core/index.ts';
import { drive, Harness, sources } from './harness.ts';

/** What a route definition says of a step, beside its id, place and factory. */
const data = (step: StepSpec | StepDefinition): { kind: string; sendsTo: readonly string[]; sends: boolean; branches: number } => ({
  kind: step.kind,
  sendsTo: step.sendsTo,
  sends: step.sends,
  branches: step.branches.length,
});

describe("a pattern's DSL entry (its StepSpec)", () => {
  it('is what the route definition holds for the step: the builder adds only id and place', () => {
    const specs: StepSpec[] = [
      filterStep(() => true),
      transformStep((m) => m.body),
      setHeadersStep(() => ({})),
      splitStep(() => []),
      aggregateStep({ correlate: () => 'k', strategy: () => 0, size: 2 }),
      wireTapStep('memory:audit'),
      wireTapStep('memory:audit-{region}'),
      enrichStep(async () => 1, (m) => m.body),
      processStep(() => {}),
      recipientListStep(() => ['memory:a']),
      validateStep('c@1'),
      upcastStep('c', 1, 2),
      toStep('memory:out'),
      toStep('memory:out-{region}'),
      toStep(() => 'memory:x'),
    ] as StepSpec[];
    const route = from('memory:in')
      .filter(() => true)
      .transform((m) => m.body)
      .setHeaders(() => ({}))
      .split(() => [])
      .aggregate({ correlate: () => 'k', strategy: () => 0, size: 2 })
      .wireTap('memory:audit')
      .wireTap('memory:audit-{region}')
      .enrich(async () => 1, (m) => m.body)
      .process(() => {})
      .recipientList(() => ['memory:a'])
      // (the DSL's .validate/.upcast take only contracts of the typed contract map: same spec, by .step)
      .step('validate', validate('c@1'))
      .step('upcast', upcast('c', 1, 2))
      .to('memory:out')
      .to('memory:out-{region}')
      .to(() => 'memory:x')
      .definition();
    expect(route.steps.map(data)).toEqual(specs.map(data));
    expect(specs.map((spec) => spec.kind)).toEqual(['filter', 'transform', 'setHeaders', 'split', 'aggregate', 'wireTap', 'wireTap', 'enrich', 'process', 'recipientList', 'validate', 'upcast', 'to', 'to', 'to']);
    expect(route.steps.filter((step) => step.sends).map((step) => step.id)).toEqual(['recipientList-1', 'to-1', 'to-2', 'to-3']);
    expect(route.steps.flatMap((step) => step.sendsTo)).toEqual(['memory:audit', 'memory:out']); // templates are known per message only
  });

  it("nests branches as the route's own steps, in order (whens, then otherwise); a branch that sends makes its step send", () => {
    const route = from('memory:in')
      .choice((c) => c.when(() => true, (b) => b.filter(() => true)).otherwise((b) => b.to('memory:other')))
      .multicast([(b) => b.transform((m) => m.body), (b) => b.wireTap('memory:tap')])
      .to('memory:out')
      .definition();
    const [choice, multicast] = route.steps;
    expect(choice?.kind).toBe('choice');
    expect(choice?.branches.map((branch) => branch.map((step) => step.id))).toEqual([['filter-1'], ['to-1']]);
    expect(choice?.sends).toBe(true);
    expect(multicast?.kind).toBe('multicast');
    expect(multicast?.branches.map((branch) => branch.map((step) => step.id))).toEqual([['transform-1'], ['wireTap-1']]);
    expect(multicast?.sends).toBe(false); // a wire tap is outside the message's guarantee
    expect(data(choiceStep([{ when: () => true, steps: [] }], [])).branches).toBe(2);
    expect(data(multicastStep([[], [], []])).branches).toBe(3);
  });

  it("builds the step from the pattern's factory", async () => {
    const route = from<number>('memory:in').filter((m) => m.body > 1).to('memory:out').definition();
    const harness = new Harness();
    const { output, send } = drive(route.steps[0]!.build(harness.context));
    send(...sources([1, 2, 3]));
    expect(output.bodies).toEqual([2, 3]);
    expect(harness.filtered.map((delivery) => delivery.message.body)).toEqual([1]);
  });
});
