import { VirtualTimeScheduler } from 'rxjs';
import { afterEach, describe, expect, it } from 'vitest';
import { deadLetterChannel } from '../../patterns/dead-letter-channel.ts';
import { retry } from '../../patterns/retry.ts';
import { createIntegration, DeadLetterHeaders, from, InterchangeError, silentLogger, StepError, type Integration, type RouteSource } from '../../facade/index.ts';
import { TestKit } from '../../facade/testing/index.ts';
import { settle, source } from './harness.ts';

const failure = (cause: Error, attempt: number) => ({ error: new StepError('route', 'step', 'here.ts:1', cause), message: source('x').message, attempt });

describe('deadLetterChannel (error handler)', () => {
  it('dead-letters at once without a retry policy', () => {
    const handler = deadLetterChannel('memory:dlq');
    expect(handler.deadLetterUri).toBe('memory:dlq');
    expect(handler.maxAttempts).toBe(1);
    expect(handler.decide(failure(new Error('x'), 1))).toEqual({ action: 'deadLetter', reason: undefined });
  });

  it('retries per the policy, then dead-letters', () => {
    const handler = deadLetterChannel('memory:dlq', { retry: retry({ maxAttempts: 3, initialDelayMs: 50, jitter: 0 }) });
    expect(handler.maxAttempts).toBe(3);
    expect([1, 2, 3].map((attempt) => handler.decide(failure(new Error('x'), attempt)))).toEqual([
      { action: 'retry', delayMs: 50 },
      { action: 'retry', delayMs: 100 },
      { action: 'deadLetter', reason: 'gave up after 3 attempts' },
    ]);
  });

  it('dead-letters failures the retry policy does not retry', () => {
    const handler = deadLetterChannel('memory:dlq', { retry: retry({ retryOn: (e) => e.code === 'NOT_CONNECTED' }) });
    expect(handler.decide(failure(new TypeError('bug'), 1)).action).toBe('deadLetter');
    expect(handler.decide(failure(new InterchangeError('NOT_CONNECTED', 'offline'), 1)).action).toBe('retry');
  });

  it('discards the failures discardWhen selects, before any retry, with the error as reason', () => {
    const handler = deadLetterChannel('memory:dlq', {
      retry: retry({ maxAttempts: 5 }),
      discardWhen: (error) => error.code === 'DUPLICATE',
    });
    expect(handler.decide(failure(new InterchangeError('DUPLICATE', 'seen order 7'), 1))).toEqual({ action: 'discard', reason: 'seen order 7' });
    expect(handler.decide(failure(new Error('other'), 1)).action).toBe('retry');
  });
});

