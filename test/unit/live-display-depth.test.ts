import { describe, expect, it } from 'vitest';
import { LiveDisplay } from '../../facade/cli/live-display.ts';
import { depthLine, type EndpointDepth } from '../../src/core/index.ts';
import { emptyMetrics } from '../../src/runtime/route-metrics.ts';

describe('depthLine', () => {
  it('says how much an endpoint holds, of its bound, and when it is full', () => {
    expect(depthLine({ uri: 'buffer:telemetry', messages: 1234, bytes: 1.5 * 1024 * 1024, capacityMessages: 1_000_000, capacityBytes: 1024 ** 3 })).toBe(
      'buffer:telemetry  depth 1234 of 1000000 (1.5 MiB of 1024.0 MiB)',
    );
    expect(depthLine({ uri: 'buffer:t', messages: 10, capacityMessages: 10, full: true })).toBe('buffer:t  depth 10 of 10  FULL: sources held');
  });
});

describe('LiveDisplay with depth lines', () => {
  it('prints a depth line under the routes when it changed (not a TTY), and redraws it in place on a TTY', () => {
    let depth: EndpointDepth = { uri: 'buffer:t', messages: 0 };
    const written: string[] = [];
    let now = 0;
    const display = new LiveDisplay(() => ({ forward: emptyMetrics() }), { write: (text: string) => written.push(text) }, () => now, () => [depthLine(depth)]);
    display.start(60_000);
    now = 1000;
    display.tick();
    depth = { uri: 'buffer:t', messages: 500 };
    now = 2000;
    display.tick();
    now = 3000;
    display.tick(); // nothing changed
    display.stop();
    expect(written).toEqual([
      'forward  in 0  out 0  filtered 0  failed 0  dead-lettered 0  in-flight 0  0.0 msg/s\nbuffer:t  depth 0\n',
      'buffer:t  depth 500\n',
    ]);

    const drawn: string[] = [];
    const tty = new LiveDisplay(() => ({ forward: emptyMetrics() }), { isTTY: true, write: (text: string) => drawn.push(text) }, () => now, () => [depthLine(depth)]);
    tty.tick();
    tty.tick();
    expect(drawn[1]?.startsWith('\x1b[2A')).toBe(true); // two lines up: the route's and the depth's
    expect(drawn[1]).toContain('buffer:t  depth 500');
  });
});
