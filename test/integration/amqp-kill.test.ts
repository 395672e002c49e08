import { afterAll, expect, it } from 'vitest';
import { createMessage, parseEndpoint, type Message } from '../../src/core/index.ts';
import { AMQP_URL, BrokerAdmin, connectedTransport, sleep, uniqueName, until } from './amqp-support.ts';
import { ChildScript } from '../support/child-script.ts';

const admin = new BrokerAdmin();
afterAll(() => admin.close());

it('a consumer process killed mid-batch: its unacked messages go to another consumer, none lost', async () => {
  const queue = uniqueName('kill');
  admin.track({ queues: [queue] });
  const transport = await connectedTransport();
  try {
    const endpoint = parseEndpoint(`amqp:queue/${queue}`);
    await transport.publish(endpoint, Array.from({ length: 100 }, (_, n) => createMessage({ n })));

    const acked = new Set<number>();
    const held = new Set<number>();
    const child = new ChildScript('test/integration/amqp-child-consumer.ts', [AMQP_URL, queue, '30'], {
      onLine: (line) => {
        const [what, n] = line.split(' ');
        (what === 'acked' ? acked : held).add(Number(n));
      },
    });
    await until(() => acked.size === 30 && held.size === 20, () => `child acked ${acked.size}, holds ${held.size}`, 20_000);
    await child.kill();

    const got: Message[] = [];
    const subscription = transport.consume(endpoint, { prefetch: 50 }).subscribe((delivery) => {
      got.push(delivery.message);
      delivery.ack();
    });
    await until(() => got.length >= 70, () => `expected 70, got ${got.length}`);
    await sleep(300);
    subscription.unsubscribe();
    const numbers = got.map((message) => (message.body as { n: number }).n);
    expect(numbers).toHaveLength(70);
    expect(new Set([...numbers, ...acked])).toEqual(new Set(Array.from({ length: 100 }, (_, n) => n)));
    for (const message of got) expect(message.headers.attempt).toBe(held.has((message.body as { n: number }).n) ? 2 : 1);
  } finally {
    await transport.close();
  }
});
