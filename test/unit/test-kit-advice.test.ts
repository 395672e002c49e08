import { VirtualTimeScheduler } from 'rxjs';
import { afterEach, describe, expect, it } from 'vitest';
import { createIntegration, DeadLetterHeaders, from, retry, RouteDefinitionError, silentLogger } from '../../facade/index.ts';
import { advice, startTestIntegration, type TestIntegration } from '../../facade/testing/index.ts';
import { runUntil } from './virtual-time.ts';

interface Order {
  readonly orderId: number;
  readonly region: string;
  readonly net: number;
}

/** A route file as written for production: RabbitMQ in, MQTT out, RabbitMQ dead letters. */
const orders = from<Order>('amqp:queue/orders', { id: 'orders' })
  .deadLetterChannel('amqp:queue/orders.invalid', { retry: retry({ maxAttempts: 3, initialDelayMs: 1_000, jitter: 0 }) })
  .transform((m) => {
    if (m.body.net < 0) throw new Error(`order ${m.body.orderId}: negative amount`);
    return { ...m.body, gross: m.body.net * 1.2 };
  })
  .to('mqtt:orders/{region}');

const running: TestIntegration[] = [];
afterEach(async () => {
  for (const test of running.splice(0)) await test.stop();
});

describe('advice: a route written against amqp: and mqtt:, tested on memory: with no broker', () => {
  it('replaces the source and redirects the templated MQTT destination to memory channels, per resolved URI', async () => {
    expect(() => createIntegration({ routes: [orders], logger: silentLogger })).toThrow(RouteDefinitionError); // no amqp/mqtt module bound
    const scheduler = new VirtualTimeScheduler();
    const test = await startTestIntegration({
      routes: [advice(orders).replaceFrom('memory:orders').interceptSendTo('mqtt:orders/*', 'memory:orders-*').interceptSendTo('amqp:*', 'memory:unexpected')],
      scheduler,
    });
    running.push(test);
    const eu = test.kit.mock<Order & { gross: number }>('memory:orders-eu');
    const us = test.kit.mock<Order & { gross: number }>('memory:orders-us');
    await test.kit.sendAll('memory:orders', [
      { orderId: 1, region: 'eu', net: 10 },
      { orderId: 2, region: 'us', net: 20 },
      { orderId: 3, region: 'eu', net: 30 },
    ]);
    await runUntil(scheduler, () => eu.received.length === 2 && us.received.length === 1);
    expect(eu.bodies().map((body) => [body.orderId, body.gross])).toEqual([
      [1, 12],
      [3, 36],
    ]);
    expect(us.bodies().map((body) => body.orderId)).toEqual([2]);
    expect(test.app.metrics().orders).toMatchObject({ received: 3, completed: 3, inFlight: 0 });
    expect(orders.definition().source).toBe('amqp:queue/orders'); // the route itself is untouched
  });

  it('redirects sends inside choice branches, which build-time validation sees replaced', async () => {
    const routed = from<Order>('amqp:queue/orders', { id: 'routed' }).choice((c) =>
      c.when((m) => m.body.net >= 100, (b) => b.to('amqp:exchange/orders?routingKey=big')).otherwise((b) => b.to('amqp:exchange/orders?routingKey=small')),
    );
    const test = await startTestIntegration({
      routes: [advice(routed).replaceFrom('memory:orders').interceptSendTo('amqp:exchange/orders?routingKey=*', 'memory:orders-*')],
    });
    running.push(test);
    const big = test.kit.mock<Order>('memory:orders-big');
    const small = test.kit.mock<Order>('memory:orders-small');
    await test.kit.sendAll('memory:orders', [
      { orderId: 1, region: 'eu', net: 500 },
      { orderId: 2, region: 'eu', net: 5 },
    ]);
    await big.expect(1);
    await small.expect(1);
    expect([big.bodies()[0]?.orderId, small.bodies()[0]?.orderId]).toEqual([1, 2]);
  });

  it("redirects the route's dead-letter channel too: retries run on virtual time, then the dead letter lands in memory", async () => {
    const scheduler = new VirtualTimeScheduler();
    const test = await startTestIntegration({
      routes: [advice(orders).replaceFrom('memory:orders').interceptSendTo('mqtt:orders/{region}', 'memory:published').interceptSendTo('amqp:queue/orders.invalid', 'memory:invalid')],
      scheduler,
    });
    running.push(test);
    const invalid = test.kit.mock<Order>('memory:invalid');
    await test.kit.send('memory:orders', { orderId: 9, region: 'eu', net: -1 });
    await runUntil(scheduler, () => invalid.received.length === 1);
    expect(scheduler.now()).toBe(3_000); // retried after 1 s and 2 s of virtual time
    expect(invalid.received[0]?.headers).toMatchObject({ [DeadLetterHeaders.attempts]: 3, [DeadLetterHeaders.route]: 'orders' });
  });
});
