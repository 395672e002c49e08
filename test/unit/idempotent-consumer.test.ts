import { describe, expect, it } from 'vitest';
import { createMessage } from '../../src/core/index.ts';
import { DeadLetterHeaders } from '../../src/core/dead-letter.ts';
import { from } from '../../facade/route-builder.ts';
import { startTestIntegration } from '../../facade/testing/index.ts';
import { idempotentConsumer } from '../../patterns/idempotent-consumer.ts';
import { MemoryIdempotencyStore } from '../../src/stores/idempotency-store.ts';
import { idempotencyStoreCases } from './postgres/idempotency-store.cases.ts';

idempotencyStoreCases('MemoryIdempotencyStore', (leaseMs) => new MemoryIdempotencyStore({ leaseMs }));

describe('MemoryIdempotencyStore', () => {
  it('forgets the oldest keys beyond maxEntries, and keys past their retention', async () => {
    let now = 0;
    const store = new MemoryIdempotencyStore({ maxEntries: 2, retentionMs: 1_000, now: () => now });
    for (const key of ['a', 'b', 'c']) await store.confirm(key);
    expect(store.size).toBe(2);
    expect(await store.claim('a')).toBe('claimed');
    expect(await store.claim('c')).toBe('duplicate');
    now = 1_001;
    expect(await store.claim('c')).toBe('claimed');
  });
});

describe('idempotentConsumer', () => {
  it('lets each message id through once; copies are acked and counted as filtered', async () => {
    const store = new MemoryIdempotencyStore();
    const { app, kit, stop } = await startTestIntegration({
      routes: [from('memory:in', { id: 'dedupe' }).step('idempotent', idempotentConsumer({ store })).to('memory:out')],
    });
    try {
      const out = kit.mock('memory:out');
      const first = createMessage({ n: 1 });
      const second = createMessage({ n: 2 });
      await kit.sendMessages('memory:in', [first, first, second, first]);
      await out.expect(2);
      await expect.poll(() => app.metrics().dedupe?.filtered).toBe(2);
      expect(out.received.map((message) => message.id)).toEqual([first.id, second.id]);
      await expect.poll(() => store.claim(first.id)).toBe('duplicate');
    } finally {
      await stop();
    }
  });

  it('records a key only once the message settled with ack: a failure downstream releases it and the redelivery runs again', async () => {
    const store = new MemoryIdempotencyStore();
    let calls = 0;
    const { kit, stop } = await startTestIntegration({
      routes: [
        from<{ n: number }>('memory:in', { id: 'flaky' })
          .step('idempotent', idempotentConsumer({ store }))
          .process(() => {
            calls += 1;
            if (calls === 1) throw new Error('downstream failed');
          })
          .to('memory:out'),
      ],
    });
    try {
      const out = kit.mock('memory:out');
      const message = createMessage({ n: 1 });
      await kit.sendMessages('memory:in', [message]);
      await out.expect(1);
      expect(calls).toBe(2);
      await expect.poll(() => store.claim(message.id)).toBe('duplicate');
    } finally {
      await stop();
    }
  });

  it('a message another consumer is processing right now fails with DUPLICATE_IN_PROGRESS after inProgressDelayMs, and is not dropped', async () => {
    const store = new MemoryIdempotencyStore();
    const message = createMessage({ n: 1 });
    expect(await store.claim(message.id)).toBe('claimed'); // held elsewhere
    const { kit, stop } = await startTestIntegration({
      routes: [from('memory:in', { id: 'busy' }).step('idempotent', idempotentConsumer({ store, inProgressDelayMs: 10 })).to('memory:out').deadLetterChannel('memory:dlq')],
    });
    try {
      const dlq = kit.mock('memory:dlq');
      await kit.sendMessages('memory:in', [message]);
      const [dead] = await dlq.expect(1);
      expect(dead?.headers[DeadLetterHeaders.code]).toBe('DUPLICATE_IN_PROGRESS');
      expect(dead?.id).toBe(message.id);
    } finally {
      await stop();
    }
  });

  it('takes the key from the message when told to', async () => {
    const store = new MemoryIdempotencyStore();
    const { kit, stop } = await startTestIntegration({
      routes: [from<{ orderId: string }>('memory:in').step('idempotent', idempotentConsumer<{ orderId: string }>({ store, key: (m) => `order:${m.body.orderId}` })).to('memory:out')],
    });
    try {
      const out = kit.mock('memory:out');
      await kit.sendAll('memory:in', [{ orderId: 'a' }, { orderId: 'a' }, { orderId: 'b' }]);
      await out.expect(2);
      expect(out.bodies()).toEqual([{ orderId: 'a' }, { orderId: 'b' }]);
      await expect.poll(() => store.claim('order:a')).toBe('duplicate');
    } finally {
      await stop();
    }
  });
});
