import { Subject, VirtualTimeScheduler } from 'rxjs';
import { afterEach, describe, expect, it } from 'vitest';
import { throttle, type ThrottleOptions } from '../../patterns/throttle.ts';
import { createIntegration, from, RouteDefinitionError, silentLogger, type Integration } from '../../facade/index.ts';
import type { Delivery } from '../../src/core/index.ts';
import { TestKit } from '../../facade/testing/index.ts';
import type { MemoryTransport } from '../../src/channel/memory-transport.ts';
import { runUntil } from '../unit/virtual-time.ts';
import { drive, Harness, source, sources, type Source } from './harness.ts';

/** Runs virtual time up to `at` (every action due by then). */
function advanceTo(scheduler: VirtualTimeScheduler, at: number): void {
  scheduler.schedule(() => {}, at - scheduler.now());
  scheduler.maxFrames = at;
  scheduler.flush();
}

function setup<T = number>(options: ThrottleOptions<T>, harnessOptions: ConstructorParameters<typeof Harness>[0] = {}) {
  const scheduler = new VirtualTimeScheduler();
  const harness = new Harness({ scheduler, ...harnessOptions });
  const driven = drive(harness.build(throttle<T>(options)));
  return { scheduler, harness, ...driven };
}

const keyed = (key: string, n: number): Source<{ key: string; n: number }> => source({ key, n }, { id: `${key}${n}` });

