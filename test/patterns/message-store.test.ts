import { ContainerModule } from 'inversify';
import { VirtualTimeScheduler } from 'rxjs';
import { afterEach, describe, expect, it } from 'vitest';
import { sharedMemoryMessageStore, storeMessage } from '../../patterns/message-store.ts';
import { MemoryMessageStore, MessageStore, type StoredMessage } from '../../src/stores/message-store.ts';
import { createMessage, silentLogger, type Logger } from '../../src/core/index.ts';
import { createIntegration, from, type Integration } from '../../facade/index.ts';
import { TestKit } from '../../facade/testing/index.ts';
import { deferred, drive, Harness, settle, source, sources } from './harness.ts';

function recordingLogger(): Logger & { readonly warnings: { message: string; fields: Readonly<Record<string, unknown>> | undefined }[] } {
  const warnings: { message: string; fields: Readonly<Record<string, unknown>> | undefined }[] = [];
  return { ...silentLogger, warn: (message, fields) => warnings.push({ message, fields }), warnings };
}

const entry = (id: string, routeId = 'r'): StoredMessage => ({ message: createMessage(id, { id }), routeId, stepId: 's', storedAt: 0 });

describe('MemoryMessageStore', () => {
  it('keeps the last 1,000 messages by default, forgetting the oldest stored first', () => {
    const store = new MemoryMessageStore();
    for (let index = 0; index < 1_005; index += 1) store.add(entry(`m${index}`));
    expect(store.size).toBe(1_000);
    expect(store.get('m4')).toBeUndefined();
    expect(store.get('m5')?.message.body).toBe('m5');
  });

  it('holds one entry per message id: storing it again replaces it and makes it the newest', () => {
    const store = new MemoryMessageStore({ capacity: 2 });
    store.add(entry('a'));
    store.add(entry('b'));
    store.add({ ...entry('a'), stepId: 'later' });
    store.add(entry('c')); // b is now the oldest
    expect(store.get('b')).toBeUndefined();
    expect(store.get('a')?.stepId).toBe('later');
    expect(store.list().map((e) => e.message.id)).toEqual(['c', 'a']);
  });

  it('lists the newest first, of one route if asked, at most `limit` (default 100)', () => {
    const store = new MemoryMessageStore();
    for (let index = 0; index < 150; index += 1) store.add(entry(`m${index}`, index % 2 === 0 ? 'even' : 'odd'));
    expect(store.list()).toHaveLength(100);
    expect(store.list({ routeId: 'odd', limit: 3 }).map((e) => e.message.id)).toEqual(['m149', 'm147', 'm145']);
    expect(store.list({ routeId: 'none' })).toEqual([]);
    store.clear();
    expect(store.size).toBe(0);
  });
});

