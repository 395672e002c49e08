import { VirtualTimeScheduler } from 'rxjs';
import { afterEach, describe, expect, it } from 'vitest';
import { CIRCUIT_STATE_GAUGE, circuitBreaker, CircuitOpenError, circuitBreakerStep, type CircuitBreakerOptions } from '../../patterns/circuit-breaker.ts';
import { filter } from '../../patterns/filter.ts';
import { to } from '../../patterns/to.ts';
import { RouteDefinitionError, StepError, type AnyStep, type Logger, type StepFactory } from '../../src/core/index.ts';
import { createIntegration, from, silentLogger, type Integration } from '../../facade/index.ts';
import { TestKit } from '../../facade/testing/index.ts';
import { runUntil } from '../unit/virtual-time.ts';
import { drive, Harness, settle, source, type Source } from './harness.ts';

const CALL = 'amqp:queue/hD-protected';
const PARKED = 'memory:hD-parked';
const { closed, open, 'half-open': halfOpen } = CIRCUIT_STATE_GAUGE;

/** Records the breaker's info lines. */
class Lines implements Logger {
  readonly infos: string[] = [];
  info(message: string): void {
    this.infos.push(message);
  }
  warn(): void {}
  error(): void {}
}

/**
 * A breaker around `to(CALL)` in virtual time, whose destination is up or down at will (down: the
 * publish rejects), optionally with a fallback `to(PARKED)` that can fail too.
 */
function rig(options: CircuitBreakerOptions & { readonly withFallback?: boolean; readonly publishDelayMs?: number } = {}) {
  const scheduler = new VirtualTimeScheduler();
  const lines = new Lines();
  const world = { up: true, parkedUp: true };
  const harness = new Harness({
    scheduler,
    log: lines,
    publish: (uri) =>
      new Promise<void>((resolve, reject) => {
        const answer = (): void => {
          const isUp = uri === PARKED ? world.parkedUp : world.up;
          if (isUp) resolve();
          else reject(new Error(`${uri} is down`));
        };
        if (options.publishDelayMs === undefined || uri === PARKED) answer();
        else scheduler.schedule(answer, options.publishDelayMs);
      }),
  });
  const { withFallback = false, publishDelayMs: _delay, ...breaker } = options;
  const branch = harness.build(to(CALL)) as AnyStep;
  const fallback = withFallback ? (harness.build(to(PARKED)) as AnyStep) : undefined;
  const step = harness.build(circuitBreaker<string>(branch, { ...breaker, fallback }) as StepFactory<string, unknown>);
  const driven = drive(step);
  let n = 0;
  /** Sends one message, lets it settle in the branch, acks what came out (the route's end). */
  const call = async (): Promise<Source<string>> => {
    const input = source(`m${n}`, { id: `m${n}` });
    n += 1;
    driven.send(input);
    await runUntil(scheduler, () => input.settlements > 0 || driven.output.deliveries.some((d) => d.message.id === input.message.id));
    driven.output.ackAll();
    return input;
  };
  const calls = async (count: number): Promise<Source<string>[]> => {
    const sent: Source<string>[] = [];
    for (let index = 0; index < count; index += 1) sent.push(await call());
    return sent;
  };
  /** Moves the virtual clock `ms` on, running what falls due on the way. */
  const advance = (ms: number): void => {
    const target = scheduler.now() + ms;
    scheduler.maxFrames = target;
    scheduler.flush();
    scheduler.frame = target;
  };
  return { scheduler, harness, lines, world, driven, call, calls, advance, state: () => harness.gauges.get('state') };
}