describe('deadLetterChannel through the runtime, on virtual time', () => {
  let app: Integration | undefined;
  let kit: TestKit | undefined;
  afterEach(async () => {
    kit?.close();
    await app?.stop({ drainTimeoutMs: 100 });
    app = undefined;
  });

  async function start(route: RouteSource, scheduler: VirtualTimeScheduler): Promise<TestKit> {
    app = createIntegration({ routes: [route], scheduler, logger: silentLogger });
    await app.start();
    kit = new TestKit(app);
    return kit;
  }

  /** Lets promises run and fires due virtual timers, until `done` or nothing is left to do. */
  async function runUntil(scheduler: VirtualTimeScheduler, done: () => boolean): Promise<void> {
    for (let round = 0; round < 50 && !done(); round += 1) {
      await settle();
      scheduler.flush();
    }
    await settle();
  }

  it('retries a step that fails twice, with the policy delays, then delivers the message', async () => {
    const scheduler = new VirtualTimeScheduler();
    const runs: number[] = [];
    const kit = await start(
      from<string>('memory:in')
        .deadLetterChannel('memory:dlq', { retry: retry({ maxAttempts: 3, initialDelayMs: 100, jitter: 0 }) })
        .process(() => {
          runs.push(scheduler.now());
          if (runs.length <= 2) throw new Error('flaky');
        })
        .to('memory:out'),
      scheduler,
    );
    const out = kit.mock<string>('memory:out');
    const dlq = kit.mock('memory:dlq');
    await kit.send('memory:in', 'order-1');
    await runUntil(scheduler, () => out.received.length > 0);
    expect(out.bodies()).toEqual(['order-1']);
    expect(runs).toEqual([0, 100, 300]);
    expect(dlq.received).toEqual([]);
    expect(app!.metrics()['memory:in']).toMatchObject({ received: 1, failed: 2, retried: 2, completed: 1, deadLettered: 0, inFlight: 0 });
  });

  it('counts confirmed dead letters under its label in the route\'s sent metrics (the live line shows them)', async () => {
    const scheduler = new VirtualTimeScheduler();
    const kit = await start(
      from<number>('memory:in')
        .deadLetterChannel('memory:dlq', { label: 'invalid' })
        .process((message) => {
          if (message.body < 0) throw new Error('negative');
        })
        .to('memory:out'),
      scheduler,
    );
    const dlq = kit.mock('memory:dlq');
    const out = kit.mock('memory:out');
    await kit.sendAll('memory:in', [1, -1, 2, -2, -3]);
    await runUntil(scheduler, () => dlq.received.length === 3 && out.received.length === 2);
    expect(app!.metrics()['memory:in']).toMatchObject({ deadLettered: 3, sent: { invalid: 3 } });
  });

  it('dead-letters a step that always fails after maxAttempts, with the failure in headers', async () => {
    const scheduler = new VirtualTimeScheduler();
    const runs: number[] = [];
    const kit = await start(
      from<string>('memory:in')
        .deadLetterChannel('memory:dlq', { retry: retry({ maxAttempts: 3, initialDelayMs: 100, jitter: 0 }) })
        .process(
          () => {
            runs.push(scheduler.now());
            throw new InterchangeError('UPSTREAM_DOWN', 'billing unavailable');
          },
          { id: 'bill' },
        )
        .to('memory:out'),
      scheduler,
    );
    const out = kit.mock('memory:out');
    const dlq = kit.mock<string>('memory:dlq');
    await kit.send('memory:in', 'order-2');
    await runUntil(scheduler, () => dlq.received.length > 0);
    expect(runs).toEqual([0, 100, 300]);
    expect(out.received).toEqual([]);
    expect(dlq.bodies()).toEqual(['order-2']);
    expect(dlq.received[0]!.headers).toMatchObject({
      [DeadLetterHeaders.attempts]: 3,
      [DeadLetterHeaders.code]: 'UPSTREAM_DOWN',
      [DeadLetterHeaders.error]: 'billing unavailable',
      [DeadLetterHeaders.step]: 'bill',
      [DeadLetterHeaders.route]: 'memory:in',
    });
    expect(app!.metrics()['memory:in']).toMatchObject({ received: 1, failed: 3, retried: 2, deadLettered: 1, completed: 0, rejected: 0, inFlight: 0 });
  });

  it('discards (acks, counts) the failures discardWhen selects, without retrying', async () => {
    const scheduler = new VirtualTimeScheduler();
    let runs = 0;
    const kit = await start(
      from<string>('memory:in')
        .deadLetterChannel('memory:dlq', { retry: retry({ maxAttempts: 3 }), discardWhen: (error) => error.code === 'DUPLICATE' })
        .process(() => {
          runs += 1;
          throw new InterchangeError('DUPLICATE', 'already billed');
        })
        .to('memory:out'),
      scheduler,
    );
    const dlq = kit.mock('memory:dlq');
    await kit.send('memory:in', 'order-3');
    await runUntil(scheduler, () => false);
    expect(runs).toBe(1);
    expect(dlq.received).toEqual([]);
    expect(app!.metrics()['memory:in']).toMatchObject({ received: 1, failed: 1, discarded: 1, retried: 0, inFlight: 0 });
  });
});
