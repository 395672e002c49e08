import { describe, expect, it } from 'vitest';
import { aggregate } from '../../patterns/aggregate.ts';
import { DeadLetterHeaders, deriveMessage, from, RouteDefinitionError } from '../../facade/index.ts';
import { startTestIntegration } from '../../facade/testing/index.ts';
import { drive, Harness, Source, source } from './harness.ts';

interface Order {
  readonly orderId: string;
  readonly lines: readonly string[];
}

/** Part `index` of a split of `parent` into `size` parts, as `split` makes it. */
const part = (parent: Source<unknown>, index: number, size: number): Source<string> =>
  new Source(deriveMessage(parent.message, `${parent.message.id}:${index}`, { key: String(index), headers: { splitIndex: index, splitSize: size } }));

const collect = (lines: string[] = [], m: { body: string }): string[] => [...lines, m.body];

describe("aggregate({ sequence: true }): a split's parts released once all have arrived", () => {
  it('completes each split when its splitSize parts are in, correlated by the split message, whatever the interleaving', () => {
    const [a, b] = [source('a', { id: 'a' }), source('b', { id: 'b' })];
    const { output, send } = drive(new Harness().build(aggregate<string, string[]>({ sequence: true, strategy: collect })));
    send(part(a, 0, 2), part(b, 0, 3), part(b, 1, 3));
    expect(output.bodies).toEqual([]);
    send(part(a, 1, 2), part(b, 2, 3));
    expect(output.bodies).toEqual([
      ['a:0', 'a:1'],
      ['b:0', 'b:1', 'b:2'],
    ]);
    expect(output.messages.map((m) => [m.headers.aggregationKey, m.headers.aggregationCompletedBy])).toEqual([
      ['a', 'sequence'],
      ['b', 'sequence'],
    ]);
  });

  it('after a split in a route, emits one aggregate per split message and acks its source', async () => {
    const { app, kit, stop } = await startTestIntegration({
      routes: [
        from<Order>('memory:orders', { id: 'orders' })
          .split((m) => m.body.lines.map((line) => ({ orderId: m.body.orderId, line })))
          .transform((m) => m.body.line.toUpperCase())
          .aggregate({ sequence: true, strategy: collect })
          .to('memory:picked'),
      ],
    });
    try {
      const picked = kit.mock<string[]>('memory:picked');
      await kit.sendAll('memory:orders', [
        { orderId: 'o1', lines: ['apple', 'pear', 'fig'] },
        { orderId: 'o2', lines: ['kiwi'] },
      ]);
      await picked.expect(2);
      expect(picked.bodies()).toEqual([['APPLE', 'PEAR', 'FIG'], ['KIWI']]);
      await expect.poll(() => app.metrics().orders).toMatchObject({ received: 2, completed: 2, inFlight: 0 });
    } finally {
      await stop();
    }
  });

  it('fails a message that is not a split part with NOT_A_SPLIT_PART', async () => {
    const { kit, stop } = await startTestIntegration({
      routes: [from<string>('memory:in').deadLetterChannel('memory:dlq').aggregate({ sequence: true, strategy: collect }).to('memory:out')],
    });
    try {
      const dlq = kit.mock('memory:dlq');
      await kit.send('memory:in', 'loose');
      const [dead] = await dlq.expect(1);
      expect(dead?.headers[DeadLetterHeaders.code]).toBe('NOT_A_SPLIT_PART');
    } finally {
      await stop();
    }
  });

  it('needs correlate unless sequence is set', () => {
    expect(() => aggregate<string, string[]>({ strategy: collect, size: 2 })).toThrow(RouteDefinitionError);
  });
});
