import fc from 'fast-check';
import { map } from 'rxjs';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { MemoryTransport } from '../../src/channel/index.ts';
import { split } from '../../patterns/split.ts';
import { createIntegration, DeadLetterHeaders, from, silentLogger, type Integration } from '../../facade/index.ts';
import type { Delivery } from '../../src/spi.ts';
import { TestKit } from '../../facade/testing/index.ts';
import { deferred, drive, Harness, settle, source, sources } from './harness.ts';

describe('split', () => {
  it('emits one part per item with deterministic ids, split headers, causation = parent, correlation kept', () => {
    const harness = new Harness();
    const { output, send } = drive(harness.build(split<{ lines: string[] }, string>((m) => m.body.lines)));
    const order = source({ lines: ['a', 'b', 'c'] }, { id: 'order-1', headers: { correlationId: 'conv-9', schema: 'order@1', region: 'eu' } });
    send(order);
    expect(output.bodies).toEqual(['a', 'b', 'c']);
    expect(output.messages.map((m) => m.id)).toEqual(['order-1/0', 'order-1/1', 'order-1/2']);
    output.messages.forEach((part, index) => {
      expect(part.headers).toMatchObject({ splitIndex: index, splitSize: 3, causationId: 'order-1', correlationId: 'conv-9', region: 'eu' });
      expect(part.headers.schema).toBeUndefined();
    });
  });

  it('uses the parent id as correlation when the parent has none', () => {
    const harness = new Harness();
    const { output, send } = drive(harness.build(split<number[], number>((m) => m.body)));
    send(source([1, 2], { id: 'p' }));
    expect(output.messages.map((m) => m.headers.correlationId)).toEqual(['p', 'p']);
  });

  it('derives the same part ids when the same parent is redelivered', () => {
    const harness = new Harness();
    const { output, send } = drive(harness.build(split<number[], number>((m) => m.body)));
    send(source([1, 2], { id: 'p' }), source([1, 2], { id: 'p' }));
    expect(output.messages.map((m) => m.id)).toEqual(['p/0', 'p/1', 'p/0', 'p/1']);
  });

  it('acks the source once, after every part is acked', () => {
    const harness = new Harness();
    const { output, send } = drive(harness.build(split<number[], number>((m) => m.body)));
    const parent = source([1, 2, 3]);
    send(parent);
    output.deliveries[2]!.ack();
    output.deliveries[0]!.ack();
    output.deliveries[0]!.ack();
    expect(parent.settlements).toBe(0);
    output.deliveries[1]!.ack();
    expect(parent.acks).toBe(1);
    expect(parent.nacks).toBe(0);
  });

  it('rejects the source once every part settled if any part was rejected', () => {
    const harness = new Harness();
    const { output, send } = drive(harness.build(split<number[], number>((m) => m.body)));
    const parent = source([1, 2, 3]);
    send(parent);
    const reason = new Error('part 1 refused');
    output.deliveries[1]!.nack(reason);
    output.deliveries[0]!.ack();
    expect(parent.settlements).toBe(0);
    output.deliveries[2]!.ack();
    expect(parent.nacks).toBe(1);
    expect(parent.acks).toBe(0);
    expect(parent.reasons).toEqual([reason]);
  });

  it('acks a source with no items at once and emits nothing', () => {
    const harness = new Harness();
    const { output, send } = drive(harness.build(split<number[], number>((m) => m.body)));
    const empty = source<number[]>([]);
    send(empty);
    expect(output.deliveries).toEqual([]);
    expect(empty.acks).toBe(1);
    expect(empty.nacks).toBe(0);
  });

  it('accepts any iterable (a generator)', () => {
    const harness = new Harness();
    const { output, send } = drive(
      harness.build(
        split<number, number>(function* (m) {
          for (let i = 0; i < m.body; i += 1) yield i * i;
        }),
      ),
    );
    send(source(4));
    expect(output.bodies).toEqual([0, 1, 4, 9]);
    expect(output.messages.map((m) => m.headers.splitSize)).toEqual([4, 4, 4, 4]);
  });

  it('fails only the message whose item function throws; no part of it is emitted', () => {
    const harness = new Harness();
    const boom = new Error('not a list');
    const { output, send } = drive(
      harness.build(
        split<unknown, unknown>((m) => {
          if (!Array.isArray(m.body)) throw boom;
          return m.body as unknown[];
        }),
      ),
    );
    const [good, bad, later] = sources<unknown>([[1], 'oops', [2, 3]]);
    send(good!, bad!, later!);
    expect(output.bodies).toEqual([1, 2, 3]);
    expect(harness.failures.map((f) => f.error)).toEqual([boom]);
    expect(bad!.nacks).toBe(1);
  });

  it('property: every item comes out exactly once as a part of its own parent; every source settles exactly once', () => {
    fc.assert(
      fc.property(
        fc.array(fc.array(fc.record({ value: fc.integer(), accept: fc.boolean() }), { maxLength: 8 }), { maxLength: 8 }),
        fc.infiniteStream(fc.nat()),
        (messages, order) => {
          const harness = new Harness();
          const { input, output, send } = drive(harness.build(split<{ value: number; accept: boolean }[], { value: number; accept: boolean }>((m) => m.body)));
          const parents = messages.map((items, index) => source(items, { id: `p${index}` }));
          send(...parents);
          input.complete();

          // Nothing lost, nothing duplicated: the parts are exactly the items, each under its parent.
          const expected = messages.flatMap((items, p) => items.map((item, i) => ({ id: `p${p}/${i}`, body: item })));
          expect(output.messages.map((m) => ({ id: m.id, body: m.body }))).toEqual(expected);
          expect(new Set(output.messages.map((m) => m.id)).size).toBe(expected.length);
          expect(output.completed).toBe(true);

          // Settle the parts in an arbitrary order, each as its item says.
          const remaining = [...output.deliveries];
          const iterator = order[Symbol.iterator]();
          while (remaining.length > 0) {
            const [part] = remaining.splice((iterator.next().value as number) % remaining.length, 1);
            if (part!.message.body.accept) part!.ack();
            else part!.nack(new Error(`refused ${part!.message.id}`));
          }
          parents.forEach((parent, index) => {
            const items = messages[index]!;
            expect(parent.settlements).toBe(1);
            expect(parent.acks).toBe(items.every((item) => item.accept) ? 1 : 0);
          });
        },
      ),
      { numRuns: 200 },
    );
  });
});

