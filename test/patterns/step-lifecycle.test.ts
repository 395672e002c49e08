import { Subject, VirtualTimeScheduler } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { stepLifecycle, type StepLifecycle } from '../../src/core/step-lifecycle.ts';
import type { Delivery, Step, StepContext } from '../../src/core/index.ts';
import { collect, drive, Harness, source } from './harness.ts';

/** A step whose handlers the test drives by hand: it keeps the lifecycle of its one subscription. */
function probe(context: StepContext, extra: { drain?: () => void; teardown?: () => void } = {}): { step: Step<number, number>; life: () => StepLifecycle<number, number>; arrived: Delivery<number>[] } {
  let life: StepLifecycle<number, number> | undefined;
  const arrived: Delivery<number>[] = [];
  const step = stepLifecycle<number, number>(context, (lifecycle) => {
    life = lifecycle;
    return { next: (delivery) => arrived.push(delivery), ...extra };
  });
  return { step, life: () => life as StepLifecycle<number, number>, arrived };
}

describe('stepLifecycle', () => {
  it('completes when the source has completed and no work is pending, not before', () => {
    const { step, life } = probe(new Harness().context);
    const { input, output } = drive(step);
    life().begin();
    life().begin();
    input.complete();
    expect(life().sourceDone).toBe(true);
    expect(output.completed).toBe(false);
    life().end();
    expect(output.completed).toBe(false);
    life().end();
    expect(output.completed).toBe(true);
  });

  it('completes at once when the source completes with nothing pending', () => {
    const { step } = probe(new Harness().context);
    const { input, output } = drive(step);
    input.complete();
    expect(output.completed).toBe(true);
  });

  it('emits downstream, and emits nothing once closed', () => {
    const { step, life } = probe(new Harness().context);
    const input = new Subject<Delivery<number>>();
    const emitted: number[] = [];
    const subscription = input.pipe(step).subscribe((delivery) => emitted.push(delivery.message.body));
    const { emit } = life(); // unbound on purpose
    emit(source(1).delivery);
    expect(life().closed).toBe(false);
    subscription.unsubscribe();
    expect(life().closed).toBe(true);
    emit(source(2).delivery);
    expect(emitted).toEqual([1]);
  });

  it('forwards a source error downstream (a transport failure, never a message)', () => {
    const { step } = probe(new Harness().context);
    const { input, output } = drive(step);
    const broken = new Error('connection lost');
    input.error(broken);
    expect(output.error).toBe(broken);
    expect(output.completed).toBe(false);
  });

  it("hands a failure to the route's error handler and leaves the delivery to it when no retry is asked", () => {
    const harness = new Harness();
    const { step, life } = probe(harness.context);
    const { input, output } = drive(step);
    const failing = source(1);
    let retried = false;
    life().fail(failing.delivery, new Error('bad'), 1, () => {
      retried = true;
    });
    expect(harness.failures.map((f) => f.attempt)).toEqual([1]);
    expect(failing.outcome).toBe('nacked');
    input.complete();
    expect(retried).toBe(false);
    expect(output.completed).toBe(true);
  });

  it('runs a retry after the delay asked for, with the next attempt, on the step scheduler; completion waits for it', () => {
    const scheduler = new VirtualTimeScheduler();
    const harness = new Harness({ scheduler, failed: () => 50 });
    const { step, life } = probe(harness.context);
    const { input, output } = drive(step);
    const failing = source(1);
    const again: [number, number][] = [];
    life().fail(failing.delivery, new Error('transient'), 1, (delivery, attempt) => again.push([delivery.message.body, attempt]));
    input.complete();
    expect(output.completed).toBe(false);
    scheduler.maxFrames = 49;
    scheduler.flush();
    expect(again).toEqual([]);
    scheduler.maxFrames = Number.POSITIVE_INFINITY;
    scheduler.flush();
    expect(again).toEqual([[1, 2]]);
    expect(output.completed).toBe(true);
    expect(failing.settlements).toBe(0); // retried, not settled: the retry owns it now
  });

  it('work begun by a retry keeps the step open until it ends', () => {
    const scheduler = new VirtualTimeScheduler();
    const { step, life } = probe(new Harness({ scheduler, failed: () => 10 }).context);
    const { input, output } = drive(step);
    life().fail(source(1).delivery, new Error('transient'), 1, () => life().begin());
    input.complete();
    scheduler.flush();
    expect(output.completed).toBe(false);
    life().end();
    expect(output.completed).toBe(true);
  });

  it('on unsubscribe cancels pending retries (the delivery stays unsettled, for redelivery) and runs the teardown', () => {
    const scheduler = new VirtualTimeScheduler();
    let tornDown = 0;
    const { step, life } = probe(new Harness({ scheduler, failed: () => 10 }).context, { teardown: () => (tornDown += 1) });
    const input = new Subject<Delivery<number>>();
    const subscription = input.pipe(step).subscribe();
    const failing = source(1);
    let retried = false;
    life().fail(failing.delivery, new Error('transient'), 1, () => {
      retried = true;
    });
    subscription.unsubscribe();
    scheduler.flush();
    expect(retried).toBe(false);
    expect(failing.settlements).toBe(0);
    expect(tornDown).toBe(1);
  });

  it('a failure after unsubscribe (work ending as the stop tears down) leaves the delivery unsettled and schedules no retry', () => {
    const scheduler = new VirtualTimeScheduler();
    const harness = new Harness({ scheduler, failed: () => 10 });
    const { step, life } = probe(harness.context);
    const input = new Subject<Delivery<number>>();
    const subscription = input.pipe(step).subscribe();
    subscription.unsubscribe();
    const late = source(1);
    let retried = false;
    life().fail(late.delivery, new Error('store closing'), 1, () => {
      retried = true;
    });
    expect(scheduler.actions.filter((action) => !action.closed)).toHaveLength(0);
    scheduler.flush();
    expect(retried).toBe(false);
    expect(harness.failures).toEqual([]); // the error handler is not asked: nothing may settle it after the run ended
    expect(late.settlements).toBe(0); // for the source to redeliver
  });

  it('drains what the step holds when the source completes, and again once the work pending then has ended', () => {
    const scheduler = new VirtualTimeScheduler();
    const drains: boolean[] = [];
    let life: StepLifecycle<number, number> | undefined;
    const step = stepLifecycle<number, number>(new Harness({ scheduler, failed: () => 10 }).context, (lifecycle) => {
      life = lifecycle;
      return { next: () => {}, drain: () => drains.push(lifecycle.sourceDone) };
    });
    const { input, output } = drive(step);
    life?.fail(source(1).delivery, new Error('transient'), 1, () => {});
    life?.fail(source(2).delivery, new Error('transient'), 1, () => {});
    input.complete();
    expect(drains).toEqual([true]); // at completion, retries pending
    expect(output.completed).toBe(false);
    scheduler.flush();
    expect(drains).toEqual([true, true]); // once, when the last retry has run
    expect(output.completed).toBe(true);
  });

  it('gives each subscription state of its own (setup runs per subscription)', () => {
    let setups = 0;
    const step = stepLifecycle<number, number>(new Harness().context, (lifecycle) => {
      setups += 1;
      let seen = 0;
      return {
        next: (delivery) => {
          seen += 1;
          lifecycle.emit(delivery.with({ ...delivery.message, body: seen }));
        },
      };
    });
    const a = new Subject<Delivery<number>>();
    const b = new Subject<Delivery<number>>();
    const outA = collect(a.pipe(step));
    const outB = collect(b.pipe(step));
    a.next(source(0).delivery);
    a.next(source(0).delivery);
    b.next(source(0).delivery);
    expect(setups).toBe(2);
    expect(outA.bodies).toEqual([1, 2]);
    expect(outB.bodies).toEqual([1]);
  });
});
