import { describe, expect, it } from 'vitest';
import { LatencyController } from '../../patterns/latency-controller.ts';
import { RouteDefinitionError } from '../../src/core/index.ts';

/** Feeds `latencies` one per millisecond from `start`, with `queued` waiting; returns the decisions made. */
function feed(controller: LatencyController, latencies: readonly number[], queued = 5, start = 0): string[] {
  const decisions: string[] = [];
  latencies.forEach((latency, index) => {
    const decision = controller.observe(latency, start + index, queued);
    if (decision !== undefined) decisions.push(`${decision.action} ${decision.concurrency} (p99 ${decision.p99Ms})`);
  });
  return decisions;
}

describe('LatencyController', () => {
  it('starts at min and adds one per window under the target while messages wait, up to max', () => {
    const controller = new LatencyController({ targetP99Ms: 50, min: 2, max: 4, windowSamples: 3 });
    expect(controller.concurrency).toBe(2);
    expect(feed(controller, [10, 20, 30, 10, 10, 10, 10, 10, 10])).toEqual(['increase 3 (p99 30)', 'increase 4 (p99 10)', 'hold 4 (p99 10)']);
    expect(controller.concurrency).toBe(4);
  });

  it('multiplies by the decrease factor (floored) after a window over the target, never below min', () => {
    const controller = new LatencyController({ targetP99Ms: 50, min: 2, max: 20, initial: 16, windowSamples: 2 });
    expect(feed(controller, [60, 10, 80, 80, 51, 1, 99, 99, 99, 99])).toEqual(['decrease 12 (p99 60)', 'decrease 9 (p99 80)', 'decrease 6 (p99 51)', 'decrease 4 (p99 99)', 'decrease 3 (p99 99)']);
    expect(feed(controller, [99, 99, 99, 99])).toEqual(['decrease 2 (p99 99)', 'hold 2 (p99 99)']);
  });

  it('takes the window p99, not its mean: one slow message in a hundred passes, two do not', () => {
    const fast = Array.from({ length: 98 }, () => 5);
    const once = new LatencyController({ targetP99Ms: 50, max: 8, initial: 4 });
    expect(feed(once, [...fast, 5, 500])).toEqual(['increase 5 (p99 5)']);
    const twice = new LatencyController({ targetP99Ms: 50, max: 8, initial: 4 });
    expect(feed(twice, [...fast, 500, 500])).toEqual(['decrease 3 (p99 500)']);
  });

  it('holds between 90% of the target and the target (increaseBelow), so probing for more stays under it', () => {
    const controller = new LatencyController({ targetP99Ms: 50, max: 8, initial: 4, windowSamples: 2 });
    expect(feed(controller, [46, 46, 50, 50, 44, 44])).toEqual(['hold 4 (p99 46)', 'hold 4 (p99 50)', 'increase 5 (p99 44)']);
    const eager = new LatencyController({ targetP99Ms: 50, max: 8, initial: 4, windowSamples: 2, increaseBelow: 1 });
    expect(feed(eager, [49, 49])).toEqual(['increase 5 (p99 49)']);
  });

  it('holds when under target with nothing waiting: no demand, no more concurrency', () => {
    const controller = new LatencyController({ targetP99Ms: 50, max: 8, windowSamples: 2 });
    expect(feed(controller, [5, 5, 5, 5], 0)).toEqual(['hold 1 (p99 5)', 'hold 1 (p99 5)']);
  });

  it('closes a window after windowMs with fewer samples, so slow traffic still gets decisions', () => {
    const controller = new LatencyController({ targetP99Ms: 50, max: 8, windowSamples: 100, windowMs: 1_000 });
    expect(controller.observe(10, 100, 3)).toBeUndefined(); // the window starts when that message started (90)
    expect(controller.observe(10, 1_089, 3)).toBeUndefined();
    expect(controller.observe(10, 1_090, 3)).toEqual({ p99Ms: 10, samples: 3, action: 'increase', concurrency: 2 });
  });

  it('uses its own steps when given', () => {
    const controller = new LatencyController({ targetP99Ms: 50, max: 100, initial: 10, windowSamples: 1, increaseBy: 5, decreaseFactor: 0.5 });
    expect(feed(controller, [1, 1, 90])).toEqual(['increase 15 (p99 1)', 'increase 20 (p99 1)', 'decrease 10 (p99 90)']);
  });

  it('refuses impossible settings with RouteDefinitionError', () => {
    expect(() => new LatencyController({ targetP99Ms: -1, max: 4 })).toThrow(RouteDefinitionError);
    expect(() => new LatencyController({ targetP99Ms: 10, min: 0, max: 4 })).toThrow(/min ≤ max/);
    expect(() => new LatencyController({ targetP99Ms: 10, min: 1, max: 4, initial: 5 })).toThrow(/initial/);
    expect(() => new LatencyController({ targetP99Ms: 10, max: 4, windowSamples: 0 })).toThrow(/windowSamples/);
    expect(() => new LatencyController({ targetP99Ms: 10, max: 4, increaseBy: 0 })).toThrow(/increaseBy/);
    expect(() => new LatencyController({ targetP99Ms: 10, max: 4, decreaseFactor: 0 })).toThrow(/decreaseFactor/);
    expect(() => new LatencyController({ targetP99Ms: 10, max: 4, increaseBelow: 1.5 })).toThrow(/increaseBelow/);
  });
});
