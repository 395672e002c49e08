import { Subject, VirtualTimeScheduler } from 'rxjs';
import { afterEach, describe, expect, expectTypeOf, it } from 'vitest';
import { scatterGather, ScatterGatherError, type Gathered } from '../../patterns/scatter-gather.ts';
import { createIntegration, from, InterchangeError, silentLogger, TimeoutError, type Integration, type Message, type RouteBuilder } from '../../facade/index.ts';
import { TestKit } from '../../facade/testing/index.ts';
import type { Delivery } from '../../src/core/index.ts';
import { runUntil } from '../unit/virtual-time.ts';
import { deferred, drive, Harness, settle, source, sources } from './harness.ts';

interface Call {
  readonly uri: string;
  readonly message: Message;
  readonly signal: AbortSignal | undefined;
  resolve(reply: Message): void;
  reject(error: unknown): void;
}

function heldServices() {
  const calls: Call[] = [];
  const request = (uri: string, message: Message, options: { readonly timeoutMs: number; readonly signal?: AbortSignal }): Promise<Message> => {
    const reply = deferred<Message>();
    calls.push({ uri, message, signal: options.signal, resolve: reply.resolve, reject: reply.reject });
    return reply.promise;
  };
  const to = (uri: string): Call[] => calls.filter((call) => call.uri === uri);
  return { calls, request, to };
}

function answer(call: Call, body: unknown): void {
  call.resolve({ id: `reply-${call.message.id}`, headers: { correlationId: call.message.headers.correlationId }, body });
}

/** Collects the reply bodies by recipient, and what was missing or failed. */
const summary = ({ replies, missing, failed, partial }: Gathered<number>) => ({
  replies: replies.map((r) => [r.recipient, r.message.body]),
  missing,
  failed: failed.map((f) => [f.recipient, f.error.message]),
  partial,
});

