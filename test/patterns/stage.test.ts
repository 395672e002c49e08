import { VirtualTimeScheduler } from 'rxjs';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ShedError, stage } from '../../patterns/stage.ts';
import { CapacityError, RouteDefinitionError, Settlement, settlementOf, StepError, type Delivery, type GaveUpOutcome } from '../../src/core/index.ts';
import { createIntegration, createMessage, from, silentLogger, type Integration, type MemoryTransport, type Message } from '../../facade/index.ts';
import { drive, Harness, settle, source, type Source } from './harness.ts';

/** Recorded source deliveries with a `priority` header each, ids `p<n>-<index>`. */
const byPriority = (priorities: readonly number[]): Source<number>[] => priorities.map((priority, index) => source(priority, { id: `p${priority}-${index}`, headers: { priority } }));

const ids = (deliveries: readonly Delivery[]): string[] => deliveries.map((delivery) => delivery.message.id);

describe('stage: options', () => {
  it('runs one message at a time by default and queues the rest, unsettled, until the one downstream settles', () => {
    const harness = new Harness();
    const { output, send } = drive(harness.build(stage<number>({ capacity: 10 })));
    const inputs = byPriority([0, 0, 0]);
    send(...inputs);
    expect(ids(output.deliveries)).toEqual(['p0-0']);
    expect(harness.gauges.get('queued')).toBe(2);
    expect(harness.gauges.get('concurrency')).toBe(1);
    expect(inputs.map((input) => input.outcome)).toEqual(['pending', 'pending', 'pending']);
    output.deliveries[0]?.ack();
    expect(inputs[0]?.outcome).toBe('acked');
    expect(ids(output.deliveries)).toEqual(['p0-0', 'p0-1']);
    expect(harness.gauges.get('queued')).toBe(1);
  });

  it('runs `concurrency` messages downstream at once', () => {
    const harness = new Harness();
    const { output, send } = drive(harness.build(stage<number>({ capacity: 10, concurrency: 3 })));
    send(...byPriority([0, 0, 0, 0, 0]));
    expect(output.deliveries).toHaveLength(3);
    expect(harness.gauges.get('concurrency')).toBe(3);
    output.deliveries[1]?.ack();
    expect(output.deliveries).toHaveLength(4);
    output.deliveries[0]?.ack();
    expect(output.deliveries).toHaveLength(5);
  });

  it('passes queued messages on highest priority first, in arrival order within a priority (the `priority` header)', () => {
    const harness = new Harness();
    const { output, send } = drive(harness.build(stage<number>({ capacity: 10 })));
    send(...byPriority([0, 1, 5, 1, 5, 9]));
    for (let index = 0; index < 6; index += 1) output.deliveries[index]?.ack();
    expect(ids(output.deliveries)).toEqual(['p0-0', 'p9-5', 'p5-2', 'p5-4', 'p1-1', 'p1-3']);
  });

  it('takes the priority from a function of the message', () => {
    const harness = new Harness();
    const { output, send } = drive(harness.build(stage<{ tier: string }>({ capacity: 10, priority: (m) => (m.body.tier === 'gold' ? 2 : 1) })));
    send(source({ tier: 'first' }, { id: 'first' }), source({ tier: 'basic' }, { id: 'basic' }), source({ tier: 'gold' }, { id: 'gold' }));
    output.ackAll();
    output.ackAll();
    expect(ids(output.deliveries)).toEqual(['first', 'gold', 'basic']);
  });

  it("'wait' (the default) queues past the capacity: nothing is refused, the source's prefetch is the bound", () => {
    const harness = new Harness();
    const { output, send } = drive(harness.build(stage<number>({ capacity: 2 })));
    const inputs = byPriority([0, 0, 0, 0, 0, 0]);
    send(...inputs);
    expect(harness.gauges.get('queued')).toBe(5);
    expect(harness.failures).toEqual([]);
    for (let index = 0; index < 6; index += 1) output.deliveries[index]?.ack();
    expect(inputs.every((input) => input.outcome === 'acked')).toBe(true);
  });

  it("'shed' fails the lowest priority of the queue and the arriving message (ties: the newest) with a permanent ShedError, counted", () => {
    const harness = new Harness();
    const { output, send } = drive(harness.build(stage<number>({ capacity: 4, whenFull: 'shed' })));
    const [blocker] = byPriority([10]);
    send(blocker!);
    const offered = byPriority([3, 1, 4, 1, 5, 9, 2, 6]);
    send(...offered);
    // shed in this order: the newest 1 (for 5), the older 1 (for 9), the arriving 2 (not above 3), 3 (for 6)
    expect(harness.failures.map((failure) => failure.delivery.message.id)).toEqual(['p1-3', 'p1-1', 'p2-6', 'p3-0']);
    const error = harness.failures[0]?.error;
    expect(error).toBeInstanceOf(ShedError);
    expect(error).toMatchObject({ code: 'STAGE_SHED', permanent: true, priority: 1, capacity: 4, message: 'stage full: shed lowest priority (p=1)' });
    expect(harness.counts.get('shed')).toBe(4);
    expect(harness.gauges.get('queued')).toBe(4);
    for (let index = 0; index < 5; index += 1) output.deliveries[index]?.ack();
    expect(ids(output.deliveries)).toEqual(['p10-0', 'p9-5', 'p6-7', 'p5-4', 'p4-2']);
    expect(offered.map((input) => input.outcome)).toEqual(['nacked', 'nacked', 'acked', 'nacked', 'acked', 'acked', 'nacked', 'acked']);
  });

  it("'reject' fails the arriving message with CapacityError at once (nacked by the default handler), counted", () => {
    const harness = new Harness();
    const { output, send } = drive(harness.build(stage<number>({ capacity: 1, whenFull: 'reject' })));
    const inputs = byPriority([0, 0, 9, 0]);
    send(...inputs);
    expect(inputs.map((input) => input.outcome)).toEqual(['pending', 'pending', 'nacked', 'nacked']);
    expect(harness.failures[0]?.error).toBeInstanceOf(CapacityError);
    expect(harness.failures[0]?.error).toMatchObject({ code: 'CAPACITY', permanent: false, message: 'stage full (capacity 1): rejected (p=9)' });
    expect(harness.counts.get('rejected')).toBe(2);
    output.ackAll();
    output.ackAll();
    expect(inputs.map((input) => input.outcome)).toEqual(['acked', 'acked', 'nacked', 'nacked']);
  });

  it("'reject' with a retrying error handler admits the message again after the delay", () => {
    const scheduler = new VirtualTimeScheduler();
    const harness = new Harness({ scheduler, failed: () => 100 });
    const { output, send } = drive(harness.build(stage<number>({ capacity: 1, whenFull: 'reject' })));
    const inputs = byPriority([0, 0, 0]);
    send(...inputs);
    expect(harness.failures.map((failure) => failure.attempt)).toEqual([1]);
    output.deliveries[0]?.ack(); // the queued one goes downstream: room in the queue again
    scheduler.flush();
    expect(inputs[2]?.outcome).toBe('pending');
    output.ackAll();
    output.ackAll();
    expect(ids(output.deliveries)).toEqual(['p0-0', 'p0-1', 'p0-2']);
    expect(inputs.map((input) => input.outcome)).toEqual(['acked', 'acked', 'acked']);
  });

  it('fails only the message whose priority function throws', () => {
    const harness = new Harness();
    const boom = new Error('no tier');
    const { output, send } = drive(
      harness.build(
        stage<number>({
          capacity: 5,
          priority: (m) => {
            if (m.body === 2) throw boom;
            return m.body;
          },
        }),
      ),
    );
    const inputs = [source(1), source(2), source(3)];
    send(...inputs);
    output.ackAll();
    output.ackAll();
    expect(harness.failures.map((failure) => failure.error)).toEqual([boom]);
    expect(inputs.map((input) => input.outcome)).toEqual(['acked', 'nacked', 'acked']);
  });

  it('refuses impossible options when the route is declared', () => {
    expect(() => stage({ capacity: 0 })).toThrow(RouteDefinitionError);
    expect(() => stage({ capacity: 1, concurrency: 1.5 })).toThrow(/concurrency must be a positive integer/);
    expect(() => stage({ capacity: 1, whenFull: 'drop' as 'shed' })).toThrow(/whenFull/);
    expect(() => stage({ capacity: 1, minConcurrency: 2 })).toThrow(/with targetP99Ms only/);
    expect(() => stage({ capacity: 1, concurrency: 4, minConcurrency: 8, targetP99Ms: 10 })).toThrow(/min ≤ max/);
    expect(() => stage({ capacity: 1, targetP99Ms: 0 })).toThrow(/targetP99Ms/);
    expect(() => stage({ capacity: 1, concurrency: 4, targetP99Ms: 10, controller: { decreaseFactor: 1 } })).toThrow(/decreaseFactor/);
  });
});

