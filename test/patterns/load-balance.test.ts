import { Subject } from 'rxjs';
import { afterEach, describe, expect, it } from 'vitest';
import { loadBalance, loadBalanceStep } from '../../patterns/load-balance.ts';
import { createIntegration, DeadLetterHeaders, from, NotConnectedError, RouteDefinitionError, silentLogger, type Integration } from '../../facade/index.ts';
import { TestKit } from '../../facade/testing/index.ts';
import { PartialPublishError, UnencodableMessageError, type Delivery } from '../../src/core/index.ts';
import { until } from '../support/wait.ts';
import { deferred, drive, Harness, settle, source, sources } from './harness.ts';

const uris = ['memory:a', 'memory:b', 'memory:c'];
const sentTo = (harness: Harness): string[] => harness.published.map((call) => call.uri);

describe('loadBalance: strategies', () => {
  it('roundRobin (default): each endpoint in turn; counts sent:<uri>', async () => {
    const harness = new Harness();
    const { output, send } = drive(harness.build(loadBalance(uris)));
    send(...sources([1, 2, 3, 4, 5]));
    await settle();
    expect(sentTo(harness)).toEqual(['memory:a', 'memory:b', 'memory:c', 'memory:a', 'memory:b']);
    expect(output.bodies).toEqual([1, 2, 3, 4, 5]);
    expect(Object.fromEntries(harness.counts)).toEqual({ 'sent:memory:a': 2, 'sent:memory:b': 2, 'sent:memory:c': 1 });
  });

  it('weighted: in proportion to the weights, spread evenly (smooth weighted round-robin); a weight of 0 gets none', async () => {
    const harness = new Harness();
    const { send } = drive(harness.build(loadBalance(uris, { strategy: 'weighted', weights: [3, 1, 0] })));
    send(...sources([1, 2, 3, 4, 5, 6, 7, 8]));
    await settle();
    expect(sentTo(harness)).toEqual(['memory:a', 'memory:a', 'memory:b', 'memory:a', 'memory:a', 'memory:a', 'memory:b', 'memory:a']);
  });

  it('random: the endpoint the random source picks', async () => {
    const draws = [0.9, 0.1, 0.5, 0.999];
    const harness = new Harness();
    const { send } = drive(harness.build(loadBalance(uris, { strategy: 'random', random: () => draws.shift() ?? 0 })));
    send(...sources([1, 2, 3, 4]));
    await settle();
    expect(sentTo(harness)).toEqual(['memory:c', 'memory:a', 'memory:b', 'memory:c']);
  });

  it('sticky: one key, always the same endpoint; keys spread over the endpoints', async () => {
    const harness = new Harness();
    const { send } = drive(harness.build(loadBalance<{ customer: string }>(uris, { strategy: 'sticky', key: (m) => m.body.customer })));
    const customers = Array.from({ length: 30 }, (_, n) => `customer-${n % 10}`);
    send(...customers.map((customer) => source({ customer })));
    await settle();
    const endpointOf = new Map<string, Set<string>>();
    harness.published.forEach((call) => {
      const customer = (call.messages[0]!.body as { customer: string }).customer;
      endpointOf.set(customer, (endpointOf.get(customer) ?? new Set()).add(call.uri));
    });
    expect([...endpointOf.values()].every((set) => set.size === 1)).toBe(true);
    expect(new Set(sentTo(harness)).size).toBeGreaterThan(1);
  });

  it('failover: always the first endpoint while it works', async () => {
    const harness = new Harness();
    const { send } = drive(harness.build(loadBalance(uris, { strategy: 'failover' })));
    send(...sources([1, 2, 3]));
    await settle();
    expect(sentTo(harness)).toEqual(['memory:a', 'memory:a', 'memory:a']);
  });
});

