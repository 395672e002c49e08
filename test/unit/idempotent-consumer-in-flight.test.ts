import { VirtualTimeScheduler } from 'rxjs';
import { afterEach, describe, expect, it } from 'vitest';
import { idempotentConsumer } from '../../patterns/idempotent-consumer.ts';
import { MemoryIdempotencyStore } from '../../src/stores/idempotency-store.ts';
import { createMessage, deadLetter, from, type MemoryTransport, type Message, type RouteSource } from '../../facade/index.ts';
import { startTestIntegration, type TestIntegration } from '../../facade/testing/index.ts';
import { runUntil, virtualDelay } from './virtual-time.ts';

interface Order {
  readonly order: string;
}

const running: TestIntegration[] = [];
afterEach(async () => {
  for (const test of running.splice(0)) await test.stop();
});

async function start(route: RouteSource, scheduler: VirtualTimeScheduler): Promise<TestIntegration & { memory: MemoryTransport }> {
  const test = await startTestIntegration({ routes: [route], scheduler });
  running.push(test);
  return { ...test, memory: test.app.transport<MemoryTransport>('memory') };
}

const ids = (messages: readonly Message[]): string[] => messages.map((message) => message.id);

describe('idempotentConsumer: a copy arriving while its twin is in progress', () => {
  it('waits for the twin and is dropped as a duplicate when it succeeds, never burning its redeliveries into <channel>.dead', async () => {
    const scheduler = new VirtualTimeScheduler();
    const [a, b] = [createMessage<Order>({ order: 'A' }), createMessage<Order>({ order: 'B' })];
    const { app, kit, memory } = await start(
      from<Order>('memory:in', { id: 'dedupe' })
        .step('idempotent', idempotentConsumer({ store: new MemoryIdempotencyStore() }))
        .process(() => virtualDelay(scheduler, 20))
        .to('memory:out'),
      scheduler,
    );
    const out = kit.mock('memory:out');
    await kit.sendMessages('memory:in', [a, a, b, a]);
    await runUntil(scheduler, () => out.received.length === 2 && app.metrics().dedupe?.inFlight === 0);
    expect(ids(out.received)).toEqual([a.id, b.id]);
    expect(app.metrics().dedupe).toMatchObject({ received: 4, filtered: 2, failed: 0, rejected: 0, inFlight: 0 });
    expect(memory.depth('in.dead')).toBe(0);
  });

  it('is not dead-lettered by a dead-letter channel while its twin succeeds', async () => {
    const scheduler = new VirtualTimeScheduler();
    const a = createMessage<Order>({ order: 'A' });
    const { app, kit } = await start(
      from<Order>('memory:in', { id: 'dedupe' })
        .deadLetterChannel('memory:dlq')
        .step('idempotent', idempotentConsumer({ store: new MemoryIdempotencyStore() }))
        .process(() => virtualDelay(scheduler, 20))
        .to('memory:out'),
      scheduler,
    );
    const out = kit.mock('memory:out');
    const dlq = kit.mock('memory:dlq');
    await kit.sendMessages('memory:in', [a, a, a]);
    await runUntil(scheduler, () => app.metrics().dedupe?.inFlight === 0 && out.received.length === 1);
    expect(ids(out.received)).toEqual([a.id]);
    expect(dlq.received).toEqual([]);
    expect(app.metrics().dedupe).toMatchObject({ filtered: 2, deadLettered: 0 });
  });

  it('is processed when its twin fails: the first waiting copy takes over, and the redelivered twin is then a duplicate', async () => {
    const scheduler = new VirtualTimeScheduler();
    const a = createMessage<Order>({ order: 'A' });
    let runs = 0;
    const { app, kit, memory } = await start(
      from<Order>('memory:in', { id: 'dedupe' })
        .step('idempotent', idempotentConsumer({ store: new MemoryIdempotencyStore() }))
        .process(async () => {
          runs += 1;
          await virtualDelay(scheduler, 20);
          if (runs === 1) throw new Error('downstream failed');
        })
        .to('memory:out'),
      scheduler,
    );
    const out = kit.mock('memory:out');
    await kit.sendMessages('memory:in', [a, a]);
    await runUntil(scheduler, () => out.received.length === 1 && app.metrics().dedupe?.inFlight === 0 && app.metrics().dedupe?.filtered === 1);
    expect(ids(out.received)).toEqual([a.id]);
    expect(runs).toBe(2);
    expect(app.metrics().dedupe).toMatchObject({ received: 3, failed: 1, rejected: 1, filtered: 1, completed: 1 });
    expect(memory.depth('in.dead')).toBe(0);
  });

  it('beyond maxWaiters, fails with DUPLICATE_IN_PROGRESS only after inProgressDelayMs, not at once', async () => {
    const scheduler = new VirtualTimeScheduler();
    const a = createMessage<Order>({ order: 'A' });
    const failures: [string, number][] = [];
    const { app, kit } = await start(
      from<Order>('memory:in', { id: 'dedupe' })
        .onError(
          (failure) => {
            failures.push([failure.error.code, scheduler.now()]);
            return deadLetter();
          },
          { deadLetterUri: 'memory:dlq' },
        )
        .step('idempotent', idempotentConsumer({ store: new MemoryIdempotencyStore(), maxWaiters: 1, inProgressDelayMs: 50 }))
        .process(() => virtualDelay(scheduler, 200))
        .to('memory:out'),
      scheduler,
    );
    const out = kit.mock('memory:out');
    const dlq = kit.mock('memory:dlq');
    await kit.sendMessages('memory:in', [a, a, a]);
    await runUntil(scheduler, () => app.metrics().dedupe?.inFlight === 0 && out.received.length === 1);
    expect(failures).toEqual([['DUPLICATE_IN_PROGRESS', 50]]);
    expect(ids(dlq.received)).toEqual([a.id]);
    expect(app.metrics().dedupe).toMatchObject({ filtered: 1, deadLettered: 1 });
  });

  it('in progress in another process: asks the store again after inProgressDelayMs, and drops it if processed meanwhile', async () => {
    const scheduler = new VirtualTimeScheduler();
    const store = new MemoryIdempotencyStore();
    const a = createMessage<Order>({ order: 'A' });
    expect(await store.claim(a.id)).toBe('claimed'); // held by another process
    const { app, kit } = await start(
      from<Order>('memory:in', { id: 'dedupe' })
        .deadLetterChannel('memory:dlq')
        .step('idempotent', idempotentConsumer({ store, inProgressDelayMs: 1_000 }))
        .to('memory:out'),
      scheduler,
    );
    const out = kit.mock('memory:out');
    const dlq = kit.mock('memory:dlq');
    scheduler.schedule(() => void store.confirm(a.id), 500); // the other process finishes
    await kit.sendMessages('memory:in', [a]);
    await runUntil(scheduler, () => app.metrics().dedupe?.filtered === 1);
    expect(scheduler.now()).toBeGreaterThanOrEqual(1_000);
    expect(out.received).toEqual([]);
    expect(dlq.received).toEqual([]);
    expect(app.metrics().dedupe).toMatchObject({ filtered: 1, failed: 0, inFlight: 0 });
  });
});
