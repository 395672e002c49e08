import { Subject, tap, VirtualTimeScheduler, type SchedulerAction, type Subscription } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { delay, delayStep, InvalidDelayError, type DelayOptions, type DelayValue } from '../../patterns/delay.ts';
import { createIntegration, from, silentLogger, type Integration } from '../../facade/index.ts';
import { TestKit } from '../../facade/testing/index.ts';
import { RouteDefinitionError, type Delivery } from '../../src/core/index.ts';
import { runUntil } from '../unit/virtual-time.ts';
import { collect, Harness, source, type HarnessOptions, type Source } from './harness.ts';

const DAY = 24 * 3_600_000;

/** Moves the virtual clock to `at`, running what is due on the way. */
function advanceTo(scheduler: VirtualTimeScheduler, at: number): void {
  scheduler.schedule(() => {}, at - scheduler.now());
  scheduler.maxFrames = at;
  scheduler.flush();
}

function setup<T>(value: DelayValue<T>, options?: DelayOptions, harnessOptions: HarnessOptions = {}) {
  const scheduler = new VirtualTimeScheduler();
  const harness = new Harness({ scheduler, ...harnessOptions });
  const emittedAt: number[] = [];
  const input = new Subject<Delivery<T>>();
  const output = collect(input.pipe(harness.build(delay<T>(value, options)), tap(() => emittedAt.push(scheduler.now()))));
  const send = (...items: readonly Source<T>[]): void => {
    for (const item of items) input.next(item.delivery);
  };
  return { scheduler, harness, emittedAt, input, output, send };
}

describe('delay (in memory): options', () => {
  it('holds each message the fixed time on the scheduler, then passes it on unchanged', () => {
    const { scheduler, send, output, emittedAt } = setup<string>(1_000);
    const a = source('a', { id: 'a' });
    send(a);
    advanceTo(scheduler, 999);
    expect(output.deliveries).toHaveLength(0);
    advanceTo(scheduler, 1_000);
    expect(output.messages).toEqual([a.message]);
    expect(emittedAt).toEqual([1_000]);
  });

  it('takes a per-message delay from a header (milliseconds): messages leave in due-time order', () => {
    const { scheduler, send, output, emittedAt } = setup<string>((m) => Number(m.headers.delayMs));
    send(source('slow', { headers: { delayMs: 300 } }), source('fast', { headers: { delayMs: 100 } }), source('same', { headers: { delayMs: 300 } }));
    advanceTo(scheduler, 1_000);
    expect(output.bodies).toEqual(['fast', 'slow', 'same']);
    expect(emittedAt).toEqual([100, 300, 300]);
  });

  it('takes an absolute due time (a Date from a deliverAt header)', () => {
    const { scheduler, send, output, emittedAt } = setup<string>((m) => new Date(Number(m.headers.deliverAt)));
    advanceTo(scheduler, 50);
    send(source('x', { headers: { deliverAt: 250 } }));
    advanceTo(scheduler, 1_000);
    expect(output.bodies).toEqual(['x']);
    expect(emittedAt).toEqual([250]);
  });

  it('a negative delay, zero or a past date does not wait: the message passes on at once', () => {
    const { scheduler, send, output, harness } = setup<string>((m) => (m.body === 'past' ? new Date(0) : Number(m.headers.delayMs)));
    advanceTo(scheduler, 500);
    send(source('negative', { headers: { delayMs: -20 } }), source('zero', { headers: { delayMs: 0 } }), source('past'));
    expect(output.bodies).toEqual(['negative', 'zero', 'past']); // synchronously, no timer
    expect(scheduler.actions).toHaveLength(0);
    expect(harness.gauges.get('delayed')).toBeUndefined(); // nothing was held
  });

  it('refuses a constant that is not a time ≥ 0, and durable options without a store, where the route is declared', () => {
    expect(() => delay(-1)).toThrow(RouteDefinitionError);
    expect(() => delay(Number.NaN)).toThrow(RouteDefinitionError);
    expect(() => delay(Number.POSITIVE_INFINITY)).toThrow(RouteDefinitionError);
    expect(() => delay(10, { leaseMs: 5 })).toThrow(/leaseMs apply to a durable delayer only/);
    expect(() => from('memory:hb-x').delay(-5)).toThrow(RouteDefinitionError);
    expect(delayStep(10)).toMatchObject({ kind: 'delay', sends: false, sendsTo: [] });
  });

  it('holds a message longer than a timer can wait (2^31−1 ms, ~24.8 days) in several timers, none longer, and passes it on only when due', () => {
    /** Records every delay asked of it: Node clamps a setTimeout over 2^31−1 ms to 1 ms. */
    class Recording extends VirtualTimeScheduler {
      readonly asked: number[] = [];
      override schedule<S>(work: (this: SchedulerAction<S>, state?: S) => void, delay = 0, state?: S): Subscription {
        this.asked.push(delay);
        return super.schedule(work, delay, state);
      }
    }
    const scheduler = new Recording();
    const harness = new Harness({ scheduler });
    const emittedAt: number[] = [];
    const input = new Subject<Delivery<string>>();
    const output = collect(input.pipe(harness.build(delay<string>(30 * DAY)), tap(() => emittedAt.push(scheduler.now()))));
    const a = source('a');
    /** Runs what is due by `at` (no timer of the test's own: only the step's are recorded). */
    const runTo = (at: number): void => {
      scheduler.maxFrames = at;
      scheduler.flush();
    };
    input.next(a.delivery);
    runTo(30 * DAY - 1);
    expect(output.deliveries).toHaveLength(0);
    expect(harness.gauges.get('delayed')).toBe(1);
    runTo(30 * DAY);
    expect(emittedAt).toEqual([30 * DAY]);
    expect(harness.gauges.get('delayed')).toBe(0);
    expect(scheduler.asked.length).toBeGreaterThan(1);
    expect(Math.max(...scheduler.asked)).toBeLessThanOrEqual(2 ** 31 - 1);
    output.ackAll();
    expect(a.outcome).toBe('acked');
  });

  it('publishes the messages it holds as the gauge `delayed`', () => {
    const { scheduler, send, harness } = setup<string>((m) => Number(m.headers.delayMs));
    send(source('a', { headers: { delayMs: 100 } }), source('b', { headers: { delayMs: 200 } }));
    expect(harness.gauges.get('delayed')).toBe(2);
    advanceTo(scheduler, 100);
    expect(harness.gauges.get('delayed')).toBe(1);
    advanceTo(scheduler, 200);
    expect(harness.gauges.get('delayed')).toBe(0);
  });
});