describe('split through the runtime', () => {
  let app: Integration | undefined;
  let kit: TestKit | undefined;
  afterEach(async () => {
    kit?.close();
    await app?.stop({ drainTimeoutMs: 100 });
    vi.restoreAllMocks();
  });

  it('dead-letters the one failing part and acks the source exactly once, after all three parts settled', async () => {
    app = createIntegration({
      logger: silentLogger,
      routes: [
        from<{ items: string[] }>('memory:in')
          .deadLetterChannel('memory:dlq')
          .split((m) => m.body.items)
          .transform((m) => {
            if (m.body === 'bad') throw new Error(`cannot handle ${m.body}`);
            return m.body.toUpperCase();
          })
          .to('memory:out'),
      ],
    });
    const memory = app.transport<MemoryTransport>('memory');

    // Count every ack/nack the route gives the transport for the source message.
    const sourceSettlements = { acks: 0, nacks: 0 };
    const consume = memory.consume.bind(memory);
    vi.spyOn(memory, 'consume').mockImplementation((endpoint, options) =>
      consume(endpoint, options).pipe(
        map((delivery): Delivery =>
          endpoint.path !== 'in'
            ? delivery
            : {
                message: delivery.message,
                origin: delivery.origin,
                get settled() {
                  return delivery.settled;
                },
                ack: () => {
                  sourceSettlements.acks += 1;
                  delivery.ack();
                },
                nack: (reason) => {
                  sourceSettlements.nacks += 1;
                  delivery.nack(reason);
                },
                with: (message) => delivery.with(message),
                fork: (messages) => delivery.fork(messages),
              },
        ),
      ),
    );
    // Hold the dead-letter send until the test releases it.
    const dlqConfirm = deferred();
    const publish = memory.publish.bind(memory);
    vi.spyOn(memory, 'publish').mockImplementation(async (endpoint, messages) => {
      if (endpoint.path === 'dlq') await dlqConfirm.promise;
      return publish(endpoint, messages);
    });

    await app.start();
    kit = new TestKit(app);
    const out = kit.mock<string>('memory:out');
    const dlq = kit.mock<string>('memory:dlq');
    await kit.send('memory:in', { items: ['a', 'bad', 'c'] }, { correlationId: 'batch-7' });

    await out.expect(2);
    expect(out.bodies()).toEqual(['A', 'C']);
    await settle();
    // Two parts confirmed, the third still being dead-lettered: the source is not settled yet.
    expect(sourceSettlements).toEqual({ acks: 0, nacks: 0 });
    expect(app.metrics()['memory:in']).toMatchObject({ received: 1, inFlight: 1 });

    dlqConfirm.resolve();
    const [dead] = await dlq.expect(1);
    await settle();
    expect(sourceSettlements).toEqual({ acks: 1, nacks: 0 });
    expect(dead!.body).toBe('bad');
    expect(dead!.id).toMatch(/\/1$/);
    expect(dead!.headers).toMatchObject({
      [DeadLetterHeaders.code]: 'STEP_FAILED',
      [DeadLetterHeaders.error]: 'cannot handle bad',
      [DeadLetterHeaders.step]: 'transform-1',
      [DeadLetterHeaders.route]: 'memory:in',
      [DeadLetterHeaders.attempts]: 1,
      correlationId: 'batch-7',
      splitIndex: 1,
      splitSize: 3,
    });
    expect(dead!.headers[DeadLetterHeaders.declaredAt]).toMatch(/^test\/patterns\/split\.test\.ts:\d+$/);
    expect(app.metrics()['memory:in']).toMatchObject({ received: 1, completed: 2, deadLettered: 1, failed: 1, rejected: 0, inFlight: 0 });
    expect(memory.depth('in')).toBe(0);
    expect(memory.depth('in.dead')).toBe(0);
  });
});
