import { describe, expectTypeOf, it } from 'vitest';
import { assertNever } from '../../src/spi.ts';
import { from, type FailurePolicy, type Message } from '../../facade/index.ts';

interface Reading {
  deviceId: string;
  temperature: number;
}

describe('route DSL types', () => {
  it('carries the body type from step to step', () => {
    from<Reading>('memory:in')
      .filter((m) => {
        expectTypeOf(m).toEqualTypeOf<Message<Reading>>();
        return m.body.temperature > 0;
      })
      .transform((m) => ({ id: m.body.deviceId, f: (m.body.temperature * 9) / 5 + 32 }))
      .filter((m) => {
        expectTypeOf(m.body).toEqualTypeOf<{ id: string; f: number }>();
        return true;
      })
      .to('memory:out');
  });

  it('refuses to read a field the body does not have', () => {
    from<Reading>('memory:in')
      // @ts-expect-error `humidity` is not a field of Reading
      .filter((m) => m.body.humidity > 0)
      .to('memory:out');
    from<Reading>('memory:in')
      .transform((m) => m.body.temperature)
      // @ts-expect-error after the transform the body is a number
      .filter((m) => m.body.deviceId === 'x')
      .to('memory:out');
  });

  it('types a choice as the union of its branches, plus the input while unmatched messages pass through', () => {
    const closed = from<Reading>('memory:in').choice((c) =>
      c.when((m) => m.body.temperature > 50, (b) => b.transform(() => 'alert' as const)).otherwise((b) => b.transform(() => 42)),
    );
    expectTypeOf(closed).toEqualTypeOf<ReturnType<typeof from<'alert' | 42 | number>>>();
    const open = from<Reading>('memory:in').choice((c) => c.when((m) => m.body.temperature > 50, (b) => b.transform(() => 'alert' as const)));
    open.filter((m) => {
      expectTypeOf(m.body).toEqualTypeOf<'alert' | Reading>();
      return true;
    });
  });

  it('types split parts and aggregates', () => {
    from<{ lines: { sku: string }[] }>('memory:orders')
      .split((m) => m.body.lines)
      .filter((m) => {
        expectTypeOf(m.body).toEqualTypeOf<{ sku: string }>();
        return true;
      })
      .aggregate({ correlate: (m) => m.body.sku, strategy: (count: number | undefined) => (count ?? 0) + 1, size: 3 })
      .filter((m) => {
        expectTypeOf(m.body).toEqualTypeOf<number>();
        return true;
      })
      .to('memory:out');
  });

  it('makes failure policies exhaustive', () => {
    const describePolicy = (policy: FailurePolicy): string => {
      switch (policy.action) {
        case 'retry':
          return `retry in ${policy.delayMs}`;
        case 'deadLetter':
          return 'dead letter';
        case 'discard':
          return 'discard';
        case 'reject':
          return 'reject';
        default:
          return assertNever(policy);
      }
    };
    expectTypeOf(describePolicy).returns.toEqualTypeOf<string>();
    const incomplete = (policy: FailurePolicy): string => {
      switch (policy.action) {
        case 'retry':
          return 'retry';
        case 'deadLetter':
          return 'dead letter';
        default:
          // @ts-expect-error 'discard' and 'reject' are not handled
          return assertNever(policy);
      }
    };
    expectTypeOf(incomplete).toBeFunction();
    // @ts-expect-error retry needs a delay
    const wrong: FailurePolicy = { action: 'retry' };
    expectTypeOf(wrong).toEqualTypeOf<FailurePolicy>();
  });
});
