import { describe, expect, it } from 'vitest';
import { AttemptCounter } from '../../adapters/amqp10/attempt-counter.ts';

describe('amqp10 AttemptCounter', () => {
  it('when full of live counts, refuses a new one instead of dropping a live count (which would restart a poison message at attempt 2)', () => {
    let now = 0;
    const counter = new AttemptCounter(2, 1_000, () => now);
    expect(counter.record('/q', 'a', 1)).toBe(true);
    expect(counter.record('/q', 'b', 1)).toBe(true);
    expect(counter.record('/q', 'c', 1)).toBe(false);
    expect([counter.last('/q', 'a'), counter.last('/q', 'b'), counter.last('/q', 'c')]).toEqual([1, 1, undefined]);
    expect(counter.record('/q', 'a', 2)).toBe(true); // a known key is always updated
    now = 1_500;
    counter.record('/q', 'a', 3);
    expect(counter.record('/q', 'c', 1)).toBe(true); // b went stale: dropped for c
    expect([counter.last('/q', 'a'), counter.last('/q', 'b'), counter.last('/q', 'c')]).toEqual([3, undefined, 1]);
    counter.forget('/q', 'a');
    expect(counter.size).toBe(1);
  });
});
