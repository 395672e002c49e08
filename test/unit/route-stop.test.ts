import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createIntegration, createMessage, from, retryAfter, type Integration, type Logger, type MemoryTransport, type RouteSource } from '../../facade/index.ts';

type Line = [level: string, message: string, fields: Readonly<Record<string, unknown>> | undefined];

function recordingLogger(): Logger & { readonly lines: Line[] } {
  const lines: Line[] = [];
  const at = (level: string) => (message: string, fields?: Readonly<Record<string, unknown>>) => void lines.push([level, message, fields]);
  return { lines, info: at('INFO'), warn: at('WARN'), error: at('ERROR') };
}

/** Every timer (steps, retry backoff on the default scheduler, the stop deadline) on Vitest's fake clock. */
beforeEach(() => void vi.useFakeTimers());
afterEach(() => void vi.useRealTimers());

let app: Integration | undefined;
afterEach(async () => {
  const stopping = app?.stop({ drainTimeoutMs: 0 });
  await vi.runOnlyPendingTimersAsync();
  await stopping;
  app = undefined;
});

async function start(route: RouteSource, log = recordingLogger()): Promise<{ app: Integration; memory: MemoryTransport; log: typeof log }> {
  const created = createIntegration({ routes: [route], logger: log });
  app = created;
  await created.start();
  return { app: created, memory: created.transport<MemoryTransport>('memory'), log };
}

/** Stops with the deadline, advancing the fake clock to it. */
async function stopAfter(integration: Integration, drainTimeoutMs: number): Promise<void> {
  const stopping = integration.stop({ drainTimeoutMs });
  await vi.advanceTimersByTimeAsync(drainTimeoutMs);
  await stopping;
}

describe('a stop whose deadline passes', () => {
  it('takes what it hands back out of inFlight, so a restart counts from zero and a later stop does not wait', async () => {
    const { memory, log } = await start(
      from('memory:in', { id: 'r' })
        .process(() => new Promise<void>((resolve) => setTimeout(resolve, 40)))
        .to('memory:out'),
    );
    await app!.transports.publish('memory:in', Array.from({ length: 10 }, (_, n) => createMessage(n)));
    await stopAfter(app!, 60); // one message done at 40 ms, the second one half-way at 60 ms
    expect(app!.metrics().r).toMatchObject({ received: 10, completed: 1, inFlight: 0, handedBack: 9 });
    expect(memory.depth('in')).toBe(9);
    expect(log.lines).toContainEqual(['WARN', 'route stop deadline passed; 9 unsettled deliveries go back to the source', { route: 'r', deadlineMs: 60, handedBack: 9 }]);

    await app!.start();
    await vi.advanceTimersByTimeAsync(9 * 40);
    expect(app!.metrics().r).toMatchObject({ completed: 10, inFlight: 0, handedBack: 9 });
    expect(memory.depth('out')).toBe(10);

    log.lines.length = 0;
    await app!.stop({ drainTimeoutMs: 10_000 }); // nothing in flight: resolves without the clock moving
    expect(log.lines.filter(([level]) => level === 'WARN')).toEqual([]);
    expect(app!.metrics().r?.handedBack).toBe(9);
  });

  it('hands back a message waiting in a retry backoff, and it is delivered after a restart', async () => {
    let runs = 0;
    const { memory } = await start(
      from('memory:in', { id: 'r' })
        .onError(() => retryAfter(5_000), { maxAttempts: 5 })
        .process(() => {
          runs += 1;
          if (runs === 1) throw new Error('flaky');
        })
        .to('memory:out'),
    );
    await app!.transports.publish('memory:in', [createMessage('m')]);
    await vi.advanceTimersByTimeAsync(1);
    expect(app!.metrics().r).toMatchObject({ failed: 1, retried: 1, inFlight: 1 });
    await stopAfter(app!, 100);
    expect(app!.metrics().r).toMatchObject({ inFlight: 0, handedBack: 1 });

    await app!.start();
    await vi.advanceTimersByTimeAsync(1);
    expect(memory.depth('out')).toBe(1);
    expect(app!.metrics().r).toMatchObject({ completed: 1, inFlight: 0, rejected: 0 });
  });

  it('ignores a late settlement of a delivery it handed back: no ack, no dead letter, no change to the next run', async () => {
    const pending: { resolve: () => void; reject: (error: Error) => void }[] = [];
    const { memory } = await start(
      from('memory:in', { id: 'r' })
        .deadLetterChannel('memory:dlq')
        .process(() => new Promise<void>((resolve, reject) => void pending.push({ resolve, reject })))
        .to('memory:out'),
    );
    await app!.transports.publish('memory:in', [createMessage('m')]);
    await vi.advanceTimersByTimeAsync(1);
    await stopAfter(app!, 50);
    await app!.start();
    await vi.advanceTimersByTimeAsync(1);
    expect(pending).toHaveLength(2); // the message again, in the new run
    expect(app!.metrics().r?.inFlight).toBe(1);

    pending[0]?.reject(new Error('the first run, failing late'));
    await vi.advanceTimersByTimeAsync(1);
    expect(app!.metrics().r).toMatchObject({ inFlight: 1, failed: 0, deadLettered: 0, rejected: 0 });
    expect(memory.depth('dlq')).toBe(0);

    pending[1]?.resolve();
    await vi.advanceTimersByTimeAsync(1);
    expect(app!.metrics().r).toMatchObject({ inFlight: 0, completed: 1 });
    expect(memory.depth('out')).toBe(1);
  });
});
