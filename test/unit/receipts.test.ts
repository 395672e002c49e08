import { ContainerModule } from 'inversify';
import { Observable, type Subscriber } from 'rxjs';
import { afterEach, describe, expect, it } from 'vitest';
import { createMessage, deadLetter, discard, from, type Message, type RouteSource } from '../../facade/index.ts';
import { startTestIntegration, type TestIntegration } from '../../facade/testing/index.ts';
import { createDelivery, Transport, type Delivery, type Endpoint, type Logger } from '../../src/spi.ts';
import { receiptOutcome, type ReceiptBody } from '../../src/runtime/receipts.ts';

/** A source fed by hand that records settlements, and a destination whose publishes the test controls. */
class HandTransport implements Transport {
  readonly settled: string[] = [];
  readonly published: Message[] = [];
  /** Publishes wait for this; `fail` makes them reject. */
  hold: Promise<void> = Promise.resolve();
  fail = false;
  private readonly subscribers = new Map<string, Subscriber<Delivery>>();
  constructor(readonly scheme: string) {}
  async connect(): Promise<void> {}
  async close(): Promise<void> {}
  async publish(_endpoint: Endpoint, messages: readonly Message[]): Promise<void> {
    await this.hold;
    if (this.fail) throw new Error('receipt destination down');
    this.published.push(...messages);
  }
  consume(endpoint: Endpoint): Observable<Delivery> {
    return new Observable((subscriber) => {
      this.subscribers.set(endpoint.path, subscriber);
    });
  }
  push(message: Message, path = 'in'): void {
    this.subscribers.get(path)?.next(createDelivery(message, { ack: () => this.settled.push(`ack ${message.id}`), nack: () => this.settled.push(`nack ${message.id}`) }));
  }
}

const running: TestIntegration[] = [];
afterEach(async () => {
  for (const test of running.splice(0)) await test.stop();
});

const warnings: string[] = [];
const log: Logger = { info: () => {}, error: () => {}, warn: (message) => warnings.push(message) };

async function start(routes: RouteSource[]): Promise<TestIntegration & { source: HandTransport; sink: HandTransport }> {
  const source = new HandTransport('hand');
  const sink = new HandTransport('sink');
  const module = new ContainerModule(({ bind }) => {
    bind(Transport).toConstantValue(source);
    bind(Transport).toConstantValue(sink);
  });
  warnings.length = 0;
  const test = await startTestIntegration({ routes, modules: [module], logger: log });
  running.push(test);
  return Object.assign(test, { source, sink });
}

const flush = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 10));
const asking = (id: string, headers: Record<string, string> = {}): Message => createMessage(id, { id, headers: { receiptTo: 'memory:receipts', ...headers } });
const bodies = (messages: readonly Message[]): ReceiptBody[] => messages.map((message) => message.body as ReceiptBody);