describe('scatterGather', () => {
  it('sends one request per recipient at once and aggregates every reply; not partial', async () => {
    const services = heldServices();
    const harness = new Harness({ request: services.request });
    const { output, send } = drive(harness.build(scatterGather<{ sku: string }, number, number>(['memory:a', 'memory:b'], { timeoutMs: 1_000, aggregate: ({ replies }) => Math.min(...replies.map((r) => r.message.body)) })));
    const input = source({ sku: 'A-1' }, { id: 'q-1', headers: { correlationId: 'conversation-1' } });
    send(input);
    await settle();
    expect(services.calls.map((c) => [c.uri, c.message.body])).toEqual([
      ['memory:a', { sku: 'A-1' }],
      ['memory:b', { sku: 'A-1' }],
    ]);
    // each request its own correlation id: the message id, the recipient's index, a random part
    expect(services.calls[0]!.message.headers.correlationId).toMatch(/^q-1\/0:[0-9a-f-]{36}$/);
    expect(services.calls[1]!.message.headers.correlationId).toMatch(/^q-1\/1:[0-9a-f-]{36}$/);
    answer(services.calls[1]!, 7);
    await settle();
    expect(output.deliveries).toHaveLength(0); // still gathering
    answer(services.calls[0]!, 9);
    await settle();
    expect(output.bodies).toEqual([7]);
    const gathered = output.messages[0]!;
    expect(gathered.id).toBe('q-1');
    expect(gathered.headers.correlationId).toBe('conversation-1');
    expect(gathered.headers.scatterGatherPartial).toBeUndefined();
    expect(input.outcome).toBe('pending');
    output.ackAll();
    expect(input.outcome).toBe('acked');
  });

  it('gives the aggregate the replies in recipient order and the request message', async () => {
    const services = heldServices();
    const seen: unknown[] = [];
    const { output, send } = drive(
      new Harness({ request: services.request }).build(
        scatterGather<string, number, unknown>(['memory:a', 'memory:b', 'memory:c'], {
          timeoutMs: 1_000,
          aggregate: (gathered, message) => {
            seen.push(message.body);
            return summary(gathered);
          },
        }),
      ),
    );
    send(source('question'));
    await settle();
    answer(services.to('memory:c')[0]!, 3);
    answer(services.to('memory:a')[0]!, 1);
    answer(services.to('memory:b')[0]!, 2);
    await settle();
    expect(output.bodies).toEqual([{ replies: [['memory:a', 1], ['memory:b', 2], ['memory:c', 3]], missing: [], failed: [], partial: false }]);
    expect(seen).toEqual(['question']);
  });

  it('on the completion timeout passes the partial result on, flagged, naming the missing recipients (virtual time)', async () => {
    const scheduler = new VirtualTimeScheduler();
    const services = heldServices();
    const harness = new Harness({ scheduler, request: services.request });
    const { output, send } = drive(harness.build(scatterGather<string, number, unknown>(['memory:fast', 'memory:slow'], { timeoutMs: 2_000, aggregate: summary })));
    const input = source('q');
    send(input);
    await settle();
    answer(services.to('memory:fast')[0]!, 1);
    await runUntil(scheduler, () => output.deliveries.length > 0);
    expect(scheduler.now()).toBe(2_000);
    expect(output.bodies).toEqual([{ replies: [['memory:fast', 1]], missing: ['memory:slow'], failed: [], partial: true }]);
    expect(output.messages[0]!.headers.scatterGatherPartial).toBe(true);
    expect(JSON.parse(String(output.messages[0]!.headers.scatterGatherMissing))).toEqual(['memory:slow']);
    expect(services.to('memory:slow')[0]!.signal?.aborted).toBe(true); // the outstanding request is given up
    expect(harness.counts.get('partial')).toBe(1);
    expect(harness.counts.get('missing')).toBe(1);
    expect(harness.failures).toEqual([]);
    output.ackAll();
    expect(input.outcome).toBe('acked');
  });

  it('a failed recipient is listed as failed; the others still make the result', async () => {
    const services = heldServices();
    const { output, send } = drive(new Harness({ request: services.request }).build(scatterGather<string, number, unknown>(['memory:a', 'memory:b'], { timeoutMs: 1_000, aggregate: summary })));
    send(source('q'));
    await settle();
    services.to('memory:a')[0]!.reject(new Error('unroutable'));
    answer(services.to('memory:b')[0]!, 2);
    await settle();
    expect(output.bodies).toEqual([{ replies: [['memory:b', 2]], missing: [], failed: [['memory:a', 'unroutable']], partial: true }]);
    expect(JSON.parse(String(output.messages[0]!.headers.scatterGatherFailed))).toEqual(['memory:a']);
    expect(output.messages[0]!.headers.scatterGatherMissing).toBeUndefined();
  });

  it('fails the message with ScatterGatherError when no recipient replied (errors and timeouts), retryable', async () => {
    const scheduler = new VirtualTimeScheduler();
    const services = heldServices();
    const harness = new Harness({ scheduler, request: services.request });
    const { output, send } = drive(harness.build(scatterGather<string, number, unknown>(['memory:a', 'memory:b'], { timeoutMs: 500, aggregate: summary })));
    const input = source('q');
    send(input);
    await settle();
    services.to('memory:a')[0]!.reject(new Error('down'));
    await runUntil(scheduler, () => harness.failures.length > 0);
    const error = harness.failures[0]!.error as ScatterGatherError;
    expect(error).toBeInstanceOf(ScatterGatherError);
    expect(error.code).toBe('SCATTER_GATHER_FAILED');
    expect(error.permanent).toBe(false);
    expect([...error.failures.keys()]).toEqual(['memory:a', 'memory:b']);
    expect(error.failures.get('memory:b')).toBeInstanceOf(TimeoutError);
    expect(output.deliveries).toHaveLength(0);
    expect(input.outcome).toBe('nacked');
  });

  it('ScatterGatherError is permanent when every recipient failed permanently', async () => {
    const permanent = new InterchangeError('UNENCODABLE', 'cannot encode', { permanent: true });
    const harness = new Harness({ request: () => Promise.reject(permanent) });
    drive(harness.build(scatterGather<string, number, unknown>(['memory:a', 'memory:b'], { timeoutMs: 500, aggregate: summary }))).send(source('q'));
    await settle();
    expect((harness.failures[0]!.error as ScatterGatherError).permanent).toBe(true);
  });

  it('fails the message (not the route) when the aggregate function throws', async () => {
    const services = heldServices();
    const harness = new Harness({ request: services.request });
    const boom = new Error('aggregate failed');
    const { output, send } = drive(
      harness.build(
        scatterGather<number, number, number>(['memory:a'], {
          timeoutMs: 1_000,
          aggregate: ({ replies }, message) => {
            if (message.body === 2) throw boom;
            return replies[0]!.message.body;
          },
        }),
      ),
    );
    const inputs = sources([1, 2, 3]);
    send(...inputs);
    await settle();
    for (const call of services.calls) answer(call, (call.message.body as number) * 10);
    await settle();
    expect(output.bodies).toEqual([10, 30]);
    expect(harness.failures.map((f) => [f.delivery.message.id, f.error])).toEqual([['m1', boom]]);
    expect(inputs.map((i) => i.outcome)).toEqual(['pending', 'nacked', 'pending']);
  });

  it('takes the recipients per message from a function, placeholders filled', async () => {
    const services = heldServices();
    const { send } = drive(
      new Harness({ request: services.request }).build(scatterGather<{ vendors: string[] }, number, unknown>((m) => m.body.vendors.map((v) => `memory:vendor-${v}`).concat('memory:{region}'), { timeoutMs: 1_000, aggregate: summary })),
    );
    send(source({ vendors: ['x', 'y'] }, { headers: { region: 'eu' } }));
    await settle();
    expect(services.calls.map((c) => c.uri)).toEqual(['memory:vendor-x', 'memory:vendor-y', 'memory:eu']);
  });

  it('with no recipient, aggregates no replies and passes the message on, not partial', async () => {
    const harness = new Harness({ request: () => Promise.reject(new Error('never called')) });
    const { output, send } = drive(harness.build(scatterGather<string, number, unknown>(() => [], { timeoutMs: 1_000, aggregate: summary })));
    send(source('q'));
    await settle();
    expect(output.bodies).toEqual([{ replies: [], missing: [], failed: [], partial: false }]);
  });

  it('gathers for at most `concurrency` messages at once (default 16)', async () => {
    const services = heldServices();
    drive(new Harness({ request: services.request }).build(scatterGather<number, number, unknown>(['memory:a', 'memory:b'], { timeoutMs: 1_000, aggregate: summary, concurrency: 2 }))).send(...sources([1, 2, 3]));
    await settle();
    expect(services.calls.map((c) => c.message.body)).toEqual([1, 1, 2, 2]);
    const defaults = heldServices();
    drive(new Harness({ request: defaults.request }).build(scatterGather<number, number, unknown>(['memory:a'], { timeoutMs: 1_000, aggregate: summary }))).send(...sources(Array.from({ length: 20 }, (_, i) => i)));
    await settle();
    expect(defaults.calls).toHaveLength(16);
  });

  it('refuses a timeout that is not positive', () => {
    expect(() => scatterGather(['memory:a'], { timeoutMs: -1, aggregate: () => 0 })).toThrow(/timeoutMs must be a positive number/);
  });

  it('on stop aborts the requests still waiting and leaves the message unsettled, for redelivery', async () => {
    const services = heldServices();
    const harness = new Harness({ request: services.request });
    const input = new Subject<Delivery<string>>();
    const subscription = input.pipe(harness.build(scatterGather<string, number, unknown>(['memory:a', 'memory:b'], { timeoutMs: 1_000, aggregate: summary }))).subscribe();
    const held = source('q');
    input.next(held.delivery);
    await settle();
    answer(services.to('memory:a')[0]!, 1);
    await settle();
    subscription.unsubscribe();
    expect(services.to('memory:b')[0]!.signal?.aborted).toBe(true);
    await settle();
    expect(harness.failures).toEqual([]);
    expect(held.outcome).toBe('pending');
  });
});