describe('stage: settlement and failure downstream', () => {
  it("passes a downstream nack to the source and frees the message's place", () => {
    const harness = new Harness();
    const { output, send } = drive(harness.build(stage<number>({ capacity: 5 })));
    const inputs = byPriority([0, 0]);
    send(...inputs);
    output.deliveries[0]?.nack(new Error('downstream failed'));
    expect(inputs[0]?.outcome).toBe('nacked');
    expect(inputs[0]?.reasons[0]?.message).toBe('downstream failed');
    expect(ids(output.deliveries)).toEqual(['p0-0', 'p0-1']);
  });

  it('completes once its source has completed and its queue is empty', () => {
    const harness = new Harness();
    const { input, output, send } = drive(harness.build(stage<number>({ capacity: 5 })));
    send(...byPriority([0, 0]));
    input.complete();
    expect(output.completed).toBe(false);
    output.deliveries[0]?.ack();
    expect(output.completed).toBe(true);
  });

  it('tells the source how a message it passed on ended (filtered, dead-lettered, discarded), before settling it', () => {
    /** A source delivery that records what it is told, as the runtime's execution does. */
    class Told extends Settlement<number> {
      readonly told: string[] = [];
      override noteOutcome(outcome: GaveUpOutcome, reason?: string): void {
        this.told.push(`${outcome}:${reason ?? ''}`);
      }
      protected onAck(): void {
        this.told.push('acked');
      }
      protected onNack(reason: Error): void {
        this.told.push(`nacked:${reason.message}`);
      }
    }
    const harness = new Harness();
    const { input, output } = drive(harness.build(stage<number>({ capacity: 5 })));
    const first = new Told(createMessage(1, { id: 'first' }));
    const second = new Told(createMessage(2, { id: 'second' }));
    input.next(first);
    input.next(second);
    const passed = output.deliveries[0]!;
    expect(passed.origin).toBe(first.message);
    settlementOf(passed)?.noteOutcome('dead-lettered', 'boom'); // as the runtime's markOutcome after the stage
    passed.ack();
    expect(first.told).toEqual(['dead-lettered:boom', 'acked']);
    settlementOf(output.deliveries[1]!)?.noteOutcome('filtered');
    output.deliveries[1]?.ack();
    expect(second.told).toEqual(['filtered:', 'acked']);
  });

  it('leaves queued messages unsettled when unsubscribed, and passes nothing more on', async () => {
    const harness = new Harness();
    const step = harness.build(stage<number>({ capacity: 5 }));
    const { Subject } = await import('rxjs');
    const input = new Subject<Delivery<number>>();
    const seen: Delivery<number>[] = [];
    const subscription = input.pipe(step).subscribe((delivery) => seen.push(delivery));
    const inputs = byPriority([0, 0, 0]);
    for (const item of inputs) input.next(item.delivery);
    subscription.unsubscribe();
    seen[0]?.ack();
    await settle();
    expect(seen).toHaveLength(1);
    expect(inputs.map((item) => item.outcome)).toEqual(['acked', 'pending', 'pending']);
    expect(harness.gauges.get('queued')).toBe(0);
  });
});

