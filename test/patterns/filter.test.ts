import { describe, expect, it } from 'vitest';
import { filter } from '../../patterns/filter.ts';
import { drive, Harness, sources } from './harness.ts';

describe('filter', () => {
  it('passes matching messages on unsettled, in order', () => {
    const harness = new Harness();
    const { output, send } = drive(harness.build(filter<number>((m) => m.body % 2 === 0)));
    const inputs = sources([2, 4, 6]);
    send(...inputs);
    expect(output.bodies).toEqual([2, 4, 6]);
    expect(output.deliveries.map((d) => d.message)).toEqual(inputs.map((s) => s.message));
    expect(inputs.map((s) => s.settlements)).toEqual([0, 0, 0]);
  });

  it('acks a dropped message exactly once and counts it as filtered', () => {
    const harness = new Harness();
    const { output, send } = drive(harness.build(filter<number>((m) => m.body > 10)));
    const [low, high] = sources([1, 20]);
    send(low!, high!);
    expect(output.bodies).toEqual([20]);
    expect(harness.filtered.map((d) => d.message.id)).toEqual([low!.message.id]);
    expect(low!.acks).toBe(1);
    expect(low!.nacks).toBe(0);
    expect(high!.settlements).toBe(0);
    expect(harness.failures).toEqual([]);
  });

  it('fails only the message whose predicate throws; later messages still flow', () => {
    const harness = new Harness();
    const boom = new Error('bad reading');
    const { output, send } = drive(
      harness.build(
        filter<number>((m) => {
          if (m.body === 13) throw boom;
          return true;
        }),
      ),
    );
    const [before, bad, after] = sources([1, 13, 2]);
    send(before!, bad!, after!);
    expect(output.bodies).toEqual([1, 2]);
    expect(harness.failures).toHaveLength(1);
    expect(harness.failures[0]).toMatchObject({ error: boom, attempt: 1 });
    expect(harness.failures[0]!.delivery.message.id).toBe(bad!.message.id);
    expect(bad!.nacks).toBe(1);
    expect(bad!.reasons).toEqual([boom]);
    expect(harness.filtered).toEqual([]);
    expect(output.error).toBeUndefined();
    expect(output.completed).toBe(false);
  });

  it('completes when its source completes', () => {
    const harness = new Harness();
    const { input, output, send } = drive(harness.build(filter<number>(() => false)));
    send(...sources([1]));
    input.complete();
    expect(output.completed).toBe(true);
  });
});