describe('receipts', () => {
  it('a route that did not opt in ignores receiptTo', async () => {
    const { source, kit } = await start([from('hand:in').to('memory:out')]);
    const receipts = kit.mock('memory:receipts');
    const out = kit.mock('memory:out');
    source.push(asking('a'));
    await out.expect(1);
    await flush();
    expect(receipts.received).toEqual([]);
    expect(source.settled).toEqual(['ack a']);
  });

  it('sends `delivered` once every output is confirmed, correlated by the original id', async () => {
    const { source, kit } = await start([from('hand:in', { id: 'orders', receipts: { allow: ['memory:receipts'] } }).to('memory:out')]);
    const receipts = kit.mock('memory:receipts');
    source.push(asking('a'));
    const [receipt] = await receipts.expect(1);
    expect(receipt?.headers.correlationId).toBe('a');
    expect(receipt?.headers.receiptTo).toBeUndefined();
    expect(receipt?.body).toEqual({ messageId: 'a', outcome: 'delivered', routeId: 'orders', at: expect.any(Number) as number });
  });

  it('sends the receipt before the source is acked', async () => {
    const { source, sink } = await start([from('hand:in', { receipts: { allow: ['sink:'] } }).to('memory:out')]);
    let open = (): void => {};
    sink.hold = new Promise((resolve) => (open = resolve));
    source.push(createMessage('a', { id: 'a', headers: { receiptTo: 'sink:receipts' } }));
    await flush();
    expect(source.settled).toEqual([]);
    open();
    await flush();
    expect(bodies(sink.published).map((body) => body.outcome)).toEqual(['delivered']);
    expect(source.settled).toEqual(['ack a']);
  });

  it('says filtered, discarded and dead-lettered, with the reason', async () => {
    const { source, kit } = await start([
      from<string>('hand:in', { receipts: { allow: ['memory:'] } })
        .onError((failure) => (failure.message.id === 'd' ? discard('not wanted') : deadLetter('bad input')), { deadLetterUri: 'memory:dlq' })
        .filter((m) => m.id !== 'f')
        .process((m) => {
          if (m.id !== 'ok') throw new Error(`cannot handle ${m.id}`);
        })
        .to('memory:out'),
    ]);
    const receipts = kit.mock('memory:receipts');
    for (const id of ['f', 'd', 'x', 'ok']) source.push(asking(id));
    const got = bodies(await receipts.expect(4));
    const byId = new Map(got.map((body) => [body.messageId, body]));
    expect(byId.get('f')).toMatchObject({ outcome: 'filtered' });
    expect(byId.get('f')?.reason).toBeUndefined();
    expect(byId.get('d')).toMatchObject({ outcome: 'discarded', reason: 'not wanted: cannot handle d' });
    expect(byId.get('x')).toMatchObject({ outcome: 'dead-lettered', reason: 'bad input: cannot handle x' });
    expect(byId.get('ok')).toMatchObject({ outcome: 'delivered' });
  });

  it('receiptOn chooses the outcomes the sender is told of', async () => {
    const { source, kit } = await start([
      from<string>('hand:in', { receipts: { allow: ['memory:'] } })
        .filter((m) => m.id !== 'f')
        .to('memory:out'),
    ]);
    const receipts = kit.mock('memory:receipts');
    const out = kit.mock('memory:out');
    source.push(asking('f', { receiptOn: 'delivered, dead-lettered' }));
    source.push(asking('ok', { receiptOn: 'filtered' }));
    source.push(asking('ok2', { receiptOn: 'delivered' }));
    await out.expect(2);
    await receipts.expect(1);
    await flush();
    expect(bodies(receipts.received).map((body) => body.messageId)).toEqual(['ok2']);
    expect(source.settled.sort()).toEqual(['ack f', 'ack ok', 'ack ok2']);
  });

  it('ignores a receiptTo the route does not allow (prefixes or predicate), with one warning per URI', async () => {
    const { source, kit } = await start([
      from('hand:in', { id: 'prefixes', receipts: { allow: ['memory:receipts'] } }).to('memory:out'),
      from('hand:other', { id: 'predicate', receipts: { allow: (uri) => uri.endsWith('/ok') } }).to('memory:out'),
    ]);
    const out = kit.mock('memory:out');
    const elsewhere = kit.mock('memory:elsewhere');
    source.push(createMessage('a', { id: 'a', headers: { receiptTo: 'memory:elsewhere' } }));
    source.push(createMessage('b', { id: 'b', headers: { receiptTo: 'memory:elsewhere' } }));
    source.push(createMessage('c', { id: 'c', headers: { receiptTo: 'memory:elsewhere' } }), 'other');
    await out.expect(3);
    await flush();
    expect(elsewhere.received).toEqual([]);
    expect(source.settled.sort()).toEqual(['ack a', 'ack b', 'ack c']);
    // once per route and URI
    expect(warnings.filter((line) => line.includes('does not allow'))).toHaveLength(2);
  });

  it('a predicate allows where it says', async () => {
    const source = new HandTransport('hand');
    const sink = new HandTransport('sink');
    const module = new ContainerModule(({ bind }) => {
      bind(Transport).toConstantValue(source);
      bind(Transport).toConstantValue(sink);
    });
    const test = await startTestIntegration({ routes: [from('hand:in', { receipts: { allow: (uri) => uri.endsWith('/ok') } }).to('memory:out')], modules: [module] });
    running.push(test);
    source.push(createMessage('a', { id: 'a', headers: { receiptTo: 'sink:r/ok' } }));
    source.push(createMessage('b', { id: 'b', headers: { receiptTo: 'sink:r/no' } }));
    await flush();
    expect(bodies(sink.published).map((body) => body.messageId)).toEqual(['a']);
    expect(source.settled.sort()).toEqual(['ack a', 'ack b']);
  });

  it('a receipt that cannot be sent is logged; the message is acked all the same', async () => {
    const { source, sink } = await start([from('hand:in', { receipts: { allow: ['sink:', 'nowhere:'] } }).to('memory:out')]);
    sink.fail = true;
    source.push(createMessage('a', { id: 'a', headers: { receiptTo: 'sink:receipts' } }));
    source.push(createMessage('b', { id: 'b', headers: { receiptTo: 'nowhere:receipts' } }));
    await flush();
    expect(source.settled.sort()).toEqual(['ack a', 'ack b']);
    expect(warnings.filter((line) => line === 'receipt not sent')).toHaveLength(2);
  });

  it('a receipt its destination never confirms is given up after timeoutMs; the message is acked all the same', async () => {
    const { source, sink } = await start([from('hand:in', { receipts: { allow: ['sink:'], timeoutMs: 50 } }).to('memory:out')]);
    sink.hold = new Promise(() => {}); // a full or hung destination: the publish never settles
    source.push(createMessage('a', { id: 'a', headers: { receiptTo: 'sink:receipts' } }));
    await flush();
    expect(source.settled).toEqual([]); // waiting for the receipt, within its bound
    for (let turn = 0; turn < 50 && source.settled.length === 0; turn += 1) await flush();
    expect(source.settled).toEqual(['ack a']);
    expect(warnings).toContain('receipt not sent');
  });

  it('refuses a receiptTo with endpoint options or a placeholder, even under an allowed prefix (the sender may not declare, bound or trim it)', async () => {
    const { source, sink } = await start([from('hand:in', { receipts: { allow: ['sink:receipts'] } }).to('memory:out')]);
    source.push(createMessage('a', { id: 'a', headers: { receiptTo: 'sink:receipts.evil?capacity=1' } }));
    source.push(createMessage('b', { id: 'b', headers: { receiptTo: 'sink:receipts.{replyTo}' } }));
    source.push(createMessage('c', { id: 'c', headers: { receiptTo: 'sink:receipts.ok' } }));
    await flush();
    expect(source.settled.sort()).toEqual(['ack a', 'ack b', 'ack c']);
    expect(bodies(sink.published).map((body) => body.messageId)).toEqual(['c']);
    expect(warnings.filter((line) => line.startsWith('receipt requested to a destination the route does not allow'))).toHaveLength(2);
  });

  it('no receipt for a rejection under at-least-once (it comes back); `rejected` under at-most-once (it is gone)', async () => {
    const { source, kit } = await start([
      from('hand:in', { id: 'alo', receipts: { allow: ['memory:'] } })
        .process(() => Promise.reject(new Error('boom')))
        .to('memory:out'),
      from('hand:amo', { id: 'amo', delivery: 'at-most-once', receipts: { allow: ['memory:'] } })
        .process(() => Promise.reject(new Error('boom')))
        .to('memory:out'),
    ]);
    const receipts = kit.mock('memory:receipts');
    source.push(asking('a'));
    source.push(asking('b'), 'amo');
    const [receipt] = await receipts.expect(1);
    await flush();
    expect(source.settled.sort()).toEqual(['ack b', 'nack a']);
    expect(bodies(receipts.received)).toHaveLength(1);
    expect(receipt?.body).toMatchObject({ messageId: 'b', outcome: 'rejected', routeId: 'amo', reason: expect.stringContaining('boom') as string });
  });
});

describe('receiptOutcome', () => {
  it('maps execution outcomes; a rejection is final only at-most-once', () => {
    expect(receiptOutcome('completed', 'at-least-once')).toBe('delivered');
    expect(receiptOutcome('dead-lettered', 'effectively-once')).toBe('dead-lettered');
    expect(receiptOutcome('rejected', 'at-least-once')).toBeUndefined();
    expect(receiptOutcome('rejected', 'at-most-once')).toBe('rejected');
  });
});