describe('delay (in memory): settlement of the source', () => {
  it('leaves the source unsettled while held and until the passed-on message is settled, then acks it', () => {
    const { scheduler, send, output } = setup<string>(100);
    const a = source('a');
    send(a);
    advanceTo(scheduler, 100);
    expect(output.deliveries).toHaveLength(1);
    expect(a.outcome).toBe('pending'); // passed on, not yet settled downstream
    output.ackAll();
    expect(a.outcome).toBe('acked');
  });

  it('a downstream step failing on the delayed message rejects its source (for redelivery)', () => {
    const { scheduler, send, output } = setup<string>(100);
    const a = source('a');
    send(a);
    advanceTo(scheduler, 100);
    output.deliveries[0]?.nack(new Error('downstream failed'));
    expect(a.outcome).toBe('nacked');
    expect(a.reasons[0]?.message).toBe('downstream failed');
  });
});

describe('delay (in memory): bounded by the prefetch', () => {
  it('held messages are unsettled deliveries: with prefetch 1 the next message is taken only once the held one has gone on', async () => {
    const scheduler = new VirtualTimeScheduler();
    const app = createIntegration({ logger: silentLogger, scheduler, routes: [from<string>('memory:hb-delay-prefetch-in', { id: 'hb-prefetch', prefetch: 1 }).delay(1_000).to('memory:hb-delay-prefetch-out')] });
    await app.start();
    const kit = new TestKit(app);
    const out = kit.mock('memory:hb-delay-prefetch-out');
    try {
      await kit.sendAll('memory:hb-delay-prefetch-in', ['a', 'b']);
      await runUntil(scheduler, () => app.metrics()['hb-prefetch']?.received === 1, 5);
      expect(app.metrics()['hb-prefetch']?.received).toBe(1); // 'b' waits in the channel while 'a' is held
      await runUntil(scheduler, () => out.received.length === 2);
      expect(scheduler.now()).toBe(2_000); // one after the other
      expect(out.bodies()).toEqual(['a', 'b']);
    } finally {
      kit.close();
      await (app as Integration).stop({ drainTimeoutMs: 20 });
    }
  });
});

