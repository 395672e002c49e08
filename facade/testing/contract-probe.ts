import type { Observable, Subscription } from 'rxjs';
import { createMessage, type Delivery, type Message } from '../../src/core/index.ts';

/** Helpers of the transport contract suite (`describeTransportContract`): a recording subscriber and polling waits. */

/** Longest a case waits for something that must happen. */
export const EVENTUALLY_MS = 5_000;
/** How long a case watches to show that nothing (more) happens. */
export const QUIET_MS = 150;

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** A subscription that records what it receives and settles each delivery as told. */
export class Probe {
  readonly deliveries: Delivery[] = [];
  error: unknown;
  private readonly subscription: Subscription;

  constructor(source: Observable<Delivery>, onDelivery: (delivery: Delivery) => void) {
    this.subscription = source.subscribe({
      next: (delivery) => {
        this.deliveries.push(delivery);
        onDelivery(delivery);
      },
      error: (error: unknown) => {
        this.error = error;
      },
    });
  }

  get count(): number {
    return this.deliveries.length;
  }

  ids(): string[] {
    return this.deliveries.map((delivery) => delivery.message.id);
  }

  unsettled(): Delivery[] {
    return this.deliveries.filter((delivery) => !delivery.settled);
  }

  /** Resolves once at least `count` deliveries have arrived; fails fast if the stream errored. */
  async received(count: number, what = 'deliveries'): Promise<void> {
    await eventually(() => {
      if (this.error !== undefined) throw new Error(`the consume stream failed while waiting for ${count} ${what}`, { cause: this.error });
      return this.count >= count;
    }, () => `expected ${count} ${what}, got ${this.count}`);
  }

  unsubscribe(): void {
    this.subscription.unsubscribe();
  }
}

/** Polls `check` (running `between` before each retry) until it holds; fails with `describeFailure()` after `EVENTUALLY_MS`. */
export async function eventually(check: () => boolean, describeFailure: () => string, between?: () => Promise<void>): Promise<void> {
  const deadline = Date.now() + EVENTUALLY_MS;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${EVENTUALLY_MS} ms: ${describeFailure()}`);
    if (between !== undefined) await between();
    await sleep(between === undefined ? 5 : 20);
  }
}

/** A promise's state, observable synchronously. */
export function track(promise: Promise<unknown>): { state: 'pending' | 'resolved' | 'rejected'; reason?: unknown } {
  const tracked: { state: 'pending' | 'resolved' | 'rejected'; reason?: unknown } = { state: 'pending' };
  promise.then(
    () => {
      tracked.state = 'resolved';
    },
    (reason: unknown) => {
      tracked.state = 'rejected';
      tracked.reason = reason;
    },
  );
  return tracked;
}

export function numbered(count: number, prefix = 'm'): Message<{ n: number }>[] {
  return Array.from({ length: count }, (_, n) => createMessage({ n }, { headers: { 'x-test': `${prefix}-${n}` } }));
}

export function required<T>(value: T | undefined, what: string): T {
  if (value === undefined) throw new Error(`the contract setup declares this feature but does not provide ${what}`);
  return value;
}
