import type { Subscription } from 'rxjs';
import { isObservableTransport, parseEndpoint, TimeoutError, type Message, type Transport } from '../../src/core/index.ts';

/**
 * How a mock sees an endpoint's messages:
 * - `'consume'`: it is a consumer of the endpoint and takes what arrives (for endpoints nothing else
 *   consumes; on a channel a route consumes it would compete with the route for messages);
 * - `'observe'`: it sees every message published to the endpoint and takes none (a tap; needs an
 *   `ObservableTransport`, such as `memory:`).
 */
export type MockMode = 'consume' | 'observe';

export interface MockEndpointOptions {
  /** What a consuming mock does with each delivery (default `ack`); `hold` leaves it unsettled. */
  readonly settle?: 'ack' | 'nack' | 'hold';
  /** Unsettled deliveries a consuming mock holds at most (default 1000). */
  readonly prefetch?: number;
  /** Default `'consume'`; `TestKit.mock` chooses `'observe'` for endpoints a route consumes. */
  readonly mode?: MockMode;
}

/**
 * Collects what arrives at an endpoint (Camel's MockEndpoint), from its creation on: consuming it,
 * or observing it without taking anything (`mode`).
 * Throws `TypeError` for `mode: 'observe'` on a transport that cannot be observed.
 * @example const out = kit.mock<Order>('memory:out'); await out.expect(3); expect(out.bodies()).toEqual([...])
 */
export class MockEndpoint<T = unknown> {
  readonly received: Message<T>[] = [];
  /** Whether this mock takes the endpoint's messages or only watches them. */
  readonly mode: MockMode;
  private readonly subscription: Subscription;
  private readonly waiters = new Set<() => void>();

  constructor(
    readonly uri: string,
    transport: Transport,
    { settle = 'ack', prefetch = 1000, mode = 'consume' }: MockEndpointOptions = {},
  ) {
    this.mode = mode;
    const endpoint = parseEndpoint(uri);
    if (mode === 'observe') {
      if (!isObservableTransport(transport)) throw new TypeError(`${uri}: the '${transport.scheme}' transport cannot be observed; a mock can only consume it`);
      this.subscription = transport.observe(endpoint).subscribe((message) => this.arrived(message as Message<T>));
      return;
    }
    this.subscription = transport.consume(endpoint, { prefetch }).subscribe((delivery) => {
      // recorded before settling: an ack may hand the next message to this callback at once
      this.received.push(delivery.message as Message<T>);
      if (settle === 'ack') delivery.ack();
      else if (settle === 'nack') delivery.nack(new Error('rejected by mock endpoint'));
      this.notify();
    });
  }

  private arrived(message: Message<T>): void {
    this.received.push(message);
    this.notify();
  }

  private notify(): void {
    for (const waiter of this.waiters) waiter();
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

  /** Stops consuming or observing; anything held unsettled goes back to the channel. */
  close(): void {
    this.subscription.unsubscribe();
  }
}