describe('loadBalance: failover', () => {
  it('a failed send goes to the next endpoint; the message goes on once that one confirmed', async () => {
    const down = new NotConnectedError('a is down');
    const harness = new Harness({ publish: (uri) => (uri === 'memory:a' ? Promise.reject(down) : Promise.resolve()) });
    const { output, send } = drive(harness.build(loadBalance(uris, { strategy: 'failover' })));
    const input = source('x');
    send(input);
    await settle();
    expect(sentTo(harness)).toEqual(['memory:a', 'memory:b']);
    expect(output.messages).toEqual([input.message]);
    expect(harness.failures).toEqual([]);
    expect(Object.fromEntries(harness.counts)).toEqual({ 'failed:memory:a': 1, failover: 1, 'sent:memory:b': 1 });
  });

  it('maxFailovers bounds the endpoints tried; exhausted, the message fails with the last error, unchanged', async () => {
    const errors = new Map(uris.map((uri) => [uri, new NotConnectedError(`${uri} down`)]));
    const harness = new Harness({ publish: (uri) => Promise.reject(errors.get(uri)) });
    const { output, send } = drive(harness.build(loadBalance(uris, { strategy: 'failover', maxFailovers: 1 })));
    const input = source('x');
    send(input);
    await settle();
    expect(sentTo(harness)).toEqual(['memory:a', 'memory:b']);
    expect(output.deliveries).toEqual([]);
    expect(input.reasons).toEqual([errors.get('memory:b')]);
  });

  it('roundRobin with maxFailovers: the failover goes on from the chosen endpoint, wrapping around', async () => {
    const harness = new Harness({ publish: (uri) => (uri === 'memory:c' ? Promise.reject(new Error('c down')) : Promise.resolve()) });
    const { output, send } = drive(harness.build(loadBalance(uris, { maxFailovers: 1 })));
    send(...sources([1, 2, 3]));
    await settle();
    expect(sentTo(harness)).toEqual(['memory:a', 'memory:b', 'memory:c', 'memory:a']);
    expect(output.bodies.sort()).toEqual([1, 2, 3]);
  });

  it('without maxFailovers a round-robin send that fails fails the message', async () => {
    const harness = new Harness({ publish: () => Promise.reject(new Error('down')) });
    const { send } = drive(harness.build(loadBalance(uris)));
    const input = source('x');
    send(input);
    await settle();
    expect(sentTo(harness)).toEqual(['memory:a']);
    expect(input.outcome).toBe('nacked');
  });

  it('failoverOn chooses which failures fail over; the others fail the message at once', async () => {
    const harness = new Harness({ publish: () => Promise.reject(new Error('refused')) });
    const { send } = drive(harness.build(loadBalance(uris, { strategy: 'failover', failoverOn: (error) => error instanceof NotConnectedError })));
    const input = source('x');
    send(input);
    await settle();
    expect(sentTo(harness)).toEqual(['memory:a']);
    expect(input.reasons[0]!.message).toBe('refused');
  });

  it('by default a permanent failure (the message itself at fault) does not fail over; it is seen through PartialPublishError', async () => {
    const unencodable = new UnencodableMessageError('TOO_BIG', 'too big for a');
    const harness = new Harness({ publish: () => Promise.reject(new PartialPublishError(new Map([[0, unencodable]]), 1)) });
    const { send } = drive(harness.build(loadBalance(uris, { strategy: 'failover' })));
    const input = source('x');
    send(input);
    await settle();
    expect(sentTo(harness)).toEqual(['memory:a']);
    expect(input.reasons).toEqual([unencodable]);
  });

  it('a template that cannot be filled counts as that endpoint failing', async () => {
    const harness = new Harness();
    const { output, send } = drive(harness.build(loadBalance(['memory:{region}', 'memory:fallback'], { strategy: 'failover' })));
    send(source('with', { headers: { region: 'eu' } }), source('without'));
    await settle();
    expect(sentTo(harness)).toEqual(['memory:eu', 'memory:fallback']);
    expect(output.bodies).toEqual(['with', 'without']);
    expect(harness.counts.get('sent:memory:{region}')).toBe(1);
  });
});

describe('loadBalance: settlement, failures inside, stop', () => {
  it('acks the source only once the endpoint confirmed and the route settled the message', async () => {
    const confirm = deferred();
    const harness = new Harness({ publish: () => confirm.promise });
    const { output, send } = drive(harness.build(loadBalance(uris)));
    const input = source('x');
    send(input);
    await settle();
    expect(output.deliveries).toEqual([]);
    confirm.resolve();
    await settle();
    expect(input.outcome).toBe('pending');
    output.ackAll();
    expect(input.outcome).toBe('acked');
  });

  it('a throwing key fails that message only', async () => {
    const harness = new Harness();
    const boom = new Error('no customer');
    const { output, send } = drive(
      harness.build(
        loadBalance<string>(uris, {
          strategy: 'sticky',
          key: (m) => {
            if (m.body === 'bad') throw boom;
            return m.body;
          },
        }),
      ),
    );
    const [bad, good] = sources(['bad', 'good']);
    send(bad!, good!);
    await settle();
    expect(bad!.reasons).toEqual([boom]);
    expect(output.bodies).toEqual(['good']);
  });

  it('stop: a send in flight when the source completes finishes; the step completes after it', async () => {
    const confirm = deferred();
    const harness = new Harness({ publish: () => confirm.promise });
    const { input, output, send } = drive(harness.build(loadBalance(uris)));
    send(source('x'));
    input.complete();
    await settle();
    expect(output.completed).toBe(false);
    confirm.resolve();
    await settle();
    expect(output.bodies).toEqual(['x']);
    expect(output.completed).toBe(true);
  });

  it('stop: once unsubscribed a failed send does not fail over, and the message stays unsettled, for redelivery', async () => {
    const failure = deferred();
    const harness = new Harness({ publish: () => failure.promise });
    const input = new Subject<Delivery>();
    const subscription = input.pipe(harness.build(loadBalance(uris, { strategy: 'failover' }))).subscribe();
    const pending = source('x');
    input.next(pending.delivery);
    subscription.unsubscribe();
    failure.reject(new Error('a down'));
    await settle();
    expect(sentTo(harness)).toEqual(['memory:a']);
    expect(pending.outcome).toBe('pending');
  });
});