describe('circuit breaker: options', () => {
  it.each<[CircuitBreakerOptions, RegExp]>([
    [{ windowSize: 0 }, /windowSize/],
    [{ windowSize: 2.5 }, /windowSize/],
    [{ windowSize: 5, minimumCalls: 6 }, /minimumCalls/],
    [{ minimumCalls: 0 }, /minimumCalls/],
    [{ failureRateThreshold: 0 }, /failureRateThreshold/],
    [{ failureRateThreshold: 101 }, /failureRateThreshold/],
    [{ slowCallMs: 0 }, /slowCallMs/],
    [{ openMs: -1 }, /openMs/],
    [{ halfOpenCalls: 0 }, /halfOpenCalls/],
  ])('refuses %j when the route is declared', (options, what) => {
    expect(() => circuitBreakerStep([], options)).toThrow(RouteDefinitionError);
    expect(() => circuitBreakerStep([], options)).toThrow(what);
  });

  it('defaults: opens at 50 % once 10 calls are in the window (not before), stays open 30 s, one trial call', async () => {
    const r = rig();
    expect(r.state()).toBe(closed);
    r.world.up = false;
    await r.calls(9);
    expect(r.state()).toBe(closed);
    await r.call();
    expect(r.state()).toBe(open);
    r.advance(29_999);
    expect(r.state()).toBe(open);
    r.advance(1);
    expect(r.state()).toBe(halfOpen);
    r.world.up = true;
    const [trial, second] = [r.call(), r.call()];
    const [trialSource, secondSource] = await Promise.all([trial, second]);
    expect(trialSource.acks).toBe(1);
    // one trial only: the second message met the half-open circuit with its trial under way
    expect(secondSource.nacks).toBe(1);
    expect(r.state()).toBe(closed);
  });

  it('uses a window of 20 by default: 10 failures among the last 20 calls open it', async () => {
    const r = rig();
    await r.calls(12); // successes
    r.world.up = false;
    await r.calls(8);
    expect(r.state()).toBe(closed); // 8 of 20
    r.world.up = true;
    await r.call(); // slides one success out, one in: still 8 of 20
    r.world.up = false;
    await r.call(); // 9 of 20
    expect(r.state()).toBe(closed);
    await r.call(); // 10 of 20
    expect(r.state()).toBe(open);
  });
});

describe('circuit breaker: closed → open', () => {
  it('passes messages through the branch while closed; what leaves it continues after the breaker', async () => {
    const r = rig();
    const sent = await r.calls(3);
    expect(r.driven.output.bodies).toEqual(['m0', 'm1', 'm2']);
    expect(r.harness.messagesTo(CALL).map((m) => m.id)).toEqual(['m0', 'm1', 'm2']);
    expect(sent.map((s) => s.outcome)).toEqual(['acked', 'acked', 'acked']);
    expect(r.harness.counts.get('opened')).toBeUndefined();
  });

  it('opens when the failure rate reaches the threshold; counts and logs the opening once', async () => {
    const r = rig({ windowSize: 4, minimumCalls: 4, failureRateThreshold: 50 });
    await r.calls(2);
    r.world.up = false;
    await r.call();
    expect(r.state()).toBe(closed); // 1 of 3, and under minimumCalls
    await r.call();
    expect(r.state()).toBe(open); // 2 of 4 = 50 %
    expect(r.harness.counts.get('opened')).toBe(1);
    expect(r.lines.infos).toEqual(['circuit breaker open']);
  });

  it('judges a sliding window of the last calls, not every call since the start', async () => {
    const r = rig({ windowSize: 4, minimumCalls: 4, failureRateThreshold: 50 });
    await r.calls(6); // successes: 6 calls in all
    r.world.up = false;
    await r.call();
    expect(r.state()).toBe(closed);
    await r.call(); // 2 of 8 overall (25 %), but 2 of the last 4
    expect(r.state()).toBe(open);
  });

  it('forgets failures that slid out of the window', async () => {
    const r = rig({ windowSize: 4, minimumCalls: 4, failureRateThreshold: 75 });
    r.world.up = false;
    await r.calls(2);
    r.world.up = true;
    await r.calls(4); // the two failures slid out
    r.world.up = false;
    await r.calls(2);
    expect(r.state()).toBe(closed); // 2 of the last 4 (4 of 8 overall)
    await r.call();
    expect(r.state()).toBe(open); // 3 of the last 4
  });

  it('counts a message the branch settles without passing on (a filter) as a successful call', async () => {
    const harness = new Harness();
    const step = harness.build(circuitBreaker<string>(harness.build(filter<string>(() => false)) as AnyStep, { windowSize: 1, minimumCalls: 1 }) as StepFactory<string, unknown>);
    const { output, send } = drive(step);
    const dropped = [source('a'), source('b')];
    send(...dropped);
    await settle();
    expect(dropped.map((s) => s.outcome)).toEqual(['acked', 'acked']);
    expect(output.deliveries).toEqual([]);
    expect(harness.gauges.get('state')).toBe(closed);
  });

  it('counts a slow call as a failure (slowCallMs), though its message goes on', async () => {
    const r = rig({ windowSize: 2, minimumCalls: 2, failureRateThreshold: 100, slowCallMs: 100, publishDelayMs: 150 });
    const sent = await r.calls(2);
    expect(sent.map((s) => s.outcome)).toEqual(['acked', 'acked']);
    expect(r.harness.counts.get('slow')).toBe(2);
    expect(r.state()).toBe(open);
  });

  it('does not count a call under slowCallMs as slow', async () => {
    const r = rig({ windowSize: 2, minimumCalls: 2, failureRateThreshold: 100, slowCallMs: 200, publishDelayMs: 150 });
    await r.calls(2);
    expect(r.harness.counts.get('slow')).toBeUndefined();
    expect(r.state()).toBe(closed);
  });
});