describe('delay (in memory): failures inside', () => {
  it('a delay function that throws fails that message only, through the route error handler', () => {
    const { scheduler, send, output, harness } = setup<string>((m) => {
      if (m.body === 'bad') throw new Error('no delay header');
      return 10;
    });
    const bad = source('bad');
    const good = source('good');
    send(bad, good);
    advanceTo(scheduler, 10);
    expect(harness.failures.map((f) => (f.error as Error).message)).toEqual(['no delay header']);
    expect(bad.outcome).toBe('nacked');
    expect(output.bodies).toEqual(['good']);
  });

  it('NaN, an infinity, an invalid Date or not a number fails that message with a permanent InvalidDelayError', () => {
    const values: Record<string, unknown> = { nan: Number.NaN, inf: Number.POSITIVE_INFINITY, date: new Date('not a date'), text: '100' };
    const { send, output, harness } = setup<string>((m) => values[m.body] as number);
    const inputs = Object.keys(values).map((body) => source(body));
    send(...inputs);
    expect(harness.failures).toHaveLength(4);
    for (const failure of harness.failures) {
      expect(failure.error).toBeInstanceOf(InvalidDelayError);
      expect(failure.error).toMatchObject({ code: 'INVALID_DELAY', permanent: true });
    }
    expect(inputs.map((input) => input.outcome)).toEqual(['nacked', 'nacked', 'nacked', 'nacked']);
    expect(output.deliveries).toHaveLength(0);
  });

  it('a retry asked by the error handler runs the delay function again after the retry delay', () => {
    let calls = 0;
    const { scheduler, send, output, emittedAt } = setup<string>(
      () => {
        calls += 1;
        if (calls === 1) throw new Error('transient');
        return 100;
      },
      {},
      { failed: () => 50 },
    );
    send(source('a'));
    advanceTo(scheduler, 1_000);
    expect(calls).toBe(2);
    expect(emittedAt).toEqual([150]); // retried at 50, then held 100
    expect(output.bodies).toEqual(['a']);
  });
});

describe('delay (in memory): stop and drain', () => {
  it('when the source completes, held messages still leave when due (the drain) and the step completes after them', () => {
    const { scheduler, send, input, output } = setup<string>(100);
    const a = source('a');
    send(a);
    input.complete();
    expect(output.completed).toBe(false);
    advanceTo(scheduler, 100);
    expect(output.bodies).toEqual(['a']);
    expect(output.completed).toBe(true);
  });

  it('unsubscribed (the stop deadline passed): held messages are left unsettled for the source to redeliver, their timers cancelled', () => {
    const scheduler = new VirtualTimeScheduler();
    const harness = new Harness({ scheduler });
    const input = new Subject<Delivery<string>>();
    const emitted: Delivery<string>[] = [];
    const subscription = input.pipe(harness.build(delay<string>(100))).subscribe((delivery) => emitted.push(delivery));
    const a = source('a');
    input.next(a.delivery);
    expect(harness.gauges.get('delayed')).toBe(1);
    subscription.unsubscribe();
    advanceTo(scheduler, 1_000);
    expect(emitted).toHaveLength(0);
    expect(a.outcome).toBe('pending');
    expect(harness.gauges.get('delayed')).toBe(0);
  });

  it('in a route: the source delivery is acked only once the delayed message reached the end; a stop hands held ones back', async () => {
    const scheduler = new VirtualTimeScheduler();
    const app = createIntegration({ logger: silentLogger, scheduler, routes: [from<string>('memory:hb-delay-in', { id: 'hb-delay' }).delay(1_000, { id: 'hold' }).to('memory:hb-delay-out')] });
    await app.start();
    const kit = new TestKit(app);
    const out = kit.mock('memory:hb-delay-out');
    try {
      await kit.send('memory:hb-delay-in', 'first');
      await runUntil(scheduler, () => (app.metrics()['hb-delay']?.steps?.hold?.gauges?.delayed ?? 0) === 1);
      expect(app.metrics()['hb-delay']?.inFlight).toBe(1); // held, its source unsettled
      await runUntil(scheduler, () => out.received.length === 1);
      expect(scheduler.now()).toBe(1_000);
      await runUntil(scheduler, () => app.metrics()['hb-delay']?.completed === 1);
      expect(app.metrics()['hb-delay']).toMatchObject({ inFlight: 0, completed: 1 });

      await kit.send('memory:hb-delay-in', 'second');
      await runUntil(scheduler, () => app.metrics()['hb-delay']?.inFlight === 1, 10);
      await (app as Integration).stop({ drainTimeoutMs: 20 });
      expect(app.metrics()['hb-delay']).toMatchObject({ inFlight: 0, handedBack: 1, completed: 1 });
    } finally {
      kit.close();
      await (app as Integration).stop({ drainTimeoutMs: 20 });
    }
  });
});
