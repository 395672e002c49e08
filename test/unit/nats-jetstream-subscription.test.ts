import type { Consumer, JsMsg } from '@nats-io/jetstream';
import type { Msg, NatsConnection } from '@nats-io/transport-node';
import { Subscriber } from 'rxjs';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { CoreSubscription } from '../../adapters/nats/core-subscription.ts';
import { JetStreamSubscription, type JetStreamSubscriptionSettings } from '../../adapters/nats/jetstream-subscription.ts';
import { InterchangeError, silentLogger, type Delivery, type Message } from '../../src/core/index.ts';

/** A JetStream message as the subscription sees it, recording what it was told (ack, nak with delay, term). */
class FakeMsg {
  readonly calls: string[] = [];
  readonly headers = undefined;
  readonly subject = 'orders.created';
  constructor(
    readonly seq: number,
    readonly deliveryCount: number,
    readonly data: Uint8Array = Buffer.from(JSON.stringify({ seq })),
  ) {}
  get info(): { deliveryCount: number } {
    return { deliveryCount: this.deliveryCount };
  }
  ack(): void {
    this.calls.push('ack');
  }
  nak(delay?: number): void {
    this.calls.push(delay === undefined ? 'nak' : `nak ${delay}`);
  }
  term(): void {
    this.calls.push('term');
  }
  working(): void {
    this.calls.push('working');
  }
}

/** A pull consumer whose messages the test pushes; `closed` counts `close` calls; `ackWaitMs` is its (cached) `ack_wait`. */
function fakeConsumer(ackWaitMs = 30_000): { consumer: Consumer; push: (msg: FakeMsg) => void; closed: () => number } {
  let callback: ((msg: JsMsg) => void) | undefined;
  let closed = 0;
  const consumer = {
    info: () => Promise.resolve({ config: { ack_wait: ackWaitMs * 1_000_000 } }),
    consume: (options: { callback: (msg: JsMsg) => void }) => {
      callback = options.callback;
      return Promise.resolve({
        close: () => {
          closed += 1;
          return Promise.resolve();
        },
        status: async function* () {},
      });
    },
  } as unknown as Consumer;
  return { consumer, push: (msg) => callback?.(msg as unknown as JsMsg), closed: () => closed };
}

function subscription(overrides: Partial<JetStreamSubscriptionSettings> = {}): { sub: JetStreamSubscription; deliveries: Delivery[]; deadLetters: Message[] } {
  const deliveries: Delivery[] = [];
  const deadLetters: Message[] = [];
  const settings: JetStreamSubscriptionSettings = {
    stream: 'ORDERS',
    durable: 'billing',
    prefetch: 10,
    maxDeliveries: 3,
    // random 0.5 → no jitter: exactly initialMs · 2^(attempt-1), capped at maxMs
    redelivery: { initialMs: 100, maxMs: 300, random: () => 0.5 },
    maxMessageBytes: 1_000,
    ackWaitMs: 30_000,
    inbound: { headers: 'standard' },
    deadLetter: (message) => {
      deadLetters.push(message);
      return Promise.resolve();
    },
    log: silentLogger,
    ...overrides,
  };
  const sub = new JetStreamSubscription(settings, new Subscriber<Delivery>({
    next: (delivery: Delivery) => {
      deliveries.push(delivery);
    },
    error: () => undefined,
    complete: () => undefined,
  }));
  return { sub, deliveries, deadLetters };
}