describe('stage: the latency controller (virtual time)', () => {
  it('raises the concurrency while under target with messages waiting, lowers it when over; visible as the gauge', async () => {
    const scheduler = new VirtualTimeScheduler();
    const harness = new Harness({ scheduler });
    const { output, send } = drive(harness.build(stage<number>({ capacity: 100, concurrency: 4, targetP99Ms: 50, controller: { windowSamples: 2 } })));
    send(...byPriority(Array.from({ length: 40 }, () => 0)));
    expect(harness.gauges.get('concurrency')).toBe(1); // starts at minConcurrency
    const concurrency: number[] = [];
    /** Settles every delivery downstream after `latencyMs` of virtual time. */
    const answer = (latencyMs: number, count: number): void => {
      for (let index = 0; index < count; index += 1) {
        const open = output.deliveries.filter((delivery) => !delivery.settled);
        scheduler.schedule(() => open[0]?.ack(), latencyMs);
        scheduler.flush();
        concurrency.push(harness.gauges.get('concurrency') ?? 0);
      }
    };
    answer(10, 8); // fast: +1 per window of 2 samples, up to 4
    expect(concurrency).toEqual([1, 2, 2, 3, 3, 4, 4, 4]);
    expect(output.deliveries.filter((delivery) => !delivery.settled)).toHaveLength(4);
    answer(80, 4); // slow: ×0.75 per window
    expect(concurrency.slice(8)).toEqual([4, 3, 3, 2]);
    await settle();
  });
});