describe('circuit breaker: open', () => {
  it('fails fast with a retryable CircuitOpenError through the route error handler, without calling the branch', async () => {
    const r = rig({ windowSize: 1, minimumCalls: 1, openMs: 1_000 });
    r.world.up = false;
    await r.call();
    r.advance(400);
    const before = r.harness.published.length;
    const rejected = await r.call();
    expect(r.harness.published.length).toBe(before);
    expect(rejected.outcome).toBe('nacked');
    const failure = r.harness.failures.at(-1)?.error;
    expect(failure).toBeInstanceOf(CircuitOpenError);
    expect(failure).toMatchObject({ code: 'CIRCUIT_OPEN', permanent: false, state: 'open', retryInMs: 600 });
    expect(r.harness.counts.get('rejected')).toBe(1);
    expect(r.harness.counts.get('fallback')).toBeUndefined();
  });

  it('lets the route error handler retry a fast-failed message: the retry meets the breaker again', async () => {
    const scheduler = new VirtualTimeScheduler();
    let up = false;
    const harness = new Harness({
      scheduler,
      publish: () => (up ? Promise.resolve() : Promise.reject(new Error('down'))),
      // the breaker's own fast failures are retried after their retryInMs; the branch's are rejected
      failed: (delivery, error, attempt) => {
        if (error instanceof CircuitOpenError && attempt < 5) return error.retryInMs + 1;
        delivery.nack(error instanceof Error ? error : new Error(String(error)));
        return undefined;
      },
    });
    const step = harness.build(circuitBreaker<string>(harness.build(to(CALL)) as AnyStep, { windowSize: 1, minimumCalls: 1, openMs: 1_000 }) as StepFactory<string, unknown>);
    const { output, send } = drive(step);
    const first = source('first');
    send(first);
    await runUntil(scheduler, () => first.settlements > 0);
    const second = source('second');
    send(second);
    await settle();
    expect(second.settlements).toBe(0); // waiting for its retry
    up = true;
    await runUntil(scheduler, () => output.deliveries.length > 0);
    output.ackAll();
    expect(second.acks).toBe(1);
    expect(harness.gauges.get('state')).toBe(closed);
  });

  it('sends messages to the fallback while open, counts them, and acks the source once the fallback delivered', async () => {
    const r = rig({ windowSize: 1, minimumCalls: 1, withFallback: true });
    r.world.up = false;
    await r.call();
    const parked = await r.calls(2);
    expect(r.harness.messagesTo(PARKED).map((m) => m.id)).toEqual(['m1', 'm2']);
    expect(parked.map((s) => s.outcome)).toEqual(['acked', 'acked']);
    expect(r.harness.counts.get('fallback')).toBe(2);
    expect(r.harness.counts.get('rejected')).toBe(2);
  });

  it('a failure inside the fallback goes to the route error handler and leaves the breaker open', async () => {
    const r = rig({ windowSize: 1, minimumCalls: 1, withFallback: true });
    r.world.up = false;
    await r.call();
    r.world.parkedUp = false;
    const parked = await r.call();
    expect(parked.outcome).toBe('nacked');
    expect(parked.reasons[0]?.message).toBe(`${PARKED} is down`);
    expect(r.state()).toBe(open);
    expect(r.harness.counts.get('opened')).toBe(1);
  });
});

