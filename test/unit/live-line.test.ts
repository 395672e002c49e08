import { describe, expect, it } from 'vitest';
import { LiveDisplay } from '../../facade/cli/live-display.ts';
import { liveLine, throughput } from '../../facade/cli/live-line.ts';
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

describe('liveLine: counters of named sending steps', () => {
  it('adds one counter per step the route named, in the order they first sent, before the rate', () => {
    const after = metrics({ received: 1020, completed: 1000, failed: 20, deadLettered: 20, inFlight: 20, sent: { readings: 950, alerts: 50, summaries: 100 } });
    expect(liveLine('telemetry', metrics({}), after, 1)).toBe(
      'telemetry  in 1020  out 1000  filtered 0  failed 20  dead-lettered 20  in-flight 20  readings 950  alerts 50  summaries 100  1000.0 msg/s',
    );
  });

  it('leaves out steps with generated ids (`to-1`, `wireTap-2`)', () => {
    const after = metrics({ received: 3, completed: 3, sent: { 'to-1': 3, 'wireTap-2': 3, audit: 3 } });
    expect(liveLine('r', undefined, after, 1)).toBe('r  in 3  out 3  filtered 0  failed 0  dead-lettered 0  in-flight 0  audit 3  3.0 msg/s');
  });
});

describe('LiveDisplay with per-step counters', () => {
  it('prints again (not a TTY) when only a named step counter changed, from snapshots later counting cannot alter', () => {
    const live = metrics({ received: 1, completed: 1, sent: { alerts: 1 } });
    const written: string[] = [];
    let now = 0;
    const display = new LiveDisplay(() => ({ telemetry: live }), { write: (text: string) => written.push(text) }, () => now);
    display.start(60_000);
    now = 1000;
    display.tick();
    live.sent.alerts = 2; // the runtime counts in place
    now = 2000;
    display.tick();
    now = 3000;
    display.tick(); // nothing changed: nothing printed
    display.stop();
    expect(written).toEqual([
      'telemetry  in 1  out 1  filtered 0  failed 0  dead-lettered 0  in-flight 0  alerts 1  0.0 msg/s\n',
      'telemetry  in 1  out 1  filtered 0  failed 0  dead-lettered 0  in-flight 0  alerts 2  0.0 msg/s\n',
    ]);
  });
});
