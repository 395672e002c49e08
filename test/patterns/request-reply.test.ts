import { VirtualTimeScheduler } from 'rxjs';
import { afterEach, describe, expect, expectTypeOf, it } from 'vitest';
import { RequestAbortedError, requestReply } from '../../patterns/request-reply.ts';
import { createIntegration, createMessage, from, schemaModule, silentLogger, TimeoutError, withBody, type ContractType, type Integration, type Message, type RouteBuilder } from '../../facade/index.ts';
import { TestKit } from '../../facade/testing/index.ts';
import { runUntil } from '../unit/virtual-time.ts';
import { until } from '../support/wait.ts';
import { deferred, drive, Harness, settle, source, sources } from './harness.ts';
import '../../schemas/types.generated.ts';

interface Call {
  readonly uri: string;
  readonly message: Message;
  readonly timeoutMs: number;
  readonly signal: AbortSignal | undefined;
  resolve(reply: Message): void;
  reject(error: unknown): void;
}

/** A request-reply service whose calls are held until the test answers them. */
function heldService() {
  const calls: Call[] = [];
  const request = (uri: string, message: Message, options: { readonly timeoutMs: number; readonly signal?: AbortSignal }): Promise<Message> => {
    const reply = deferred<Message>();
    calls.push({ uri, message, timeoutMs: options.timeoutMs, signal: options.signal, resolve: reply.resolve, reject: reply.reject });
    return reply.promise;
  };
  const open = (): Call[] => calls.filter((call) => call.signal?.aborted !== true);
  return { calls, request, open };
}

/** The reply a responder sends: its own body, the request's correlation id kept (and its replyTo echoed, as a naive responder does). */
function answer(call: Call, body: unknown): void {
  call.resolve({ id: `reply-${call.message.id}`, headers: { correlationId: call.message.headers.correlationId, replyTo: 'reply-channel' }, body });
}

