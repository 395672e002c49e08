import { ContainerModule } from 'inversify';
import { Observable, type Subscriber } from 'rxjs';
import { afterEach, describe, expect, it } from 'vitest';
import { createDelivery, Transport, type Delivery, type Endpoint } from '../../src/spi.ts';
import { createMessage, from, type Message, type RouteSource } from '../../facade/index.ts';
import { startTestIntegration, type TestIntegration } from '../../facade/testing/index.ts';

// `.to()` publishes what reaches it in one synchronous burst as one batch (one confirm wait). A
// broker consumer hands a socket read's deliveries over in such a burst, so synchronous steps in
// between must pass the burst on whole: were one to split it (a scheduler hop, a promise per
// delivery), the route would publish smaller batches — more confirm waits per message.

const running: TestIntegration[] = [];
afterEach(async () => {
  for (const test of running.splice(0)) await test.stop();
});

const until = async (condition: () => boolean, timeoutMs = 5_000): Promise<void> => {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
};

/** Emits bursts of deliveries on demand (synchronously, as a socket read does); records each publish call and confirms it when told. */
class BurstTransport implements Transport {
  readonly scheme = 'burst';
  readonly publishes: { readonly uri: string; readonly size: number; confirm: () => void }[] = [];
  readonly acked = new Set<string>();
  private subscriber: Subscriber<Delivery> | undefined;
  async connect(): Promise<void> {}
  async close(): Promise<void> {}
  publish(endpoint: Endpoint, messages: readonly Message[]): Promise<void> {
    return new Promise<void>((confirm) => this.publishes.push({ uri: endpoint.uri, size: messages.length, confirm }));
  }
  consume(): Observable<Delivery> {
    return new Observable((subscriber) => {
      this.subscriber = subscriber;
      return () => (this.subscriber = undefined);
    });
  }
  get subscribed(): boolean {
    return this.subscriber !== undefined;
  }
  burst(messages: readonly Message[]): void {
    for (const message of messages) this.subscriber?.next(createDelivery(message, { ack: () => this.acked.add(message.id), nack: () => undefined }));
  }
}

async function start(route: RouteSource, transport: BurstTransport): Promise<void> {
  const test = await startTestIntegration({ routes: [route], modules: [new ContainerModule(({ bind }) => void bind<Transport>(Transport).toConstantValue(transport))] });
  running.push(test);
  await until(() => transport.subscribed);
}

const burstOf = (count: number, first = 0): Message<{ n: number }>[] => Array.from({ length: count }, (_, n) => createMessage({ n: first + n }));

describe('runtime batching: a synchronous burst reaches .to() whole', () => {
  for (const steps of [0, 2, 5]) {
    it(`publishes a burst of 50 deliveries through ${steps} synchronous steps as one call, and acks them only once it is confirmed`, async () => {
      const transport = new BurstTransport();
      let route = from<{ n: number }>('burst:in', { prefetch: 100 });
      for (let k = 0; k < steps; k += 1) route = k % 2 === 0 ? route.transform((m) => ({ n: m.body.n })) : route.filter(() => true);
      await start(route.to('burst:out'), transport);

      transport.burst(burstOf(50));
      await until(() => transport.publishes.length > 0);
      await new Promise((resolve) => setTimeout(resolve, 20)); // a split burst would have published again by now
      expect(transport.publishes.map(({ size }) => size)).toEqual([50]);
      expect(transport.acked.size).toBe(0); // nothing acked before the destination confirmed

      transport.burst(burstOf(30, 50)); // a later burst, while the first is unconfirmed: a batch of its own
      await until(() => transport.publishes.length > 1);
      transport.publishes[0]?.confirm();
      await until(() => transport.acked.size === 50);
      transport.publishes[1]?.confirm();
      await until(() => transport.acked.size === 80);
      expect(transport.publishes.map(({ size }) => size)).toEqual([50, 30]);
    });
  }
});
