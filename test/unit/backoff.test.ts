import { describe, expect, it } from 'vitest';
import { backoffDelay } from '../../src/spi.ts';

describe('backoffDelay', () => {
  it('grows exponentially up to the ceiling, spread by the jitter', () => {
    const middle = { initialMs: 100, maxMs: 10_000, random: () => 0.5 };
    expect([0, 1, 2, 3, 7, 8].map((attempt) => backoffDelay(attempt, middle))).toEqual([100, 200, 400, 800, 10_000, 10_000]);
    expect(backoffDelay(3, { initialMs: 100, maxMs: 10_000, random: () => 0 })).toBe(400);
    expect(backoffDelay(3, { initialMs: 100, maxMs: 10_000, random: () => 0.999_999 })).toBe(1200);
    expect(backoffDelay(2, { initialMs: 100, maxMs: 10_000, multiplier: 3, jitter: 0.2, random: () => 0 })).toBe(720);
  });

  it('stays finite however many attempts an outage counts', () => {
    expect(backoffDelay(5_000, { initialMs: 250, maxMs: 30_000, random: () => 0.5 })).toBe(30_000);
    expect(backoffDelay(5_000, { initialMs: 0, maxMs: 30_000, random: () => 0.5 })).toBe(0);
  });
});