describe('requestReply', () => {
  it('passes the reply on instead of the message; the source settles with it', async () => {
    const service = heldService();
    const harness = new Harness({ request: service.request });
    const { output, send } = drive(harness.build(requestReply<{ sku: string }, { price: number }>('memory:prices', { timeoutMs: 1_000 })));
    const input = source({ sku: 'A-1' }, { id: 'o-1', headers: { correlationId: 'conversation-7', replyTo: 'somewhere-else' } });
    send(input);
    await settle();
    expect(service.calls).toHaveLength(1);
    const call = service.calls[0]!;
    expect(call.uri).toBe('memory:prices');
    expect(call.timeoutMs).toBe(1_000);
    // the request carries its own correlation id (the message id and a random part), never a stale replyTo
    expect(call.message.headers.correlationId).toMatch(/^o-1:[0-9a-f-]{36}$/);
    expect(call.message.headers.replyTo).toBeUndefined();
    expect(call.message.body).toEqual({ sku: 'A-1' });
    expect(output.deliveries).toHaveLength(0);
    answer(call, { price: 42 });
    await settle();
    expect(output.bodies).toEqual([{ price: 42 }]);
    // the conversation's correlation id is back, the reply address gone
    expect(output.messages[0]!.headers.correlationId).toBe('conversation-7');
    expect(output.messages[0]!.headers.replyTo).toBeUndefined();
    expect(input.outcome).toBe('pending');
    output.ackAll();
    expect(input.outcome).toBe('acked');
  });

  it('nacks the source when the reply passed on is rejected downstream', async () => {
    const service = heldService();
    const { output, send } = drive(new Harness({ request: service.request }).build(requestReply<number, number>('memory:x', { timeoutMs: 1_000 })));
    const input = source(1);
    send(input);
    await settle();
    answer(service.calls[0]!, 2);
    await settle();
    output.deliveries[0]!.nack(new Error('downstream refused'));
    expect(input.outcome).toBe('nacked');
    expect(input.reasons[0]!.message).toBe('downstream refused');
  });

  it('fills `{name}` placeholders of the URI from the message', async () => {
    const service = heldService();
    drive(new Harness({ request: service.request }).build(requestReply<{ region: string }>('memory:prices-{region}', { timeoutMs: 1_000 }))).send(source({ region: 'eu' }));
    await settle();
    expect(service.calls.map((c) => c.uri)).toEqual(['memory:prices-eu']);
  });

  it('fails the message with TimeoutError after timeoutMs (virtual time) and aborts the transport wait', async () => {
    const scheduler = new VirtualTimeScheduler();
    const service = heldService();
    const harness = new Harness({ scheduler, request: service.request });
    const { output, send } = drive(harness.build(requestReply<number>('memory:slow', { timeoutMs: 5_000 })));
    const input = source(1);
    send(input);
    await runUntil(scheduler, () => harness.failures.length > 0);
    expect(scheduler.now()).toBe(5_000);
    expect(harness.failures[0]!.error).toBeInstanceOf(TimeoutError);
    expect(service.calls[0]!.signal?.aborted).toBe(true);
    expect(input.outcome).toBe('nacked');
    // a late reply changes nothing
    answer(service.calls[0]!, 'late');
    await settle();
    expect(output.deliveries).toHaveLength(0);
    expect(input.settlements).toBe(1);
  });

  it('a timeout is retryable: the error handler retries and the second reply passes on', async () => {
    const scheduler = new VirtualTimeScheduler();
    const service = heldService();
    const harness = new Harness({ scheduler, request: service.request, failed: (_d, error, attempt) => (error instanceof TimeoutError && attempt === 1 ? 100 : undefined) });
    const { output, send } = drive(harness.build(requestReply<number, string>('memory:flaky', { timeoutMs: 1_000 })));
    const input = source(7);
    send(input);
    await runUntil(scheduler, () => service.calls.length === 2);
    expect(scheduler.now()).toBe(1_100);
    answer(service.calls[1]!, 'seven');
    await settle();
    expect(output.bodies).toEqual(['seven']);
    expect(harness.failures.map((f) => f.attempt)).toEqual([1]);
    output.ackAll();
    expect(input.outcome).toBe('acked');
  });

  it('fails only the message whose request fails (transport error), as is', async () => {
    const service = heldService();
    const harness = new Harness({ request: service.request });
    const { output, send } = drive(harness.build(requestReply<number, number>('memory:x', { timeoutMs: 1_000 })));
    const inputs = sources([1, 2, 3]);
    send(...inputs);
    await settle();
    const unroutable = new Error('unroutable');
    service.calls[1]!.reject(unroutable);
    answer(service.calls[0]!, 10);
    answer(service.calls[2]!, 30);
    await settle();
    expect(output.bodies).toEqual([10, 30]);
    expect(harness.failures.map((f) => [f.delivery.message.id, f.error])).toEqual([['m1', unroutable]]);
    expect(inputs.map((i) => i.outcome)).toEqual(['pending', 'nacked', 'pending']);
  });

  it('fails the message when the request throws synchronously (no transport for the scheme)', async () => {
    const harness = new Harness({
      request: () => {
        throw new Error('no transport for scheme');
      },
    });
    const input = source(1);
    drive(harness.build(requestReply<number>('nope:x', { timeoutMs: 1_000 }))).send(input);
    await settle();
    expect((harness.failures[0]!.error as Error).message).toBe('no transport for scheme');
    expect(input.outcome).toBe('nacked');
  });

  it('keeps at most `concurrency` requests waiting; later messages wait in order', async () => {
    const service = heldService();
    const { output, send } = drive(new Harness({ request: service.request }).build(requestReply<number, number>('memory:x', { timeoutMs: 1_000, concurrency: 2 })));
    send(...sources([0, 1, 2, 3, 4]));
    await settle();
    expect(service.calls.map((c) => c.message.body)).toEqual([0, 1]);
    answer(service.calls[1]!, 1);
    await settle();
    expect(service.calls.map((c) => c.message.body)).toEqual([0, 1, 2]);
    answer(service.calls[0]!, 0);
    answer(service.calls[2]!, 2);
    await settle();
    expect(service.calls.map((c) => c.message.body)).toEqual([0, 1, 2, 3, 4]);
    expect(output.bodies).toEqual([1, 0, 2]);
  });

  it('defaults to 16 requests waiting at once', async () => {
    const service = heldService();
    drive(new Harness({ request: service.request }).build(requestReply<number>('memory:x', { timeoutMs: 1_000 }))).send(...sources(Array.from({ length: 20 }, (_, i) => i)));
    await settle();
    expect(service.calls).toHaveLength(16);
  });

  it('refuses a timeout that is not positive', () => {
    expect(() => requestReply('memory:x', { timeoutMs: 0 })).toThrow(/timeoutMs must be a positive number/);
  });

  it('on stop (unsubscribe) aborts waiting requests and leaves their sources unsettled, for redelivery', async () => {
    const service = heldService();
    const harness = new Harness({ request: service.request });
    const step = harness.build(requestReply<number>('memory:x', { timeoutMs: 1_000, concurrency: 1 }));
    const { Subject } = await import('rxjs');
    const input = new Subject<ReturnType<typeof source<number>>['delivery']>();
    const subscription = input.pipe(step).subscribe();
    const [waiting, queued] = sources([1, 2]);
    input.next(waiting!.delivery);
    input.next(queued!.delivery);
    await settle();
    expect(service.calls).toHaveLength(1);
    subscription.unsubscribe();
    expect(service.calls[0]!.signal?.aborted).toBe(true);
    service.calls[0]!.reject(new RequestAbortedError('transport saw the abort'));
    await settle();
    expect(harness.failures).toEqual([]);
    expect([waiting!.outcome, queued!.outcome]).toEqual(['pending', 'pending']);
    expect(service.calls).toHaveLength(1); // the queued one was never sent
  });

  it('completes once the source completed and every reply has passed on', async () => {
    const service = heldService();
    const { input, output, send } = drive(new Harness({ request: service.request }).build(requestReply<number>('memory:x', { timeoutMs: 1_000 })));
    send(source(1));
    input.complete();
    await settle();
    expect(output.completed).toBe(false);
    answer(service.calls[0]!, 1);
    await settle();
    expect(output.completed).toBe(true);
  });
});