describe('.scatterGather() in the DSL', () => {
  it('types the body after the step by the aggregate; declares the static recipients', () => {
    const route = from<{ sku: string }>('memory:a').scatterGather(['memory:b', 'memory:c-{region}'], { timeoutMs: 100, aggregate: ({ replies }: Gathered<number>, message) => `${message.body.sku}:${replies.length}` });
    expectTypeOf(route).toEqualTypeOf<RouteBuilder<string>>();
    expect(route.definition().steps.map((s) => [s.kind, s.sends, s.sendsTo, s.destinations])).toEqual([['scatterGather', true, ['memory:b'], ['memory:b', 'memory:c-{region}']]]);
    const dynamic = from('memory:a').scatterGather(() => ['memory:b'], { timeoutMs: 100, aggregate: () => 1 });
    expect(dynamic.definition().steps.map((s) => [s.sendsTo, s.destinations])).toEqual([[[], []]]);
  });
});

describe('scatter-gather through the runtime (memory transport)', () => {
  let app: Integration | undefined;
  let kit: TestKit | undefined;
  afterEach(async () => {
    kit?.close();
    await app?.stop({ drainTimeoutMs: 100 });
    app = undefined;
  });

  it('gathers the replies of two responder routes into the best quote', async () => {
    app = createIntegration({
      logger: silentLogger,
      routes: [
        from<{ sku: string }>('memory:hE-sg-quotes')
          .scatterGather<{ vendor: string; price: number }, { sku: string; best: string }>(['memory:hE-sg-vendor-a', 'memory:hE-sg-vendor-b'], {
            timeoutMs: 5_000,
            aggregate: ({ replies }, message) => ({ sku: message.body.sku, best: [...replies].sort((x, y) => x.message.body.price - y.message.body.price)[0]!.message.body.vendor }),
          })
          .to('memory:hE-sg-best'),
        from<{ sku: string }>('memory:hE-sg-vendor-a').transform(() => ({ vendor: 'a', price: 12 })).to('memory:{replyTo}'),
        from<{ sku: string }>('memory:hE-sg-vendor-b').transform(() => ({ vendor: 'b', price: 9 })).to('memory:{replyTo}'),
      ],
    });
    await app.start();
    kit = new TestKit(app);
    const best = kit.mock<{ sku: string; best: string }>('memory:hE-sg-best');
    await kit.send('memory:hE-sg-quotes', { sku: 'A-1' });
    await best.expect(1);
    expect(best.bodies()).toEqual([{ sku: 'A-1', best: 'b' }]);
    expect(best.received[0]!.headers.scatterGatherPartial).toBeUndefined();
  });
});
