import { Subject, VirtualTimeScheduler } from 'rxjs';
import { afterEach, describe, expect, it } from 'vitest';
import { HopFailedError, HopLimitError } from '../../patterns/dynamic-router.ts';
import { routingSlip } from '../../patterns/routing-slip.ts';
import { createIntegration, DeadLetterHeaders, from, InterchangeError, NotConnectedError, RouteDefinitionError, silentLogger, type Integration } from '../../facade/index.ts';
import { TestKit } from '../../facade/testing/index.ts';
import type { Delivery } from '../../src/core/index.ts';
import { runUntil } from '../unit/virtual-time.ts';
import { deferred, drive, Harness, settle, source } from './harness.ts';

const slip = (uris: string): { headers: { routingSlip: string } } => ({ headers: { routingSlip: uris } });

describe('routingSlip', () => {
  it('sends to each endpoint of the header in turn, each confirmed before the next, then passes the message on', async () => {
    const confirms = [deferred(), deferred(), deferred()];
    let call = 0;
    const harness = new Harness({ publish: () => confirms[call++]!.promise });
    const { output, send } = drive(harness.build(routingSlip()));
    const input = source('order', slip(' memory:check, memory:pack,,memory:ship '));
    send(input);
    await settle();
    expect(harness.published.map((c) => c.uri)).toEqual(['memory:check']);
    confirms[0]!.resolve();
    await settle();
    expect(harness.published.map((c) => c.uri)).toEqual(['memory:check', 'memory:pack']);
    confirms[1]!.resolve();
    await settle();
    expect(output.deliveries).toEqual([]);
    confirms[2]!.resolve();
    await settle();
    expect(harness.published.map((c) => c.uri)).toEqual(['memory:check', 'memory:pack', 'memory:ship']);
    // the message goes on as it came, unstamped
    expect(output.messages).toEqual([input.message]);
    expect(harness.counts.get('hops')).toBe(3);
  });

  it('stamps each copy with its index in the slip (routingSlipIndex), same id and body', async () => {
    const harness = new Harness();
    drive(harness.build(routingSlip())).send(source('x', { id: 'm1', ...slip('memory:a,memory:b') }));
    await settle();
    expect(harness.published.map((c) => [c.uri, c.messages[0]!.id, c.messages[0]!.body, c.messages[0]!.headers.routingSlipIndex])).toEqual([
      ['memory:a', 'm1', 'x', 0],
      ['memory:b', 'm1', 'x', 1],
    ]);
  });

  it('options: another header, another delimiter, another index header or none', async () => {
    const harness = new Harness();
    const first = drive(harness.build(routingSlip('itinerary', { delimiter: '|', indexHeader: 'leg' })));
    first.send(source('x', { headers: { itinerary: 'memory:a|memory:b', routingSlip: 'memory:ignored' } }));
    await settle();
    expect(harness.published.map((c) => [c.uri, c.messages[0]!.headers.leg, c.messages[0]!.headers.routingSlipIndex])).toEqual([
      ['memory:a', 0, undefined],
      ['memory:b', 1, undefined],
    ]);
    const plain = new Harness();
    drive(plain.build(routingSlip(undefined, { indexHeader: false }))).send(source('y', slip('memory:c')));
    await settle();
    expect(plain.published[0]!.messages[0]!.headers.routingSlipIndex).toBeUndefined();
  });

  it('takes the slip from a function: a list or one delimited string', async () => {
    const harness = new Harness();
    const { output, send } = drive(harness.build(routingSlip<{ steps: string[] | string }>((m) => m.body.steps)));
    send(source({ steps: ['memory:a', 'memory:b'] }), source({ steps: 'memory:c,memory:d' }));
    await settle();
    expect(harness.published.map((c) => c.uri).sort()).toEqual(['memory:a', 'memory:b', 'memory:c', 'memory:d']);
    expect(output.deliveries).toHaveLength(2);
  });

  it('passes a message without a slip (or with an empty one) on unsent', async () => {
    const harness = new Harness();
    const { output, send } = drive(harness.build(routingSlip()));
    send(source('none'), source('empty', slip(' , ')));
    await settle();
    expect(harness.published).toEqual([]);
    expect(output.bodies).toEqual(['none', 'empty']);
  });

  it('acks the source only after every endpoint confirmed and the route settled the message', async () => {
    const last = deferred();
    const harness = new Harness({ publish: (uri) => (uri === 'memory:b' ? last.promise : Promise.resolve()) });
    const { output, send } = drive(harness.build(routingSlip()));
    const input = source('x', slip('memory:a,memory:b'));
    send(input);
    await settle();
    output.ackAll();
    expect(input.outcome).toBe('pending');
    last.resolve();
    await settle();
    output.ackAll();
    expect(input.outcome).toBe('acked');
  });

  it('a failed send stops the slip there: the message fails with HopFailedError naming the endpoint and its index', async () => {
    const down = new NotConnectedError('pack is down');
    const harness = new Harness({ publish: (uri) => (uri === 'memory:pack' ? Promise.reject(down) : Promise.resolve()) });
    const { output, send } = drive(harness.build(routingSlip()));
    const failing = source('x', slip('memory:check,memory:pack,memory:ship'));
    const fine = source('y', slip('memory:check'));
    send(failing, fine);
    await settle();
    expect(harness.published.map((c) => c.uri)).toEqual(['memory:check', 'memory:check', 'memory:pack']);
    expect(failing.outcome).toBe('nacked');
    const error = failing.reasons[0] as HopFailedError;
    expect(error).toBeInstanceOf(HopFailedError);
    expect(error).toMatchObject({ uri: 'memory:pack', hop: 1, code: 'NOT_CONNECTED', permanent: false, cause: down });
    expect(output.bodies).toEqual(['y']);
  });

  it('a retry resumes at the endpoint that failed: the ones before it are not sent again', async () => {
    const scheduler = new VirtualTimeScheduler();
    let packFailures = 1;
    const harness = new Harness({
      scheduler,
      failed: (_delivery, _error, attempt) => (attempt < 3 ? 100 : undefined),
      publish: (uri) => (uri === 'memory:pack' && packFailures-- > 0 ? Promise.reject(new Error('flaky')) : Promise.resolve()),
    });
    const { output, send } = drive(harness.build(routingSlip()));
    send(source('x', slip('memory:check,memory:pack,memory:ship')));
    await runUntil(scheduler, () => output.deliveries.length === 1);
    expect(harness.published.map((c) => c.uri)).toEqual(['memory:check', 'memory:pack', 'memory:pack', 'memory:ship']);
    expect(harness.failures.map((f) => f.attempt)).toEqual([1]);
  });

  it('a slip longer than maxHops fails with HopLimitError (permanent) before any send; maxHops is checked at build', async () => {
    const harness = new Harness();
    const { output, send } = drive(harness.build(routingSlip(undefined, { maxHops: 2 })));
    const long = source('x', slip('memory:a,memory:b,memory:c'));
    send(long, source('ok', slip('memory:a,memory:b')));
    await settle();
    expect(harness.published.map((c) => c.uri)).toEqual(['memory:a', 'memory:b']);
    expect(long.reasons[0]).toBeInstanceOf(HopLimitError);
    expect(long.reasons[0]).toMatchObject({ code: 'HOP_LIMIT', permanent: true, maxHops: 2, hops: 3 });
    expect(output.bodies).toEqual(['ok']);
    expect(() => routingSlip(undefined, { maxHops: 0 })).toThrow(RouteDefinitionError);
  });

  it('with `allow`, a slip naming any other endpoint fails (ROUTING_SLIP_REFUSED, permanent) before any send', async () => {
    const harness = new Harness();
    const { output, send } = drive(harness.build(routingSlip(undefined, { allow: ['memory:steps.'] })));
    const forged = source('x', slip('memory:steps.check,amqp:exchange/admin'));
    send(forged, source('ok', slip('memory:steps.check,memory:steps.pack')));
    await settle();
    expect(harness.published.map((c) => c.uri)).toEqual(['memory:steps.check', 'memory:steps.pack']);
    expect(forged.reasons[0]).toMatchObject({ code: 'ROUTING_SLIP_REFUSED', permanent: true });
    expect(output.bodies).toEqual(['ok']);
    const predicate = new Harness();
    const checked = drive(predicate.build(routingSlip(undefined, { allow: (uri) => uri === 'memory:only' })));
    const other = source('y', slip('memory:other'));
    checked.send(other);
    await settle();
    expect(predicate.published).toEqual([]);
    expect(other.reasons[0]).toMatchObject({ code: 'ROUTING_SLIP_REFUSED' });
  });

  it('the default bound is 32 endpoints', async () => {
    const harness = new Harness();
    const { output, send } = drive(harness.build(routingSlip()));
    const uris = (n: number): string => Array.from({ length: n }, (_, i) => `memory:e${i}`).join(',');
    const over = source('over', slip(uris(33)));
    send(source('at', slip(uris(32))), over);
    await settle(40);
    expect(output.bodies).toEqual(['at']);
    expect(over.reasons[0]).toBeInstanceOf(HopLimitError);
  });

  it('fails only the message whose slip function throws, or whose slip header is not text', async () => {
    const harness = new Harness();
    const boom = new Error('no itinerary');
    const { output, send } = drive(
      harness.build(
        routingSlip<number>((m) => {
          if (m.body < 0) throw boom;
          return ['memory:a'];
        }),
      ),
    );
    const bad = source(-1);
    send(bad, source(1));
    await settle();
    expect(bad.reasons).toEqual([boom]);
    expect(output.bodies).toEqual([1]);

    const headers = new Harness();
    const numeric = source('x', { headers: { routingSlip: 42 } });
    drive(headers.build(routingSlip())).send(numeric);
    await settle();
    expect(numeric.reasons[0]).toBeInstanceOf(InterchangeError);
    expect(numeric.reasons[0]).toMatchObject({ code: 'ROUTING_SLIP_INVALID', permanent: true });
  });

  it('stop: a slip in flight when the source completes finishes; the step completes after it', async () => {
    const confirm = deferred();
    const harness = new Harness({ publish: (uri) => (uri === 'memory:a' ? confirm.promise : Promise.resolve()) });
    const { input, output, send } = drive(harness.build(routingSlip()));
    send(source('x', slip('memory:a,memory:b')));
    input.complete();
    await settle();
    expect(output.completed).toBe(false);
    confirm.resolve();
    await settle();
    expect(harness.published.map((c) => c.uri)).toEqual(['memory:a', 'memory:b']);
    expect(output.bodies).toEqual(['x']);
    expect(output.completed).toBe(true);
  });

  it('stop: once unsubscribed no further endpoint is sent to and the message stays unsettled, for redelivery', async () => {
    const confirm = deferred();
    const harness = new Harness({ publish: (uri) => (uri === 'memory:a' ? confirm.promise : Promise.resolve()) });
    const input = new Subject<Delivery>();
    const subscription = input.pipe(harness.build(routingSlip())).subscribe();
    const pending = source('x', slip('memory:a,memory:b'));
    input.next(pending.delivery);
    subscription.unsubscribe();
    confirm.resolve();
    await settle();
    expect(harness.published.map((c) => c.uri)).toEqual(['memory:a']);
    expect(pending.outcome).toBe('pending');
    expect(harness.failures).toEqual([]);
  });
});

