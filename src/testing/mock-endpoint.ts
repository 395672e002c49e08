import type { Subscription } from 'rxjs';
import { parseEndpoint, TimeoutError, type Message, type Transport } from '../core/index.ts';

export interface MockEndpointOptions {
  /** What the mock does with each delivery (default `ack`); `hold` leaves it unsettled. */
  readonly settle?: 'ack' | 'nack' | 'hold';
  readonly prefetch?: number;
}

/**
 * Collects what arrives at an endpoint (Camel's MockEndpoint). Starts consuming when created.
 * @example const out = kit.mock<Order>('memory:out'); await out.expect(3); expect(out.bodies()).toEqual([...])
 */
export class MockEndpoint<T = unknown> {
  readonly received: Message<T>[] = [];
  private readonly subscription: Subscription;
  private readonly waiters = new Set<() => void>();

  constructor(
    readonly uri: string,
    transport: Transport,
    { settle = 'ack', prefetch = 1000 }: MockEndpointOptions = {},
  ) {
    this.subscription = transport.consume(parseEndpoint(uri), { prefetch }).subscribe((delivery) => {
      this.received.push(delivery.message as Message<T>);
      if (settle === 'ack') delivery.ack();
      else if (settle === 'nack') delivery.nack(new Error('rejected by mock endpoint'));
      for (const waiter of this.waiters) waiter();
    });
  }

  bodies(): T[] {
    return this.received.map((message) => message.body);
  }

  /** Resolves with the messages once at least `count` have arrived; `TimeoutError` saying how many did otherwise. */
  expect(count: number, { timeoutMs = 5_000 }: { timeoutMs?: number } = {}): Promise<Message<T>[]> {
    if (this.received.length >= count) return Promise.resolve([...this.received]);
    return new Promise((resolve, reject) => {
      const check = (): void => {
        if (this.received.length < count) return;
        clearTimeout(timer);
        this.waiters.delete(check);
        resolve([...this.received]);
      };
      const timer = setTimeout(() => {
        this.waiters.delete(check);
        reject(new TimeoutError(`${this.uri}: expected ${count} messages within ${timeoutMs} ms, got ${this.received.length}`));
      }, timeoutMs);
      this.waiters.add(check);
    });
  }

  /** Stops consuming; anything held unsettled goes back to the channel. */
  close(): void {
    this.subscription.unsubscribe();
  }
}