describe('loadBalance: options checked when the route is declared', () => {
  it.each([
    ['no endpoint', () => loadBalance([])],
    ['an empty URI', () => loadBalance(['memory:a', ' '])],
    ['weights without the weighted strategy', () => loadBalance(uris, { weights: [1, 1, 1] })],
    ['a weight per endpoint', () => loadBalance(uris, { strategy: 'weighted', weights: [1, 1] })],
    ['non-negative integer weights', () => loadBalance(uris, { strategy: 'weighted', weights: [1, -1, 1] })],
    ['a positive weight', () => loadBalance(uris, { strategy: 'weighted', weights: [0, 0, 0] })],
    ['sticky needs a key', () => loadBalance(uris, { strategy: 'sticky' })],
    ['a key only for sticky', () => loadBalance<unknown>(uris, { key: () => 'k' })],
    ['maxFailovers past the other endpoints', () => loadBalance(uris, { maxFailovers: 3 })],
    ['a negative maxFailovers', () => loadBalance(uris, { maxFailovers: -1 })],
    ['an unknown strategy', () => loadBalance(uris, { strategy: 'fastest' as never })],
  ])('refuses %s', (_, build) => {
    expect(build).toThrow(RouteDefinitionError);
  });

  it('declares its static endpoints (checked at build) and every endpoint for the graph', () => {
    const spec = loadBalanceStep(['memory:a', 'amqp:queue/{region}']);
    expect(spec).toMatchObject({ kind: 'loadBalance', sends: true, sendsTo: ['memory:a'], destinations: ['memory:a', 'amqp:queue/{region}'] });
  });
});

describe('loadBalance through the DSL', () => {
  let app: Integration | undefined;
  let kit: TestKit | undefined;
  afterEach(async () => {
    kit?.close();
    await app?.stop({ drainTimeoutMs: 100 });
    app = undefined;
  });

  it('balances round-robin over memory endpoints, counted per endpoint in the step metrics', async () => {
    app = createIntegration({
      logger: silentLogger,
      routes: [from<number>('memory:hF-lb-in', { id: 'lb', prefetch: 1 }).loadBalance(['memory:hF-lb-a', 'memory:hF-lb-b'], { id: 'balancer' })],
    });
    await app.start();
    kit = new TestKit(app);
    const a = kit.mock<number>('memory:hF-lb-a');
    const b = kit.mock<number>('memory:hF-lb-b');
    await kit.sendAll('memory:hF-lb-in', [1, 2, 3, 4]);
    expect((await a.expect(2)).map((m) => m.body)).toEqual([1, 3]);
    expect((await b.expect(2)).map((m) => m.body)).toEqual([2, 4]);
    // counted once the send's confirm reached the step (the mock may see the message a turn earlier)
    await until(() => app!.metrics().lb!.steps.balancer!.counts?.['sent:memory:hF-lb-b'] === 2, () => JSON.stringify(app!.metrics().lb!.steps.balancer));
    expect(app.metrics().lb!.steps.balancer!.counts).toEqual({ 'sent:memory:hF-lb-a': 2, 'sent:memory:hF-lb-b': 2 });
  });

  it('fails over to the backup; with every endpoint failing, the route’s error handler dead-letters the message', async () => {
    app = createIntegration({
      logger: silentLogger,
      routes: [
        from<string>('memory:hF-lb-fo', { id: 'fo' })
          .deadLetterChannel('memory:hF-lb-dlq')
          .loadBalance(['memory:hF-lb-{zone}', 'memory:hF-lb-{backup}'], { strategy: 'failover', id: 'balancer' })
          .to('memory:hF-lb-done'),
      ],
    });
    await app.start();
    kit = new TestKit(app);
    const backup = kit.mock<string>('memory:hF-lb-spare');
    const done = kit.mock<string>('memory:hF-lb-done');
    const dlq = kit.mock<string>('memory:hF-lb-dlq');
    await kit.send('memory:hF-lb-fo', 'no zone', { backup: 'spare' });
    await kit.send('memory:hF-lb-fo', 'nowhere');
    expect((await backup.expect(1)).map((m) => m.body)).toEqual(['no zone']);
    expect((await done.expect(1)).map((m) => m.body)).toEqual(['no zone']);
    const [dead] = await dlq.expect(1);
    expect(dead!.body).toBe('nowhere');
    expect(dead!.headers[DeadLetterHeaders.code]).toBe('ENDPOINT');
    expect(String(dead!.headers[DeadLetterHeaders.error])).toContain('{backup}');
  });

  it('an unknown scheme among the static endpoints fails the build', () => {
    expect(() => createIntegration({ logger: silentLogger, routes: [from('memory:hF-lb-bad').loadBalance(['memory:hF-ok', 'nowhere:x'])] })).toThrow(/unknown scheme 'nowhere'/);
  });
});