const flush = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('JetStreamSubscription', () => {
  it("a nack below maxDeliveries naks with the redelivery backoff of its attempt (the server's delivery count)", async () => {
    const { sub, deliveries } = subscription();
    const { consumer, push } = fakeConsumer();
    await sub.start(consumer);
    const msgs = [new FakeMsg(1, 1), new FakeMsg(2, 2)];
    for (const msg of msgs) push(msg);
    expect(deliveries.map((delivery) => delivery.message.headers.attempt ?? 1)).toEqual([1, 2]);
    for (const delivery of deliveries) delivery.nack(new Error('transient'));
    expect(msgs.map((msg) => msg.calls)).toEqual([['nak 100'], ['nak 200']]);
  });

  it('at maxDeliveries the message is dead-lettered, then terminated; a failed dead letter naks it instead', async () => {
    const { sub, deliveries, deadLetters } = subscription();
    const { consumer, push } = fakeConsumer();
    await sub.start(consumer);
    const last = new FakeMsg(1, 3);
    push(last);
    deliveries[0]?.nack(new Error('still failing'));
    await flush();
    expect(deadLetters.map((message) => message.body)).toEqual([{ seq: 1 }]);
    expect(last.calls).toEqual(['term']);

    const failing = subscription({ deadLetter: () => Promise.reject(new Error('dead-letter stream down')) });
    const second = fakeConsumer();
    await failing.sub.start(second.consumer);
    const kept = new FakeMsg(2, 3);
    second.push(kept);
    failing.deliveries[0]?.nack(new Error('still failing'));
    await flush();
    expect(kept.calls).toEqual(['nak 300']); // kept in the stream, redelivered later
  });

  it('a permanent failure is dead-lettered at the first nack', async () => {
    const { sub, deliveries, deadLetters } = subscription();
    const { consumer, push } = fakeConsumer();
    await sub.start(consumer);
    const msg = new FakeMsg(1, 1);
    push(msg);
    deliveries[0]?.nack(new InterchangeError('INVALID', 'bad', { permanent: true }));
    await flush();
    expect(deadLetters).toHaveLength(1);
    expect(msg.calls).toEqual(['term']);
  });

  it('close hands unsettled deliveries back (nak, no delay) once the pull has ended; settling them later does nothing', async () => {
    const { sub, deliveries } = subscription();
    const { consumer, push, closed } = fakeConsumer();
    await sub.start(consumer);
    const [acked, held] = [new FakeMsg(1, 1), new FakeMsg(2, 1)];
    push(acked);
    push(held);
    deliveries[0]?.ack();
    await sub.close();
    expect(closed()).toBe(1);
    deliveries[1]?.ack();
    expect(acked.calls).toEqual(['ack']);
    expect(held.calls).toEqual(['nak']);
  });

  it('after the intake stopped, a message still arriving is given back at once, never emitted; emitted ones can still be acked', async () => {
    const { sub, deliveries } = subscription();
    const { consumer, push } = fakeConsumer();
    await sub.start(consumer);
    const first = new FakeMsg(1, 1);
    push(first);
    await sub.stopIntake();
    const late = new FakeMsg(2, 1);
    push(late);
    expect(deliveries).toHaveLength(1);
    expect(late.calls).toEqual(['nak']);
    deliveries[0]?.ack();
    expect(first.calls).toEqual(['ack']);
  });

  it('a message over maxMessageBytes is emitted with an intake error and an empty body; its id derives from stream and sequence', async () => {
    const { sub, deliveries } = subscription({ maxMessageBytes: 10 });
    const { consumer, push } = fakeConsumer();
    await sub.start(consumer);
    push(new FakeMsg(7, 1, Buffer.from('x'.repeat(50))));
    push(new FakeMsg(7, 2, Buffer.from('x'.repeat(50))));
    expect(deliveries[0]?.intakeError?.name).toBe('NatsMessageTooLargeError');
    expect(deliveries[0]?.message.body).toBe('');
    expect(deliveries[1]?.message.id).toBe(deliveries[0]?.message.id);
    expect(deliveries[0]?.message.headers).toMatchObject({ natsSubject: 'orders.created', natsSequence: 7 });
  });

  describe('ack_wait heartbeat', () => {
    afterEach(() => {
      vi.useRealTimers();
    });

    it('every ackWait/3 a delivery held over ackWait/3 gets working() (its ack_wait restarts); a settled one no more; none after close', async () => {
      vi.useFakeTimers();
      const { sub, deliveries } = subscription({ ackWaitMs: 30_000 });
      const { consumer, push } = fakeConsumer(30_000);
      await sub.start(consumer);
      const [held, settled] = [new FakeMsg(1, 1), new FakeMsg(2, 1)];
      push(held);
      push(settled);
      await vi.advanceTimersByTimeAsync(10_000);
      expect(held.calls).toEqual([]); // held for exactly ackWait/3, not over it: no heartbeat yet
      await vi.advanceTimersByTimeAsync(10_000);
      expect(held.calls).toEqual(['working']);
      expect(settled.calls).toEqual(['working']);
      deliveries[1]?.ack();
      await vi.advanceTimersByTimeAsync(20_000);
      expect(held.calls).toEqual(['working', 'working', 'working']);
      expect(settled.calls).toEqual(['working', 'ack']);
      const late = new FakeMsg(3, 1);
      push(late);
      await vi.advanceTimersByTimeAsync(10_000);
      expect(late.calls).toEqual([]); // received 10 s ago
      await sub.close();
      await vi.advanceTimersByTimeAsync(100_000);
      expect(held.calls).toEqual(['working', 'working', 'working', 'working', 'nak']);
      expect(late.calls).toEqual(['nak']);
      expect(vi.getTimerCount()).toBe(0);
    });

    it("the heartbeat follows the consumer's own ack_wait (an existing consumer may differ from ackWaitMs); a nacked delivery gets none", async () => {
      vi.useFakeTimers();
      const { sub, deliveries } = subscription({ ackWaitMs: 30_000 });
      const { consumer, push } = fakeConsumer(3_000);
      await sub.start(consumer);
      const [held, nacked] = [new FakeMsg(1, 1), new FakeMsg(2, 1)];
      push(held);
      push(nacked);
      deliveries[1]?.nack(new Error('transient'));
      await vi.advanceTimersByTimeAsync(2_000); // ticks every 1 s: at 1 s held exactly 1 s (none), at 2 s over it
      expect(held.calls).toEqual(['working']);
      expect(nacked.calls).toEqual(['nak 100']);
      await sub.close();
    });
  });
});