describe('circuit breaker: half-open', () => {
  it('goes half-open after openMs of (virtual) time, and logs each change of state once', async () => {
    const r = rig({ windowSize: 1, minimumCalls: 1, openMs: 5_000 });
    r.world.up = false;
    await r.call();
    r.advance(4_999);
    expect(r.state()).toBe(open);
    r.advance(1);
    expect(r.state()).toBe(halfOpen);
    r.advance(60_000);
    expect(r.lines.infos).toEqual(['circuit breaker open', 'circuit breaker half-open']);
  });

  it('closes when every trial call succeeds; other messages meanwhile are treated as while open', async () => {
    const r = rig({ windowSize: 1, minimumCalls: 1, openMs: 1_000, halfOpenCalls: 2, withFallback: true, publishDelayMs: 10 });
    r.world.up = false;
    await r.call();
    r.advance(1_000);
    r.world.up = true;
    const [a, b, c] = await Promise.all([r.call(), r.call(), r.call()]);
    expect([a, b, c].map((s) => s.outcome)).toEqual(['acked', 'acked', 'acked']);
    expect(r.harness.messagesTo(CALL).map((m) => m.id)).toEqual(['m0', 'm1', 'm2']);
    expect(r.harness.messagesTo(PARKED).map((m) => m.id)).toEqual(['m3']);
    expect(r.state()).toBe(closed);
    expect(r.lines.infos).toEqual(['circuit breaker open', 'circuit breaker half-open', 'circuit breaker closed']);
    // closed with a fresh window: the next failure alone opens it again (window of 1)
    r.world.up = false;
    await r.call();
    expect(r.state()).toBe(open);
    expect(r.harness.counts.get('opened')).toBe(2);
  });

  it('opens again when a trial call fails, for another openMs', async () => {
    const r = rig({ windowSize: 1, minimumCalls: 1, openMs: 1_000 });
    r.world.up = false;
    await r.call();
    r.advance(1_000);
    expect(r.state()).toBe(halfOpen);
    const trial = await r.call();
    expect(trial.outcome).toBe('nacked');
    expect(r.state()).toBe(open);
    expect(r.harness.counts.get('opened')).toBe(2);
    r.advance(999);
    expect(r.state()).toBe(open);
    r.advance(1);
    expect(r.state()).toBe(halfOpen);
  });

  it('does not count outcomes of calls started before the last change of state', async () => {
    const scheduler = new VirtualTimeScheduler();
    const answers: { resolve(): void; reject(error: Error): void }[] = [];
    const harness = new Harness({ scheduler, publish: () => new Promise<void>((resolve, reject) => answers.push({ resolve, reject })) });
    const step = harness.build(circuitBreaker<string>(harness.build(to(CALL)) as AnyStep, { windowSize: 2, minimumCalls: 1, openMs: 1_000 }) as StepFactory<string, unknown>);
    const { output, send } = drive(step);
    const [a, b, c] = [source('a'), source('b'), source('c')];
    send(a);
    await settle();
    send(b);
    await settle();
    expect(answers).toHaveLength(2); // both calls in flight, started while closed
    answers[0]?.reject(new Error('down'));
    await settle();
    expect(harness.gauges.get('state')).toBe(open);
    scheduler.maxFrames = 1_000;
    scheduler.flush();
    expect(harness.gauges.get('state')).toBe(halfOpen);
    answers[1]?.resolve(); // b succeeds late: not a trial, does not close the circuit
    await settle();
    expect(harness.gauges.get('state')).toBe(halfOpen);
    send(c); // the trial is still free
    await settle();
    answers[2]?.resolve();
    await settle();
    expect(harness.gauges.get('state')).toBe(closed);
    output.ackAll();
    expect([a.outcome, b.outcome, c.outcome]).toEqual(['nacked', 'acked', 'acked']);
  });
});

describe('circuit breaker: settlement and stop', () => {
  it('acks the source only once what left the branch is acked; a later failure downstream is not the call’s', async () => {
    const r = rig({ windowSize: 1, minimumCalls: 1 });
    const input = source('x');
    r.driven.send(input);
    await runUntil(r.scheduler, () => r.driven.output.deliveries.length > 0);
    expect(input.settlements).toBe(0);
    r.driven.output.deliveries[0]?.nack(new Error('a later step failed'));
    expect(input.outcome).toBe('nacked');
    expect(r.state()).toBe(closed); // the call itself had succeeded when its message left the branch
  });

  it('rejects the source with the branch’s error when the branch fails the call', async () => {
    const r = rig();
    r.world.up = false;
    const failed = await r.call();
    expect(failed.outcome).toBe('nacked');
    expect(r.harness.failures[0]?.error).toMatchObject({ message: `${CALL} is down` });
  });

  it('on stop, calls in flight finish before the step completes, and the open timer is cancelled', async () => {
    const r = rig({ windowSize: 1, minimumCalls: 1, openMs: 60_000, publishDelayMs: 100 });
    r.world.up = false;
    const input = source('in flight');
    r.driven.send(input);
    r.driven.input.complete();
    await settle();
    expect(r.driven.output.completed).toBe(false);
    expect(input.settlements).toBe(0);
    await runUntil(r.scheduler, () => r.driven.output.completed);
    expect(input.outcome).toBe('nacked');
    expect(r.state()).toBe(open);
    expect(r.driven.output.completed).toBe(true);
    expect(r.scheduler.actions.filter((action) => !action.closed)).toEqual([]); // no half-open timer left
  });
});