describe('throttle', () => {
  it('refuses options that are not positive integers, where the route is declared', () => {
    expect(() => throttle({ rate: 0 })).toThrow(RouteDefinitionError);
    expect(() => throttle({ rate: 1, periodMs: 0.5 })).toThrow(RouteDefinitionError);
    expect(() => throttle({ rate: 1, burst: -1 })).toThrow(RouteDefinitionError);
    expect(() => throttle({ rate: 1, maxKeys: 0 })).toThrow(RouteDefinitionError);
  });

  it('lets a burst through at once, then one message per period / rate, in arrival order', () => {
    const { scheduler, harness, output, send } = setup({ rate: 2, periodMs: 1_000 });
    send(...sources([1, 2, 3, 4, 5]));
    expect(output.bodies).toEqual([1, 2]);
    expect(harness.gauges.get('waiting')).toBe(3);
    advanceTo(scheduler, 499);
    expect(output.bodies).toEqual([1, 2]);
    advanceTo(scheduler, 500);
    expect(output.bodies).toEqual([1, 2, 3]);
    advanceTo(scheduler, 1_500);
    expect(output.bodies).toEqual([1, 2, 3, 4, 5]);
    expect(harness.gauges.get('waiting')).toBe(0);
    expect(scheduler.actions).toEqual([]);
  });

  it('refills up to burst after a quiet spell, not beyond', () => {
    const { scheduler, output, send } = setup({ rate: 1, periodMs: 100, burst: 3 });
    send(...sources([1, 2, 3, 4]));
    expect(output.bodies).toEqual([1, 2, 3]);
    advanceTo(scheduler, 10_000); // 4 passed at 100; the bucket is full again (3, not 99)
    send(...sources([5, 6, 7, 8]));
    expect(output.bodies).toEqual([1, 2, 3, 4, 5, 6, 7]);
    advanceTo(scheduler, 10_100);
    expect(output.bodies).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
  });

  it('keeps a bucket per key, each in arrival order', () => {
    const { scheduler, output, send } = setup<{ key: string; n: number }>({ rate: 1, periodMs: 1_000, key: (m) => m.body.key });
    send(keyed('a', 1), keyed('a', 2), keyed('b', 1), keyed('a', 3), keyed('b', 2));
    expect(output.messages.map((m) => m.id)).toEqual(['a1', 'b1']);
    advanceTo(scheduler, 1_000);
    expect(output.messages.map((m) => m.id)).toEqual(['a1', 'b1', 'a2', 'b2']);
    advanceTo(scheduler, 2_000);
    expect(output.messages.map((m) => m.id)).toEqual(['a1', 'b1', 'a2', 'b2', 'a3']);
  });

  it('forgets the least recently used idle bucket beyond maxKeys', () => {
    const { output, send } = setup<{ key: string; n: number }>({ rate: 1, periodMs: 1_000, key: (m) => m.body.key, maxKeys: 2 });
    send(keyed('a', 1), keyed('b', 1), keyed('c', 1)); // a's bucket (empty, idle) is forgotten for c
    send(keyed('a', 2)); // a starts again with a full bucket: passes; b is forgotten
    send(keyed('c', 2)); // c is remembered: its bucket is empty, c2 waits
    expect(output.messages.map((m) => m.id)).toEqual(['a1', 'b1', 'c1', 'a2']);
  });

  it('never forgets a bucket with messages waiting, even the least recently used one', () => {
    const { scheduler, output, send } = setup<{ key: string; n: number }>({ rate: 1, periodMs: 1_000, key: (m) => m.body.key, maxKeys: 2 });
    send(keyed('a', 1), keyed('a', 2)); // a2 waits in a's bucket
    send(keyed('b', 1)); // a is now the least recently used bucket
    send(keyed('c', 1)); // b (idle) is forgotten, not a
    send(keyed('a', 3)); // still behind a2: a's bucket is empty
    expect(output.messages.map((m) => m.id)).toEqual(['a1', 'b1', 'c1']);
    advanceTo(scheduler, 1_000);
    expect(output.messages.map((m) => m.id)).toEqual(['a1', 'b1', 'c1', 'a2']);
    send(keyed('b', 2)); // b starts again with a full bucket
    expect(output.messages.map((m) => m.id)).toEqual(['a1', 'b1', 'c1', 'a2', 'b2']);
    advanceTo(scheduler, 2_000);
    expect(output.messages.map((m) => m.id)).toEqual(['a1', 'b1', 'c1', 'a2', 'b2', 'a3']);
  });

  it('holds a waiting message unsettled; a message is settled as its output is, only once passed on', () => {
    const { scheduler, output, send } = setup({ rate: 1, periodMs: 1_000 });
    const [first, second, third] = sources([1, 2, 3]);
    send(first!, second!, third!);
    output.deliveries[0]!.ack();
    expect([first!.outcome, second!.outcome, third!.outcome]).toEqual(['acked', 'pending', 'pending']);
    advanceTo(scheduler, 1_000);
    expect([second!.outcome, third!.outcome]).toEqual(['pending', 'pending']);
    output.deliveries[1]!.nack(new Error('downstream refused'));
    expect([second!.outcome, second!.reasons[0]?.message]).toEqual(['nacked', 'downstream refused']);
  });

  it("onExcess 'drop': an excess message is acked as filtered and counted throttled, nothing waits", () => {
    const { scheduler, harness, output, send } = setup({ rate: 1, periodMs: 1_000, onExcess: 'drop' });
    const inputs = sources([1, 2, 3]);
    send(...inputs);
    expect(output.bodies).toEqual([1]);
    expect(inputs.map((i) => i.outcome)).toEqual(['pending', 'acked', 'acked']);
    expect(harness.filtered.map((d) => d.message.body)).toEqual([2, 3]);
    expect(harness.counts.get('throttled')).toBe(2);
    expect(scheduler.actions).toEqual([]);
    advanceTo(scheduler, 1_000);
    send(...sources([4]));
    expect(output.bodies).toEqual([1, 4]);
  });

  it('fails the message whose key function throws, and only that one', () => {
    const { harness, output, send } = setup<{ key: string; n: number }>({
      rate: 10,
      key: (m) => {
        if (m.body.key === 'bad') throw new Error('no key');
        return m.body.key;
      },
    });
    const bad = keyed('bad', 1);
    send(keyed('a', 1), bad, keyed('a', 2));
    expect(output.messages.map((m) => m.id)).toEqual(['a1', 'a2']);
    expect(harness.failures.map((f) => [f.delivery.message.id, (f.error as Error).message, f.attempt])).toEqual([['bad1', 'no key', 1]]);
    expect(bad.outcome).toBe('nacked');
  });

  it('retries a failed key function after the delay the error handler asks for', () => {
    let calls = 0;
    const { scheduler, harness, output, send } = setup<number>(
      {
        rate: 10,
        key: () => {
          calls += 1;
          if (calls === 1) throw new Error('flaky');
          return 'k';
        },
      },
      { failed: (_delivery, _error, attempt) => (attempt < 3 ? 200 : undefined) },
    );
    send(...sources([1]));
    expect(output.bodies).toEqual([]);
    advanceTo(scheduler, 200);
    expect(output.bodies).toEqual([1]);
    expect(harness.failures).toHaveLength(1);
  });

  it('when the source completes, keeps the rate for the held messages and completes after the last', () => {
    const { scheduler, output, send, input } = setup({ rate: 1, periodMs: 1_000 });
    send(...sources([1, 2, 3]));
    input.complete();
    expect(output.completed).toBe(false);
    advanceTo(scheduler, 1_000);
    expect([output.bodies, output.completed]).toEqual([[1, 2], false]);
    advanceTo(scheduler, 2_000);
    expect([output.bodies, output.completed]).toEqual([[1, 2, 3], true]);
  });

  it('on unsubscribe, leaves held messages unsettled for the source to redeliver, and cancels its timers', () => {
    const scheduler = new VirtualTimeScheduler();
    const harness = new Harness({ scheduler });
    const step = harness.build(throttle<number>({ rate: 1, periodMs: 1_000 }));
    const inputs = sources([1, 2, 3]);
    const passed: number[] = [];
    const feed = new Subject<Delivery<number>>();
    const running = feed.pipe(step).subscribe((delivery) => passed.push(delivery.message.body));
    for (const item of inputs) feed.next(item.delivery);
    running.unsubscribe();
    expect(scheduler.actions.filter((action) => !action.closed)).toEqual([]);
    advanceTo(scheduler, 5_000);
    expect(passed).toEqual([1]);
    expect(inputs.map((i) => i.outcome)).toEqual(['pending', 'pending', 'pending']);
  });

  it('keeps one timer when a message arrives synchronously while it releases; none is left after unsubscribe', () => {
    const scheduler = new VirtualTimeScheduler();
    const harness = new Harness({ scheduler });
    const feed = new Subject<Delivery<number>>();
    const passed: number[] = [];
    const extra = source(4);
    const running = feed.pipe(harness.build(throttle<number>({ rate: 1, periodMs: 1_000 }))).subscribe((delivery) => {
      passed.push(delivery.message.body);
      if (delivery.message.body === 2) feed.next(extra.delivery); // a channel pushing the next message as one settles
    });
    for (const item of sources([1, 2, 3])) feed.next(item.delivery);
    advanceTo(scheduler, 1_000);
    expect(passed).toEqual([1, 2]);
    expect(scheduler.actions.filter((action) => !action.closed)).toHaveLength(1);
    running.unsubscribe();
    expect(scheduler.actions.filter((action) => !action.closed)).toEqual([]);
    expect(harness.gauges.get('waiting')).toBe(0);
    advanceTo(scheduler, 5_000);
    expect(passed).toEqual([1, 2]);
    expect(extra.outcome).toBe('pending');
  });

  it('schedules no timer when it is unsubscribed while it releases', () => {
    const scheduler = new VirtualTimeScheduler();
    const feed = new Subject<Delivery<number>>();
    const passed: number[] = [];
    const running = feed.pipe(new Harness({ scheduler }).build(throttle<number>({ rate: 1, periodMs: 1_000 }))).subscribe((delivery) => {
      passed.push(delivery.message.body);
      if (delivery.message.body === 2) running.unsubscribe(); // the route is torn down as 2 passes
    });
    for (const item of sources([1, 2, 3])) feed.next(item.delivery);
    advanceTo(scheduler, 1_000);
    expect(passed).toEqual([1, 2]);
    expect(scheduler.actions.filter((action) => !action.closed)).toEqual([]);
  });
});