describe('.request() in the DSL', () => {
  it('types the body after the step by the reply contract, else by R; declares kind, destination and contract', () => {
    const typed = from('memory:a').request('memory:b', { timeoutMs: 100, reply: 'backend.reading@1' });
    expectTypeOf(typed).toEqualTypeOf<RouteBuilder<ContractType<'backend.reading@1'>>>();
    const plain = from('memory:a').request<{ price: number }>('memory:b-{region}', { timeoutMs: 100 });
    expectTypeOf(plain).toEqualTypeOf<RouteBuilder<{ price: number }>>();
    // @ts-expect-error an unknown contract does not compile
    from('memory:a').request('memory:b', { timeoutMs: 100, reply: 'no.such@1' });
    expect(typed.definition().steps.map((s) => [s.kind, s.contract, s.sendsTo, s.destinations, s.sends])).toEqual([['request', 'backend.reading@1', ['memory:b'], ['memory:b'], true]]);
    expect(plain.definition().steps.map((s) => [s.sendsTo, s.destinations])).toEqual([[[], ['memory:b-{region}']]]);
  });
});

describe('request-reply through the runtime (memory transport)', () => {
  let app: Integration | undefined;
  let kit: TestKit | undefined;
  afterEach(async () => {
    kit?.close();
    await app?.stop({ drainTimeoutMs: 100 });
    app = undefined;
  });

  it('a responder route replies with .to("memory:{replyTo}"); the requester passes the reply on', async () => {
    app = createIntegration({
      logger: silentLogger,
      routes: [
        from<{ sku: string }>('memory:hE-orders')
          .request<{ sku: string; price: number }>('memory:hE-prices', { timeoutMs: 5_000 })
          .to('memory:hE-priced'),
        from<{ sku: string }>('memory:hE-prices')
          .transform((m) => ({ sku: m.body.sku, price: m.body.sku.length }))
          .to('memory:{replyTo}'),
      ],
    });
    await app.start();
    kit = new TestKit(app);
    const out = kit.mock<{ sku: string; price: number }>('memory:hE-priced');
    await kit.sendAll('memory:hE-orders', [{ sku: 'abc' }, { sku: 'abcdef' }]);
    await out.expect(2);
    expect(out.bodies().sort((a, b) => a.price - b.price)).toEqual([
      { sku: 'abc', price: 3 },
      { sku: 'abcdef', price: 6 },
    ]);
  });

  it('the branches of a multicast each send their own request, with a correlation id of their own (no REQUEST_IN_FLIGHT, no crossed replies)', async () => {
    app = createIntegration({
      logger: silentLogger,
      routes: [
        from<{ sku: string }>('memory:hE-mc-orders')
          .multicast<{ from: string }>([(b) => b.request<{ from: string }>('memory:hE-mc-a', { timeoutMs: 5_000 }), (b) => b.request<{ from: string }>('memory:hE-mc-b', { timeoutMs: 5_000 })])
          .to('memory:hE-mc-out'),
        from('memory:hE-mc-a').transform(() => ({ from: 'a' })).to('memory:{replyTo}'),
        from('memory:hE-mc-b').transform(() => ({ from: 'b' })).to('memory:{replyTo}'),
      ],
    });
    await app.start();
    kit = new TestKit(app);
    const out = kit.mock<{ from: string }>('memory:hE-mc-out');
    await kit.sendAll('memory:hE-mc-orders', [{ sku: 'abc' }]);
    await out.expect(2);
    expect(out.bodies().map((body) => body.from).sort()).toEqual(['a', 'b']);
    const metrics = app.route('memory:hE-mc-orders').metrics;
    await until(() => metrics.completed === 2 && metrics.inFlight === 0, () => JSON.stringify(metrics)); // a multicast's copies count one each
    expect(metrics).toMatchObject({ received: 1, completed: 2, failed: 0, rejected: 0 });
  });

  it('with `reply`, a valid reply passes on with its contract; an invalid one is dead-lettered with SchemaValidationError', async () => {
    app = createIntegration({
      logger: silentLogger,
      modules: [schemaModule({ directory: 'schemas' })],
      routes: [
        from<{ deviceId: string; ok: boolean }>('memory:hE-readings')
          .request('memory:hE-normalise', { timeoutMs: 5_000, reply: 'backend.reading@1' })
          .setHeaders((m) => ({ fahrenheit: m.body.temperatureF })) // typed by the contract
          .to('memory:hE-normalised')
          .deadLetterChannel('memory:hE-invalid'),
        from<{ deviceId: string; ok: boolean }>('memory:hE-normalise')
          .transform((m) => (m.body.ok ? { deviceId: m.body.deviceId, timestamp: 1, temperatureC: 20, temperatureF: 68 } : { deviceId: m.body.deviceId }))
          .to('memory:{replyTo}'),
      ],
    });
    await app.start();
    kit = new TestKit(app);
    const out = kit.mock('memory:hE-normalised');
    const invalid = kit.mock('memory:hE-invalid');
    await kit.sendAll('memory:hE-readings', [{ deviceId: 'd1', ok: true }, { deviceId: 'd2', ok: false }]);
    await out.expect(1);
    await invalid.expect(1);
    expect(out.received[0]!.headers.fahrenheit).toBe(68);
    expect(out.received[0]!.headers.schema).toBe('backend.reading@1');
    expect(invalid.received[0]!.headers['x-interchange-error-code']).toBe('SCHEMA_INVALID');
  });

  it('stopping drains: a reply arriving within the drain deadline still goes on and its source is acked', async () => {
    const gate = deferred();
    const integration = createIntegration({
      logger: silentLogger,
      routes: [
        from<number>('memory:hE-drain-in', { id: 'hE-requester' }).request<number>('memory:hE-drain-svc', { timeoutMs: 60_000 }).to('memory:hE-drain-out'),
        from<number>('memory:hE-drain-svc')
          .process(() => gate.promise)
          .transform((m) => m.body * 2)
          .to('memory:{replyTo}'),
      ],
    });
    app = integration;
    kit = new TestKit(integration);
    await integration.start();
    const out = kit.mock<number>('memory:hE-drain-out');
    await kit.send('memory:hE-drain-in', 21);
    await settle(5);
    const stopped = integration.stop({ drainTimeoutMs: 10_000 });
    gate.resolve();
    await stopped;
    app = undefined;
    expect(out.bodies()).toEqual([42]);
    const metrics = integration.metrics()['hE-requester']!;
    expect([metrics.completed, metrics.handedBack, metrics.failed]).toEqual([1, 0, 0]);
  });

  it('a request nobody answers times out (TimeoutError) and goes to the dead-letter channel', async () => {
    app = createIntegration({
      logger: silentLogger,
      routes: [from('memory:hE-ask').request('memory:hE-nobody', { timeoutMs: 50 }).to('memory:hE-answered').deadLetterChannel('memory:hE-unanswered')],
    });
    await app.start();
    kit = new TestKit(app);
    const dead = kit.mock('memory:hE-unanswered');
    await kit.send('memory:hE-ask', { q: 1 });
    await dead.expect(1);
    expect(dead.received[0]!.headers['x-interchange-error-code']).toBe('TIMEOUT');
  });
});