describe('storeMessage', () => {
  it('stores each passing message with its route, step and time, and passes it on at once', async () => {
    const scheduler = new VirtualTimeScheduler();
    scheduler.schedule(() => undefined, 500);
    scheduler.flush();
    const store = new MemoryMessageStore();
    const { output, send } = drive(new Harness({ scheduler }).build(storeMessage<number>({ store })));
    const inputs = sources([1, 2]);
    send(...inputs);
    expect(output.messages).toEqual(inputs.map((i) => i.message)); // synchronously
    expect(store.get('m0')).toEqual({ message: inputs[0]!.message, routeId: 'test-route', stepId: 'test-step', storedAt: 500 });
    expect(store.list({ routeId: 'test-route' }).map((e) => e.message.id)).toEqual(['m1', 'm0']);
  });

  it('never waits for an asynchronous store: the message passes on while the write is pending', async () => {
    const write = deferred();
    const added: StoredMessage[] = [];
    const slow: MessageStore = {
      add: (stored) => {
        added.push(stored);
        return write.promise;
      },
      get: () => undefined,
      list: () => [],
    };
    const { output, send } = drive(new Harness().build(storeMessage<number>({ store: slow })));
    send(source(1));
    expect(output.deliveries).toHaveLength(1);
    expect(added).toHaveLength(1);
    write.resolve();
  });

  it('does not fail the message when the store throws or rejects: logs, counts storeFailed', async () => {
    const log = recordingLogger();
    let calls = 0;
    const failing: MessageStore = {
      add: () => {
        calls += 1;
        if (calls === 1) throw new Error('store broken');
        return Promise.reject(new Error('store down'));
      },
      get: () => undefined,
      list: () => [],
    };
    const harness = new Harness({ log });
    const { output, send } = drive(harness.build(storeMessage<number>({ store: failing })));
    const inputs = sources([1, 2]);
    send(...inputs);
    await settle();
    expect(output.bodies).toEqual([1, 2]);
    expect(harness.failures).toEqual([]);
    expect(log.warnings.map((w) => w.fields?.['error'])).toEqual(['store broken', 'store down']);
    expect(log.warnings[0]!.fields).toMatchObject({ messageId: 'm0', step: 'test-step' });
    expect(harness.counts.get('storeFailed')).toBe(2);
    output.ackAll();
    expect(inputs.map((i) => i.outcome)).toEqual(['acked', 'acked']);
  });

  it('settles the source as the message settles downstream', () => {
    const { output, send } = drive(new Harness().build(storeMessage<number>({ store: new MemoryMessageStore() })));
    const [acked, nacked] = [source(1), source(2)];
    send(acked, nacked);
    expect([acked.outcome, nacked.outcome]).toEqual(['pending', 'pending']);
    output.deliveries[0]!.ack();
    output.deliveries[1]!.nack(new Error('later step failed'));
    expect([acked.outcome, nacked.outcome]).toEqual(['acked', 'nacked']);
  });

  it('on stop: holds nothing, completes with its source at once, even with a store write pending', () => {
    const never = new Promise<void>(() => undefined);
    const { input, output, send } = drive(new Harness().build(storeMessage<number>({ store: { add: () => never, get: () => undefined, list: () => [] } })));
    send(source(1));
    input.complete();
    expect(output.completed).toBe(true);
  });
});

describe('storeMessage through the runtime', () => {
  let app: Integration | undefined;
  let kit: TestKit | undefined;
  afterEach(async () => {
    kit?.close();
    await app?.stop({ drainTimeoutMs: 200 });
    app = undefined;
  });

  it('uses the MessageStore bound in the container, queryable by route', async () => {
    const store = new MemoryMessageStore({ capacity: 10 });
    app = createIntegration({
      logger: silentLogger,
      modules: [new ContainerModule(({ bind }) => void bind(MessageStore).toConstantValue(store))],
      routes: [from<string>('memory:hC-store-in', { id: 'hC-store' }).storeMessage({ id: 'debug' }).to('memory:hC-store-out')],
    });
    await app.start();
    kit = new TestKit(app);
    const out = kit.mock<string>('memory:hC-store-out');
    await kit.sendAll('memory:hC-store-in', ['a', 'b']);
    const sent = await out.expect(2);
    expect(store.list({ routeId: 'hC-store' }).map((e) => [e.message.body, e.stepId])).toEqual([
      ['b', 'debug'],
      ['a', 'debug'],
    ]);
    expect(store.get(sent[0]!.id)?.message.body).toBe('a');
  });

  it('falls back to the process’s shared ring when none is given nor bound', async () => {
    app = createIntegration({ logger: silentLogger, routes: [from<string>('memory:hC-store-shared', { id: 'hC-store-shared' }).storeMessage().to('memory:hC-store-shared-out')] });
    await app.start();
    kit = new TestKit(app);
    const out = kit.mock<string>('memory:hC-store-shared-out');
    await kit.sendAll('memory:hC-store-shared', ['x']);
    await out.expect(1);
    expect(sharedMemoryMessageStore().list({ routeId: 'hC-store-shared' }).map((e) => e.message.body)).toEqual(['x']);
  });

  it('a throwing store never fails the route’s messages', async () => {
    const broken: MessageStore = {
      add: () => {
        throw new Error('broken');
      },
      get: () => undefined,
      list: () => [],
    };
    app = createIntegration({ logger: silentLogger, routes: [from<string>('memory:hC-store-broken', { id: 'hC-store-broken' }).storeMessage({ store: broken }).to('memory:hC-store-broken-out')] });
    await app.start();
    kit = new TestKit(app);
    const out = kit.mock<string>('memory:hC-store-broken-out');
    await kit.sendAll('memory:hC-store-broken', ['x', 'y']);
    await out.expect(2);
    await expect.poll(() => app!.metrics()['hC-store-broken']?.completed).toBe(2);
    expect(app.metrics()['hC-store-broken']).toMatchObject({ failed: 0 });
  });
});
