import { describe, expect, it } from 'vitest';
import { liveLine, throughput } from '../../src/cli/live-line.ts';
import { emptyMetrics, type RouteMetrics } from '../../src/runtime/route-metrics.ts';

const metrics = (counts: Partial<RouteMetrics>): RouteMetrics => ({ ...emptyMetrics(), ...counts });

describe('liveLine', () => {
  it('shows the counters of the current snapshot and msg/s from the delta of completed', () => {
    const before = metrics({ received: 100, completed: 80, filtered: 10 });
    const after = metrics({ received: 130, completed: 110, filtered: 12, failed: 3, deadLettered: 2, inFlight: 5 });
    expect(liveLine('orders', before, after, 1)).toBe('orders  in 130  out 110  filtered 12  failed 3  dead-lettered 2  in-flight 5  30.0 msg/s');
  });

  it('divides the delta by the elapsed seconds', () => {
    expect(liveLine('orders', metrics({ completed: 10 }), metrics({ completed: 35 }), 2)).toMatch(/ 12\.5 msg\/s$/);
    expect(liveLine('orders', metrics({ completed: 10 }), metrics({ completed: 11 }), 0.5)).toMatch(/ 2\.0 msg\/s$/);
  });

  it('averages from zero without a previous snapshot', () => {
    expect(liveLine('orders', undefined, metrics({ received: 60, completed: 60 }), 4)).toBe('orders  in 60  out 60  filtered 0  failed 0  dead-lettered 0  in-flight 0  15.0 msg/s');
  });

  it('pads the route id so lines of several routes align', () => {
    expect(liveLine('a', undefined, metrics({}), 1, { idWidth: 6 })).toBe('a       in 0  out 0  filtered 0  failed 0  dead-lettered 0  in-flight 0  0.0 msg/s');
  });
});

describe('throughput', () => {
  it('is zero when no time passed or nothing completed', () => {
    expect(throughput(5, 9, 0)).toBe(0);
    expect(throughput(5, 5, 1)).toBe(0);
  });

  it('never goes negative (counters only grow; a reset route reads as idle)', () => {
    expect(throughput(9, 5, 1)).toBe(0);
  });
});
