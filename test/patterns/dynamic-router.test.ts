import { Subject, VirtualTimeScheduler } from 'rxjs';
import { afterEach, describe, expect, it } from 'vitest';
import { dynamicRouter, HopFailedError, HopLimitError } from '../../patterns/dynamic-router.ts';
import { createIntegration, DeadLetterHeaders, from, retryAfter, RouteDefinitionError, silentLogger, type Integration, type Message } from '../../facade/index.ts';
import { TestKit } from '../../facade/testing/index.ts';
import { PartialPublishError, UnencodableMessageError, type Delivery } from '../../src/core/index.ts';
import { runUntil } from '../unit/virtual-time.ts';
import { deferred, drive, Harness, settle, source } from './harness.ts';

const itinerary = ['memory:check', 'memory:pack', 'memory:ship'];

describe('dynamicRouter', () => {
  it('asks for the next endpoint with hop 0, 1, 2… and sends to each, confirmed before the next, until undefined', async () => {
    const calls: [unknown, number][] = [];
    const confirms = itinerary.map(() => deferred());
    let call = 0;
    const harness = new Harness({ publish: () => confirms[call++]!.promise });
    const { output, send } = drive(
      harness.build(
        dynamicRouter<string>((message, hop) => {
          calls.push([message.body, hop]);
          return itinerary[hop];
        }),
      ),
    );
    const input = source('order');
    send(input);
    await settle();
    expect(harness.published.map((c) => c.uri)).toEqual(['memory:check']);
    confirms[0]!.resolve();
    await settle();
    expect(harness.published.map((c) => c.uri)).toEqual(['memory:check', 'memory:pack']);
    confirms[1]!.resolve();
    confirms[2]!.resolve();
    await settle();
    expect(harness.published.map((c) => c.uri)).toEqual(itinerary);
    expect(calls).toEqual([
      ['order', 0],
      ['order', 1],
      ['order', 2],
      ['order', 3],
    ]);
    expect(output.messages).toEqual([input.message]);
    expect(harness.published.every((c) => c.messages[0] === input.message)).toBe(true);
    expect(harness.counts.get('hops')).toBe(3);
  });

  it('routes each message by its content; a router that returns undefined at once passes it on unsent', async () => {
    const harness = new Harness();
    const { output, send } = drive(harness.build(dynamicRouter<{ express: boolean }>((m, hop) => (m.body.express && hop === 0 ? 'memory:express' : undefined))));
    send(source({ express: true }), source({ express: false }));
    await settle();
    expect(harness.published.map((c) => c.uri)).toEqual(['memory:express']);
    expect(output.bodies).toEqual([{ express: false }, { express: true }]);
  });

  it('acks the source only once every hop is confirmed and the route settled the message', async () => {
    const last = deferred();
    const harness = new Harness({ publish: (uri) => (uri === 'memory:ship' ? last.promise : Promise.resolve()) });
    const { output, send } = drive(harness.build(dynamicRouter((_, hop) => itinerary[hop])));
    const input = source('x');
    send(input);
    await settle();
    output.ackAll();
    expect(input.outcome).toBe('pending');
    last.resolve();
    await settle();
    output.ackAll();
    expect(input.outcome).toBe('acked');
  });

  it('guards a routing loop: past maxHops the message fails with HopLimitError naming the hop count (permanent)', async () => {
    const harness = new Harness();
    const { output, send } = drive(harness.build(dynamicRouter(() => 'memory:again', { maxHops: 4 })));
    const looping = source('loop');
    send(looping);
    await settle(10);
    expect(harness.published).toHaveLength(4);
    expect(output.deliveries).toEqual([]);
    const error = looping.reasons[0] as HopLimitError;
    expect(error).toBeInstanceOf(HopLimitError);
    expect(error).toMatchObject({ code: 'HOP_LIMIT', permanent: true, pattern: 'dynamicRouter', maxHops: 4, hops: 4 });
    expect(error.message).toContain('maxHops (4)');
  });

  it('the default bound is 32 hops; exactly 32 is fine', async () => {
    const harness = new Harness();
    const { output, send } = drive(harness.build(dynamicRouter<number>((m, hop) => (hop < m.body ? `memory:e${hop}` : undefined))));
    const over = source(33);
    send(source(32), over);
    await settle(80);
    expect(output.bodies).toEqual([32]);
    expect(over.reasons[0]).toMatchObject({ code: 'HOP_LIMIT', maxHops: 32, hops: 32 });
  });

  it('maxHops is checked when the route is declared', () => {
    expect(() => dynamicRouter(() => undefined, { maxHops: 0 })).toThrow(RouteDefinitionError);
    expect(() => dynamicRouter(() => undefined, { maxHops: 1.5 })).toThrow(/maxHops must be a positive integer/);
  });

  it('a throwing router fails that message only, as it threw', async () => {
    const boom = new Error('no route for negatives');
    const harness = new Harness();
    const { output, send } = drive(
      harness.build(
        dynamicRouter<number>((m, hop) => {
          if (m.body < 0) throw boom;
          return hop === 0 ? 'memory:out' : undefined;
        }),
      ),
    );
    const bad = source(-1);
    send(bad, source(1));
    await settle();
    expect(bad.reasons).toEqual([boom]);
    expect(output.bodies).toEqual([1]);
  });

  it('a failed send fails the message with HopFailedError (hop, endpoint, the cause’s code and permanence)', async () => {
    const unencodable = new UnencodableMessageError('TOO_BIG', 'over the limit');
    const harness = new Harness({ publish: (uri) => (uri === 'memory:pack' ? Promise.reject(new PartialPublishError(new Map([[0, unencodable]]), 1)) : Promise.resolve()) });
    const { send } = drive(harness.build(dynamicRouter((_, hop) => itinerary[hop])));
    const input = source('x');
    send(input);
    await settle();
    expect(harness.published.map((c) => c.uri)).toEqual(['memory:check', 'memory:pack']);
    expect(input.reasons[0]).toBeInstanceOf(HopFailedError);
    // the one message's own error, seen through the PartialPublishError: permanent, so never retried
    expect(input.reasons[0]).toMatchObject({ hop: 1, uri: 'memory:pack', code: 'TOO_BIG', permanent: true, cause: unencodable });
  });

  it('a retry asks the router again for the failed hop and resumes there', async () => {
    const scheduler = new VirtualTimeScheduler();
    let failures = 1;
    const hops: number[] = [];
    const harness = new Harness({
      scheduler,
      failed: (_delivery, _error, attempt) => (attempt < 3 ? 50 : undefined),
      publish: (uri) => (uri === 'memory:ship' && failures-- > 0 ? Promise.reject(new Error('flaky')) : Promise.resolve()),
    });
    const { output, send } = drive(
      harness.build(
        dynamicRouter((_, hop) => {
          hops.push(hop);
          return itinerary[hop];
        }),
      ),
    );
    send(source('x'));
    await runUntil(scheduler, () => output.deliveries.length === 1);
    expect(harness.published.map((c) => c.uri)).toEqual(['memory:check', 'memory:pack', 'memory:ship', 'memory:ship']);
    expect(hops).toEqual([0, 1, 2, 2, 3]);
    expect(harness.counts.get('hops')).toBe(3);
  });

  it('stop: a message in flight when the source completes finishes its hops; the step completes after it', async () => {
    const confirm = deferred();
    const harness = new Harness({ publish: (uri) => (uri === 'memory:check' ? confirm.promise : Promise.resolve()) });
    const { input, output, send } = drive(harness.build(dynamicRouter((_, hop) => itinerary[hop])));
    send(source('x'));
    input.complete();
    await settle();
    expect(output.completed).toBe(false);
    confirm.resolve();
    await settle();
    expect(harness.published.map((c) => c.uri)).toEqual(itinerary);
    expect(output.completed).toBe(true);
    expect(output.bodies).toEqual(['x']);
  });

  it('stop: once unsubscribed no further hop is sent and the message stays unsettled, for redelivery', async () => {
    const confirm = deferred();
    const harness = new Harness({ publish: (uri) => (uri === 'memory:check' ? confirm.promise : Promise.resolve()) });
    const input = new Subject<Delivery>();
    const subscription = input.pipe(harness.build(dynamicRouter((_, hop) => itinerary[hop]))).subscribe();
    const pending = source('x');
    input.next(pending.delivery);
    subscription.unsubscribe();
    confirm.resolve();
    await settle();
    expect(harness.published.map((c) => c.uri)).toEqual(['memory:check']);
    expect(pending.outcome).toBe('pending');
  });
});

