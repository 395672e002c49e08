import { describe, expect, it } from 'vitest';
import { createDelivery, joinDeliveries, type Delivery } from '../../src/spi.ts';
import { createMessage } from '../../facade/index.ts';

function recorded<T>(body: T): { delivery: Delivery<T>; acks: number; nacks: Error[] } {
  const record = { acks: 0, nacks: [] as Error[] };
  const delivery = createDelivery(createMessage(body), { ack: () => (record.acks += 1), nack: (e) => record.nacks.push(e) });
  return Object.assign(record, { delivery });
}

describe('delivery settlement', () => {
  it('settles exactly once: the first ack or nack wins', () => {
    const r = recorded(1);
    r.delivery.ack();
    r.delivery.ack();
    r.delivery.nack(new Error('late'));
    expect(r.acks).toBe(1);
    expect(r.nacks).toEqual([]);
    expect(r.delivery.settled).toBe(true);
  });

  it('with() passes the same obligation on: settling the new one settles the source', () => {
    const r = recorded(1);
    const next = r.delivery.with(createMessage(2));
    expect(r.delivery.settled).toBe(false);
    next.ack();
    expect(r.acks).toBe(1);
    expect(r.delivery.settled).toBe(true);
    r.delivery.ack();
    expect(r.acks).toBe(1);
  });

  it('a forked source is acked once, only after every part is acked', () => {
    const r = recorded('order');
    const parts = r.delivery.fork([createMessage('a'), createMessage('b'), createMessage('c')]);
    parts[0]?.ack();
    parts[2]?.ack();
    parts[2]?.ack();
    expect(r.acks).toBe(0);
    parts[1]?.ack();
    expect(r.acks).toBe(1);
  });

  it('a forked source is rejected with the first part failure, after all parts settle', () => {
    const r = recorded('order');
    const [a, b, c] = r.delivery.fork([createMessage('a'), createMessage('b'), createMessage('c')]);
    b?.nack(new Error('first'));
    c?.nack(new Error('second'));
    expect(r.nacks).toEqual([]);
    a?.ack();
    expect(r.nacks.map((e) => e.message)).toEqual(['first']);
    expect(r.acks).toBe(0);
  });

  it('forking into nothing acks the source at once', () => {
    const r = recorded('empty');
    expect(r.delivery.fork([])).toEqual([]);
    expect(r.acks).toBe(1);
  });

  it('a joined delivery settles every input together', () => {
    const inputs = [recorded(1), recorded(2)];
    const joined = joinDeliveries(
      inputs.map((i) => i.delivery),
      createMessage(3),
    );
    expect(inputs.every((i) => i.acks === 0)).toBe(true);
    joined.ack();
    expect(inputs.map((i) => i.acks)).toEqual([1, 1]);
    const failing = [recorded(1), recorded(2)];
    joinDeliveries(
      failing.map((i) => i.delivery),
      createMessage(3),
    ).nack(new Error('x'));
    expect(failing.map((i) => i.nacks.length)).toEqual([1, 1]);
  });
});