describe('stage through the runtime', () => {
  let app: Integration | undefined;
  afterEach(async () => {
    await app?.stop({ drainTimeoutMs: 0 });
    app = undefined;
  });

  const prioritized = (priority: number): Message<number> => createMessage(priority, { id: `p${priority}`, headers: { priority } });

  it('offered twice its capacity, sheds ONLY the lowest priorities: each counted and dead-lettered with the reason, the source acked', async () => {
    const release: (() => void)[] = [];
    app = createIntegration({
      logger: silentLogger,
      routes: [
        from<number>('memory:hG-stage-in', { id: 'hG-shed', prefetch: 50 })
          .deadLetterChannel('memory:hG-stage-dlq')
          .stage({ capacity: 4, whenFull: 'shed' }, { id: 'admit' })
          .process(() => new Promise<void>((resolve) => void release.push(resolve)))
          .to('memory:hG-stage-out'),
      ],
    });
    await app.start();
    const memory = app.transport<MemoryTransport>('memory');
    await app.transports.publish('memory:hG-stage-in', [prioritized(10)]);
    await vi.waitUntil(() => release.length === 1);
    // 8 = twice the capacity, while the one message downstream holds its place
    await app.transports.publish('memory:hG-stage-in', [3, 1, 4, 0, 5, 9, 2, 6].map(prioritized));
    await vi.waitUntil(() => app!.metrics()['hG-shed']?.deadLettered === 4);
    const route = app.metrics()['hG-shed']!;
    expect(route.steps.admit?.counts).toEqual({ shed: 4 });
    expect(route.steps.admit?.gauges).toMatchObject({ queued: 4, concurrency: 1 });
    const dead: Message[] = [];
    const taken = memory.consume({ uri: 'memory:hG-stage-dlq', scheme: 'memory', path: 'hG-stage-dlq', options: {} }).subscribe((delivery) => {
      dead.push(delivery.message);
      delivery.ack();
    });
    taken.unsubscribe();
    expect(dead.map((message) => message.body).sort()).toEqual([0, 1, 2, 3]);
    for (const message of dead) {
      expect(message.headers).toMatchObject({
        'x-interchange-error-code': 'STAGE_SHED',
        'x-interchange-error': `stage full: shed lowest priority (p=${String(message.body)})`,
        'x-interchange-step': 'admit',
      });
    }
    while (app.metrics()['hG-shed']!.completed < 5) {
      release.splice(0).forEach((resolve) => resolve());
      await vi.waitUntil(() => release.length > 0 || app!.metrics()['hG-shed']!.completed === 5);
    }
    const out = app.metrics()['hG-shed']!;
    expect(out).toMatchObject({ received: 9, completed: 5, deadLettered: 4, inFlight: 0, rejected: 0 });
    expect(memory.depth('hG-stage-out')).toBe(5);
    expect(memory.depth('hG-stage-in')).toBe(0);
  });

  it('a failure in a step after the stage is that message’s alone: dead-lettered, and the stage goes on', async () => {
    app = createIntegration({
      logger: silentLogger,
      routes: [
        from<number>('memory:hG-fail-in', { id: 'hG-fail' })
          .deadLetterChannel('memory:hG-fail-dlq')
          .stage({ capacity: 10 })
          .process((m) => {
            if (m.body === 2) throw new Error('step after the stage failed');
          })
          .to('memory:hG-fail-out'),
      ],
    });
    await app.start();
    const memory = app.transport<MemoryTransport>('memory');
    await app.transports.publish('memory:hG-fail-in', [1, 2, 3, 4].map((n) => createMessage(n)));
    await vi.waitUntil(() => app!.metrics()['hG-fail']?.inFlight === 0 && app!.metrics()['hG-fail']?.received === 4);
    expect(app.metrics()['hG-fail']).toMatchObject({ completed: 3, deadLettered: 1 });
    expect(memory.depth('hG-fail-out')).toBe(3);
    expect(memory.depth('hG-fail-dlq')).toBe(1);
  });

  it('a message filtered or dead-lettered after the stage ends as such, not as completed (replay, receipts, probes)', async () => {
    app = createIntegration({
      logger: silentLogger,
      routes: [
        from<number>('memory:hG-outcome-in', { id: 'hG-outcome' })
          .deadLetterChannel('memory:hG-outcome-dlq')
          .stage({ capacity: 10 })
          .filter((m) => m.body !== 0)
          .process((m) => {
            if (m.body < 0) throw new Error('negative');
          })
          .to('memory:hG-outcome-out'),
      ],
    });
    await app.start();
    const route = app.route('hG-outcome');
    await expect(route.replay(createMessage(0))).resolves.toBe('filtered');
    await expect(route.replay(createMessage(-1))).resolves.toBe('dead-lettered');
    await expect(route.replay(createMessage(1))).resolves.toBe('completed');
  });

  it("a reject without a dead-letter channel goes back to the source (nack), whose redelivery rules apply", async () => {
    const release: (() => void)[] = [];
    app = createIntegration({
      logger: silentLogger,
      routes: [
        from<number>('memory:hG-reject-in?maxDeliveries=1', { id: 'hG-reject', prefetch: 10 })
          .stage({ capacity: 1, whenFull: 'reject' })
          .process(() => new Promise<void>((resolve) => void release.push(resolve)))
          .to('memory:hG-reject-out'),
      ],
    });
    await app.start();
    const memory = app.transport<MemoryTransport>('memory');
    await app.transports.publish('memory:hG-reject-in?maxDeliveries=1', [1, 2, 3].map((n) => createMessage(n)));
    await vi.waitUntil(() => app!.metrics()['hG-reject']?.rejected === 1);
    // maxDeliveries=1: the rejected message goes straight to the source's dead-letter queue
    expect(memory.depth('hG-reject-in.dead')).toBe(1);
    expect(app.metrics()['hG-reject']?.steps['stage-1']?.counts).toEqual({ rejected: 1 });
    release.splice(0).forEach((resolve) => resolve());
    await vi.waitUntil(() => release.length === 1);
    release.splice(0).forEach((resolve) => resolve());
    await vi.waitUntil(() => app!.metrics()['hG-reject']?.completed === 2);
  });
});