describe('throttle in the DSL', () => {
  it('is a throttle step that sends nowhere; its options are checked where the route is declared', () => {
    const [step] = from<number>('memory:hA-in').throttle({ rate: 5, key: (m) => String(m.body) }, { id: 'limit' }).definition().steps;
    expect([step?.id, step?.kind, step?.sends, step?.sendsTo]).toEqual(['limit', 'throttle', false, []]);
    expect(() => from<number>('memory:hA-in').throttle({ rate: 0 })).toThrow(RouteDefinitionError);
  });
});

describe('throttle through the runtime', () => {
  let app: Integration | undefined;
  let kit: TestKit | undefined;
  afterEach(async () => {
    kit?.close();
    await app?.stop({ drainTimeoutMs: 100 });
    app = undefined;
  });

  it('never holds more than the route prefetch: the rest stays in the channel until tokens free up', async () => {
    const scheduler = new VirtualTimeScheduler();
    app = createIntegration({
      logger: silentLogger,
      scheduler,
      routes: [from<number>('memory:hA-throttle-in', { prefetch: 3 }).throttle({ rate: 1, periodMs: 1_000 }, { id: 'limit' }).to('memory:hA-throttle-out')],
    });
    await app.start();
    kit = new TestKit(app);
    const out = kit.mock<number>('memory:hA-throttle-out');
    const memory = app.transports.forScheme('memory') as MemoryTransport;
    await kit.sendAll('memory:hA-throttle-in', [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    await runUntil(scheduler, () => out.received.length >= 1);
    // 1 passed and was acked, which let the 4th in: 3 held (the prefetch), 6 still in the channel
    expect(app.metrics()['memory:hA-throttle-in']!.steps.limit!.gauges).toEqual({ waiting: 3 });
    expect(memory.depth('hA-throttle-in')).toBe(6);
    await runUntil(scheduler, () => out.received.length === 10);
    expect(out.bodies()).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(scheduler.now()).toBe(9_000);
    expect(memory.depth('hA-throttle-in')).toBe(0);
  });

  it('stopping the route keeps the rate while it drains; at the deadline the held messages go back to the channel', async () => {
    const scheduler = new VirtualTimeScheduler();
    app = createIntegration({
      logger: silentLogger,
      scheduler,
      routes: [
        from<number>('memory:hA-throttle-drain', { id: 'drained' }).throttle({ rate: 1, periodMs: 1_000 }).to('memory:hA-throttle-drained'),
        from<number>('memory:hA-throttle-late', { id: 'late' }).throttle({ rate: 1, periodMs: 1_000 }).to('memory:hA-throttle-handed-back'),
      ],
    });
    await app.start();
    kit = new TestKit(app);
    const drained = kit.mock<number>('memory:hA-throttle-drained');
    const memory = app.transports.forScheme('memory') as MemoryTransport;
    await kit.sendAll('memory:hA-throttle-drain', [1, 2, 3]);
    await kit.sendAll('memory:hA-throttle-late', [1, 2, 3]);
    await runUntil(scheduler, () => drained.received.length === 1);
    // the virtual clock stands still: 'late' reaches its (real) deadline with two messages held
    await app.stopRoute('late', { drainTimeoutMs: 50 });
    expect(app.metrics().late!.handedBack).toBe(2);
    expect(memory.depth('hA-throttle-late')).toBe(2);
    const stopping = app.stopRoute('drained', { drainTimeoutMs: 5_000 });
    await runUntil(scheduler, () => drained.received.length === 3);
    await stopping;
    expect(drained.bodies()).toEqual([1, 2, 3]);
    expect(scheduler.now()).toBe(2_000);
    expect(app.metrics().drained!).toMatchObject({ completed: 3, handedBack: 0, inFlight: 0 });
  });
});
