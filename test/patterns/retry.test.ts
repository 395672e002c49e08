import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { retry } from '../../patterns/retry.ts';
import { InterchangeError, StepError } from '../../src/core/index.ts';

const failure = (cause: Error = new Error('boom')): StepError => new StepError('route', 'step', 'here.ts:1', cause);

describe('retry', () => {
  it('grows delays exponentially from the initial delay', () => {
    const policy = retry({ maxAttempts: 5, initialDelayMs: 100, multiplier: 3, jitter: 0 });
    expect([1, 2, 3, 4].map((attempt) => policy.delayAfter(attempt, failure()))).toEqual([100, 300, 900, 2700]);
  });

  it('caps delays at maxDelayMs', () => {
    const policy = retry({ maxAttempts: 10, initialDelayMs: 100, multiplier: 10, maxDelayMs: 5000, jitter: 0 });
    expect([1, 2, 3, 4].map((attempt) => policy.delayAfter(attempt, failure()))).toEqual([100, 1000, 5000, 5000]);
  });

  it('uses the documented defaults: 3 attempts, 200 ms doubling, ±20 % jitter', () => {
    const low = retry({ random: () => 0 });
    const high = retry({ random: () => 0.999999 });
    expect(low.maxAttempts).toBe(3);
    expect([low.delayAfter(1, failure()), low.delayAfter(2, failure()), low.delayAfter(3, failure())]).toEqual([160, 320, undefined]);
    expect([high.delayAfter(1, failure()), high.delayAfter(2, failure())]).toEqual([240, 480]);
  });

  it('spreads each delay within ±jitter of its base, driven by the random source', () => {
    const at = (r: number) => retry({ maxAttempts: 3, initialDelayMs: 1000, jitter: 0.25, random: () => r }).delayAfter(1, failure());
    expect(at(0)).toBe(750);
    expect(at(0.5)).toBe(1000);
    expect(at(0.999999)).toBe(1250);
  });

  it('property: every delay lies within [base × (1 − jitter), base × (1 + jitter)]', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 10_000 }),
        fc.double({ min: 1, max: 4, noNaN: true }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
        fc.integer({ min: 1, max: 8 }),
        (initialDelayMs, multiplier, jitter, random, attempt) => {
          const maxDelayMs = 60_000;
          const delay = retry({ maxAttempts: 9, initialDelayMs, multiplier, maxDelayMs, jitter, random: () => random }).delayAfter(attempt, failure());
          const base = Math.min(maxDelayMs, initialDelayMs * multiplier ** (attempt - 1));
          expect(delay).toBeGreaterThanOrEqual(Math.floor(base * (1 - jitter)));
          expect(delay).toBeLessThanOrEqual(Math.ceil(base * (1 + jitter)));
        },
      ),
    );
  });

  it('stops once maxAttempts runs have failed', () => {
    const policy = retry({ maxAttempts: 3, jitter: 0 });
    expect(policy.maxAttempts).toBe(3);
    expect(policy.delayAfter(2, failure())).toBe(400);
    expect(policy.delayAfter(3, failure())).toBeUndefined();
    expect(policy.delayAfter(4, failure())).toBeUndefined();
    expect(retry({ maxAttempts: 1 }).delayAfter(1, failure())).toBeUndefined();
  });

  it('retries only the failures retryOn accepts', () => {
    const policy = retry({ jitter: 0, retryOn: (error) => error.code === 'NOT_CONNECTED' });
    expect(policy.delayAfter(1, failure(new InterchangeError('NOT_CONNECTED', 'offline')))).toBe(200);
    expect(policy.delayAfter(1, failure(new TypeError('bug')))).toBeUndefined();
  });

  it.each([0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY])('refuses maxAttempts %s', (maxAttempts) => {
    expect(() => retry({ maxAttempts })).toThrow(expect.objectContaining({ code: 'RETRY_POLICY' }));
  });

  it.each([-0.1, 1.01, Number.NaN])('refuses jitter %s', (jitter) => {
    expect(() => retry({ jitter })).toThrow(expect.objectContaining({ code: 'RETRY_POLICY' }));
  });
});