describe('MemoryTransport.request', () => {
  it('rejects with REQUEST_ABORTED when the signal aborts, and REQUEST_IN_FLIGHT for a correlation id already waiting', async () => {
    const { MemoryTransport } = await import('../../facade/index.ts');
    const { parseEndpoint } = await import('../../src/core/index.ts');
    const memory = new MemoryTransport({ logger: silentLogger });
    await memory.connect();
    const endpoint = parseEndpoint('memory:hE-silent');
    const abort = new AbortController();
    const first = memory.request(endpoint, createMessage(1, { id: 'same' }), { timeoutMs: 60_000, signal: abort.signal });
    const second = await memory.request(endpoint, createMessage(2, { id: 'same' }), { timeoutMs: 60_000 }).catch((e: unknown) => e);
    expect(second).toMatchObject({ code: 'REQUEST_IN_FLIGHT' });
    abort.abort();
    await expect(first).rejects.toMatchObject({ code: 'REQUEST_ABORTED' });
    // the request itself was published, with the transport's reply channel and its correlation id
    expect(memory.depth('hE-silent')).toBe(1);
    await expect(memory.request(endpoint, createMessage(3), { timeoutMs: 20 })).rejects.toMatchObject({ code: 'TIMEOUT' });
    await memory.close();
  });

  it('resolves with the reply carrying the correlation id; close rejects the ones still waiting', async () => {
    const { MemoryTransport } = await import('../../facade/index.ts');
    const { parseEndpoint } = await import('../../src/core/index.ts');
    const memory = new MemoryTransport({ logger: silentLogger });
    await memory.connect();
    const service = memory.consume(parseEndpoint('memory:hE-echo')).subscribe((delivery) => {
      const { replyTo, correlationId } = delivery.message.headers;
      void memory.publish(parseEndpoint(`memory:${replyTo ?? ''}`), [withBody(delivery.message, { echoed: delivery.message.body })]).then(() => delivery.ack());
      expect(correlationId).toBe('c-1');
    });
    const reply = await memory.request(parseEndpoint('memory:hE-echo'), createMessage('hi', { headers: { correlationId: 'c-1' } }), { timeoutMs: 5_000 });
    expect(reply.body).toEqual({ echoed: 'hi' });
    expect(reply.headers.correlationId).toBe('c-1');
    service.unsubscribe();
    const waiting = memory.request(parseEndpoint('memory:hE-void'), createMessage('x'), { timeoutMs: 60_000 });
    await memory.close();
    await expect(waiting).rejects.toMatchObject({ code: 'NOT_CONNECTED' });
  });
});