describe('routingSlip through the DSL', () => {
  let app: Integration | undefined;
  let kit: TestKit | undefined;
  afterEach(async () => {
    kit?.close();
    await app?.stop({ drainTimeoutMs: 100 });
    app = undefined;
  });

  it('each message visits its own slip, then goes on to the route’s next step; hops are counted', async () => {
    app = createIntegration({ logger: silentLogger, routes: [from<string>('memory:hF-slip-in', { id: 'slip' }).routingSlip(undefined, { id: 'slip-step' }).to('memory:hF-slip-out')] });
    await app.start();
    kit = new TestKit(app);
    const a = kit.mock<string>('memory:hF-slip-a');
    const b = kit.mock<string>('memory:hF-slip-b');
    const out = kit.mock<string>('memory:hF-slip-out');
    await kit.send('memory:hF-slip-in', 'both', { routingSlip: 'memory:hF-slip-a,memory:hF-slip-b' });
    await kit.send('memory:hF-slip-in', 'only-b', { routingSlip: 'memory:hF-slip-b' });
    const outs = await out.expect(2);
    expect(outs.map((m) => m.body).sort()).toEqual(['both', 'only-b']);
    expect((await a.expect(1)).map((m) => [m.body, m.headers.routingSlipIndex])).toEqual([['both', 0]]);
    expect((await b.expect(2)).map((m) => [m.body, m.headers.routingSlipIndex]).sort()).toEqual([
      ['both', 1],
      ['only-b', 0],
    ]);
    expect(app.metrics().slip).toMatchObject({ completed: 2, failed: 0 });
    expect(app.metrics().slip!.steps['slip-step']!.counts).toEqual({ hops: 3 });
  });

  it('a slip naming an unknown endpoint dead-letters the message with the failing index', async () => {
    app = createIntegration({
      logger: silentLogger,
      routes: [from<string>('memory:hF-slip-in2', { id: 'slip2' }).deadLetterChannel('memory:hF-slip-dlq').routingSlip().to('memory:hF-slip-out2')],
    });
    await app.start();
    kit = new TestKit(app);
    const dlq = kit.mock<string>('memory:hF-slip-dlq');
    const a = kit.mock<string>('memory:hF-slip-a2');
    await kit.send('memory:hF-slip-in2', 'lost', { routingSlip: 'memory:hF-slip-a2,nowhere:at-all' });
    const [dead] = await dlq.expect(1);
    expect(dead!.headers[DeadLetterHeaders.code]).toBe('ENDPOINT');
    expect(String(dead!.headers[DeadLetterHeaders.error])).toContain("'nowhere:at-all' (hop 1)");
    expect(await a.expect(1)).toHaveLength(1);
  });
});