describe('circuit breaker through the runtime', () => {
  let app: Integration | undefined;
  let kit: TestKit | undefined;
  afterEach(async () => {
    kit?.close();
    await app?.stop({ drainTimeoutMs: 100 });
  });

  it('declares its branch and fallback, opens on failures of the branch, parks, then closes again (DSL)', async () => {
    const scheduler = new VirtualTimeScheduler();
    let up = false;
    app = createIntegration({
      logger: silentLogger,
      scheduler,
      routes: [
        from<number>('memory:hD-in', { id: 'hD-breaker' })
          .circuitBreaker(
            (b) =>
              b
                .process(() => {
                  if (!up) throw new Error('downstream is down');
                })
                .to('memory:hD-out'),
            { id: 'breaker', windowSize: 2, minimumCalls: 2, openMs: 1_000, fallback: (b) => b.to('memory:hD-parked') },
          ),
      ],
    });
    await app.start();
    kit = new TestKit(app);
    const out = kit.mock<number>('memory:hD-out');
    const parked = kit.mock<number>('memory:hD-parked');
    const figures = () => app?.route('hD-breaker').metrics.steps['breaker'];
    await kit.sendAll('memory:hD-in', [1, 2]);
    await runUntil(scheduler, () => figures()?.gauges?.state === open);
    expect(figures()?.counts?.opened).toBe(1);
    await kit.sendAll('memory:hD-in', [3, 4]);
    // 1 and 2 were rejected to the memory source, which redelivers them: into the open circuit, parked too
    await parked.expect(4);
    expect([...parked.bodies()].sort()).toEqual([1, 2, 3, 4]);
    expect(figures()?.counts).toMatchObject({ rejected: 4, fallback: 4 });
    up = true;
    await runUntil(scheduler, () => figures()?.gauges?.state === halfOpen);
    await kit.sendAll('memory:hD-in', [5]);
    await out.expect(1);
    await runUntil(scheduler, () => figures()?.gauges?.state === closed);
    expect(out.bodies()).toEqual([5]);
    expect(figures()?.gauges?.state).toBe(closed);
  });

  it('counts a call the route dead-letters inside the branch as failed: with a dead-letter channel it still opens, and the dead letters are the route’s outcome', async () => {
    const scheduler = new VirtualTimeScheduler();
    app = createIntegration({
      logger: silentLogger,
      scheduler,
      routes: [
        from<number>('memory:hD-dlc-in', { id: 'hD-dlc' })
          .deadLetterChannel('memory:hD-dlc-dead')
          .circuitBreaker(
            (b) =>
              b
                .process(() => {
                  throw new Error('downstream is down');
                })
                .to('memory:hD-dlc-out'),
            { id: 'breaker', windowSize: 2, minimumCalls: 2, openMs: 1_000, fallback: (b) => b.to('memory:hD-dlc-parked') },
          ),
      ],
    });
    await app.start();
    kit = new TestKit(app);
    const dead = kit.mock<number>('memory:hD-dlc-dead');
    const parked = kit.mock<number>('memory:hD-dlc-parked');
    const route = () => app?.route('hD-dlc').metrics;
    await kit.sendAll('memory:hD-dlc-in', [1, 2]);
    await dead.expect(2);
    await runUntil(scheduler, () => route()?.steps['breaker']?.gauges?.state === open);
    expect(route()?.steps['breaker']?.counts?.opened).toBe(1);
    await kit.sendAll('memory:hD-dlc-in', [3]);
    await parked.expect(1);
    expect(parked.bodies()).toEqual([3]);
    await runUntil(scheduler, () => route()?.inFlight === 0);
    expect(route()).toMatchObject({ deadLettered: 2, completed: 1 });
  });
});

describe('circuit breaker: DSL entry', () => {
  it('is kind circuitBreaker with the protected steps, then the fallback, as branches', () => {
    const spec = circuitBreakerStep([], { fallback: [] });
    expect(spec.kind).toBe('circuitBreaker');
    expect(spec.branches).toHaveLength(2);
    expect(circuitBreakerStep([]).branches).toHaveLength(1);
  });
});

describe('circuit breaker: errors', () => {
  it('CircuitOpenError is an InterchangeError a route error handler sees wrapped in StepError', () => {
    const error = new StepError('r', 's', 'here', new CircuitOpenError('open', 10));
    expect(error.code).toBe('CIRCUIT_OPEN');
    expect(error.permanent).toBe(false);
    expect(error.original).toBeInstanceOf(CircuitOpenError);
  });
});