/** The at-most-once core subscription shares the NATS delivery window logic; its settlement is tested here too. */
describe('CoreSubscription', () => {
  function core(prefetch: number): { sub: CoreSubscription; deliveries: Delivery[]; push: (n: number) => void } {
    const deliveries: Delivery[] = [];
    let callback: ((error: Error | null, msg: Msg) => void) | undefined;
    const nc = {
      subscribe: (_subject: string, options: { callback: (error: Error | null, msg: Msg) => void }) => {
        callback = options.callback;
        return { unsubscribe: () => undefined };
      },
    } as unknown as NatsConnection;
    const sub = new CoreSubscription({ subject: 'readings', prefetch, maxWaiting: 100, maxMessageBytes: 1_000, inbound: { headers: 'standard' }, log: silentLogger }, new Subscriber<Delivery>({ next: (delivery: Delivery) => void deliveries.push(delivery), error: () => undefined, complete: () => undefined }));
    sub.start(nc);
    const push = (n: number): void => callback?.(null, { data: Buffer.from(JSON.stringify({ n })), headers: undefined, subject: 'readings', reply: '' } as unknown as Msg);
    return { sub, deliveries, push };
  }

  it('a settlement emits the next waiting message on a fresh microtask, never inside ack/nack; its slot is kept, so order holds', async () => {
    const { deliveries, push } = core(1);
    for (const n of [0, 1, 2]) push(n);
    expect(deliveries).toHaveLength(1);
    deliveries[0]?.ack();
    expect(deliveries).toHaveLength(1); // not re-entrant: the acking code finishes first
    push(3); // arriving before that microtask: queued behind the waiting ones, not emitted into the freed slot
    await Promise.resolve();
    expect(deliveries).toHaveLength(2);
    deliveries[1]?.nack(new Error('gone: at-most-once'));
    await Promise.resolve();
    deliveries[2]?.ack();
    await Promise.resolve();
    expect(deliveries.map((delivery) => (delivery.message.body as { n: number }).n)).toEqual([0, 1, 2, 3]);
  });

  it('a message whose slot freed just before the intake stopped is dropped, not emitted', async () => {
    const { sub, deliveries, push } = core(1);
    push(0);
    push(1);
    deliveries[0]?.ack();
    sub.stopIntake();
    await Promise.resolve();
    expect(deliveries).toHaveLength(1);
  });
});