describe('stage: stop and drain', () => {
  beforeEach(() => void vi.useFakeTimers());
  afterEach(() => void vi.useRealTimers());

  it('keeps passing queued messages on while the route drains; those still queued at the deadline go back to the source and come again after a restart', async () => {
    const app = createIntegration({
      logger: silentLogger,
      routes: [
        from<number>('memory:hG-drain-in', { id: 'hG-drain' })
          .stage({ capacity: 10 })
          .process(() => new Promise<void>((resolve) => setTimeout(resolve, 40)))
          .to('memory:hG-drain-out'),
      ],
    });
    await app.start();
    const memory = app.transport<MemoryTransport>('memory');
    await app.transports.publish('memory:hG-drain-in', [1, 2, 3, 4, 5].map((n) => createMessage(n)));
    await vi.advanceTimersByTimeAsync(1);
    expect(app.metrics()['hG-drain']?.steps['stage-1']?.gauges).toMatchObject({ queued: 4 });
    const stopping = app.stop({ drainTimeoutMs: 100 });
    await vi.advanceTimersByTimeAsync(100); // 40 ms each, one at a time: two done, the third half-way
    await stopping;
    expect(app.metrics()['hG-drain']).toMatchObject({ completed: 2, handedBack: 3, inFlight: 0 });
    expect(memory.depth('hG-drain-out')).toBe(2);
    expect(memory.depth('hG-drain-in')).toBe(3);

    await app.start();
    await vi.advanceTimersByTimeAsync(3 * 40 + 1);
    expect(app.metrics()['hG-drain']).toMatchObject({ completed: 5, inFlight: 0 });
    expect(memory.depth('hG-drain-out')).toBe(5);
    const stoppingAgain = app.stop({ drainTimeoutMs: 0 });
    await vi.runOnlyPendingTimersAsync();
    await stoppingAgain;
  });
});

describe('StepError of a shed message', () => {
  it('is permanent, so the runtime never retries it whatever the error handler asks', () => {
    const error = new StepError('r', 's', 'here', new ShedError(0, 4));
    expect(error.permanent).toBe(true);
    expect(error.code).toBe('STAGE_SHED');
  });
});
