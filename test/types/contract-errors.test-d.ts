import { describe, expectTypeOf, it } from 'vitest';
import { from } from '../../facade/index.ts';
import type { ContractCheck } from '../../src/spi.ts';
import type { ContractProblems } from '../../src/schema/contract-types.ts';
import type { OrderPlacedV1 } from '../../schemas/types.generated.ts';

const line = { sku: 'A-1', quantity: 2, unitPrice: 9.5 };
const order = { orderId: 'o-1', customerId: 'c-1', lines: [line], total: 19, currency: 'EUR', placedAt: '2026-01-01T00:00:00Z' };

describe('contract mismatches name the offending field', () => {
  it('lets a matching body through, nested arrays and optional fields included', () => {
    expectTypeOf<ContractCheck<typeof order, 'order.placed@1'>>().toEqualTypeOf<unknown>();
    expectTypeOf<ContractCheck<OrderPlacedV1, 'order.placed@1'>>().toEqualTypeOf<unknown>();
    expectTypeOf<ContractCheck<{ deviceId: string; ts: string; temperature: number; humidity?: number }, 'device.telemetry@1'>>().toEqualTypeOf<unknown>();
    from('memory:in').transform(() => order).to('memory:out', { contract: 'order.placed@1' });
  });

  it('names a missing field, at any depth', () => {
    expectTypeOf<ContractCheck<{ deviceId: string; timestamp: number; temperatureC: number }, 'backend.reading@1'>>().toEqualTypeOf<{
      readonly contractMismatch: '`temperatureF` is missing for backend.reading@1';
    }>();
    expectTypeOf<ContractCheck<Omit<typeof order, 'lines'> & { lines: { sku: string; quantity: number }[] }, 'order.placed@1'>>().toEqualTypeOf<{
      readonly contractMismatch: '`lines[].unitPrice` is missing for order.placed@1';
    }>();
  });

  it('names an extra field where the schema forbids others (additionalProperties: false), nested ones too', () => {
    expectTypeOf<ContractCheck<typeof order & { note: string }, 'order.placed@1'>>().toEqualTypeOf<{ readonly contractMismatch: '`note` is not a field of order.placed@1' }>();
    expectTypeOf<ContractCheck<Omit<typeof order, 'lines'> & { lines: (typeof line & { discount: number })[] }, 'order.placed@1'>>().toEqualTypeOf<{
      readonly contractMismatch: '`lines[].discount` is not a field of order.placed@1';
    }>();
    from('memory:in')
      .transform(() => ({ ...order, lines: [{ ...line, discount: 0.1 }] }))
      // @ts-expect-error `lines[].discount` is not a field of order.placed@1 (its items have additionalProperties: false)
      .to('memory:out', { contract: 'order.placed@1' });
  });

  it('names a field of the wrong type, saying what the contract expects', () => {
    expectTypeOf<ContractCheck<Omit<typeof order, 'total'> & { total: string }, 'order.placed@1'>>().toEqualTypeOf<{ readonly contractMismatch: '`total` must be a number for order.placed@1' }>();
    expectTypeOf<ContractCheck<{ deviceId: string; ts: string; temperature: number; unit: 'K' }, 'device.telemetry@2'>>().toEqualTypeOf<{
      readonly contractMismatch: "`unit` must be one of 'C', 'F' for device.telemetry@2";
    }>();
    expectTypeOf<ContractCheck<{ deviceId: string; ts: string; temperature: number; unit?: 'C' }, 'device.telemetry@2'>>().toEqualTypeOf<{
      readonly contractMismatch: '`unit` may be undefined, but is required by device.telemetry@2';
    }>();
    expectTypeOf<ContractCheck<{ deviceId: string; ts: string; temperature: number; unit: undefined }, 'device.telemetry@2'>>().toEqualTypeOf<{
      readonly contractMismatch: '`unit` is missing for device.telemetry@2';
    }>();
    expectTypeOf<ContractProblems<{ a: number }, { readonly a: string | null }>>().toEqualTypeOf<'`a` must be a string or null for'>();
    expectTypeOf<ContractCheck<number, 'device.telemetry@2'>>().toEqualTypeOf<{ readonly contractMismatch: 'the body must be an object for device.telemetry@2' }>();
    expectTypeOf<ContractCheck<unknown, 'device.telemetry@2'>>().toEqualTypeOf<{
      readonly contractMismatch: 'the body is unknown: .validate() or .transform() it before sending it as device.telemetry@2';
    }>();
  });

  it('lists every problem at once', () => {
    expectTypeOf<ContractCheck<Omit<typeof order, 'currency' | 'total'> & { total: string; note: string }, 'order.placed@1'>>().toEqualTypeOf<{
      readonly contractMismatch: '`currency` is missing for order.placed@1' | '`total` must be a number for order.placed@1' | '`note` is not a field of order.placed@1';
    }>();
  });

  it('checks each member of a union body', () => {
    type Either = typeof order | (typeof order & { note: string });
    expectTypeOf<ContractCheck<Either, 'order.placed@1'>>().toEqualTypeOf<{ readonly contractMismatch: '`note` is not a field of order.placed@1' }>();
  });

  it('lets extra fields through where the schema allows them (an index signature), and any body', () => {
    interface Open { readonly id: string; readonly meta: { readonly [field: string]: unknown } }
    expectTypeOf<ContractProblems<{ id: string; meta: { a: 1; b: { c: 2 } } }, Open>>().toEqualTypeOf<never>();
    expectTypeOf<ContractProblems<{ id: string; meta: object; x: 1 }, Open>>().toEqualTypeOf<'`x` is not a field of'>();
    expectTypeOf<ContractProblems<{ id: string; meta: object }, { readonly id: string; readonly [field: string]: unknown }>>().toEqualTypeOf<never>();
    // eslint-disable-next-line @typescript-eslint/no-explicit-any -- `any` opts out, as everywhere in TypeScript
    expectTypeOf<ContractCheck<any, 'order.placed@1'>>().toEqualTypeOf<unknown>();
    expectTypeOf<ContractCheck<{ x: 1 }, never>>().toEqualTypeOf<unknown>();
  });
});