describe('dynamicRouter through the DSL', () => {
  let app: Integration | undefined;
  let kit: TestKit | undefined;
  afterEach(async () => {
    kit?.close();
    await app?.stop({ drainTimeoutMs: 100 });
    app = undefined;
  });

  /** Sends to each endpoint of the `steps` body field in order — the router reads the message, as Camel's does. */
  const byBody = (m: Message<{ steps: string[] }>, hop: number): string | undefined => m.body.steps[hop];

  it('routes each message through its computed endpoints, then on to the next step', async () => {
    app = createIntegration({ logger: silentLogger, routes: [from<{ steps: string[] }>('memory:hF-dyn-in', { id: 'dyn' }).dynamicRouter(byBody, { id: 'router' }).to('memory:hF-dyn-out')] });
    await app.start();
    kit = new TestKit(app);
    const a = kit.mock('memory:hF-dyn-a');
    const b = kit.mock('memory:hF-dyn-b');
    const out = kit.mock('memory:hF-dyn-out');
    await kit.send('memory:hF-dyn-in', { steps: ['memory:hF-dyn-a', 'memory:hF-dyn-b'] });
    await out.expect(1);
    expect(await a.expect(1)).toHaveLength(1);
    expect(await b.expect(1)).toHaveLength(1);
    expect(app.metrics().dyn).toMatchObject({ completed: 1, failed: 0 });
    expect(app.metrics().dyn!.steps.router!.counts).toEqual({ hops: 2 });
  });

  it('a routing loop is dead-lettered with HOP_LIMIT, not retried', async () => {
    app = createIntegration({
      logger: silentLogger,
      routes: [
        from('memory:hF-dyn-loop', { id: 'loop' })
          .onError(() => retryAfter(1), { maxAttempts: 5, deadLetterUri: 'memory:hF-dyn-dlq' })
          .dynamicRouter(() => 'memory:hF-dyn-spin', { maxHops: 3 })
          .to('memory:hF-dyn-never'),
      ],
    });
    await app.start();
    kit = new TestKit(app);
    const dlq = kit.mock('memory:hF-dyn-dlq');
    const spin = kit.mock('memory:hF-dyn-spin');
    await kit.send('memory:hF-dyn-loop', 'round and round');
    const [dead] = await dlq.expect(1);
    expect(dead!.headers[DeadLetterHeaders.code]).toBe('HOP_LIMIT');
    expect(await spin.expect(3)).toHaveLength(3);
    expect(app.metrics().loop).toMatchObject({ retried: 0, failed: 1 });
  });
});
