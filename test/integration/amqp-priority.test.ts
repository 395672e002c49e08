import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { createMessage, type Message } from '../../facade/index.ts';
import { parseEndpoint } from '../../src/spi.ts';
import type { AmqpTransport } from '../../adapters/amqp/index.ts';
import { BrokerAdmin, connectedTransport, uniqueName, until } from './amqp-support.ts';

const admin = new BrokerAdmin();
const transports: AmqpTransport[] = [];
afterEach(async () => {
  for (const transport of transports.splice(0)) await transport.close();
  await admin.cleanup();
});
afterAll(() => admin.close());

/** Publishes `bodies` with their priorities, one publish, then consumes the queue (prefetch 1, acking each) and returns the bodies in delivery order. */
async function roundTrip(queue: string, maxPriority: number | undefined, sent: readonly (readonly [body: string, priority: number | undefined])[]): Promise<Message[]> {
  admin.track({ queues: [queue] });
  const transport = await connectedTransport({ topology: { queues: [maxPriority === undefined ? { name: queue } : { name: queue, maxPriority }] } });
  transports.push(transport);
  const endpoint = parseEndpoint(`amqp:queue/${queue}`);
  await transport.publish(
    endpoint,
    sent.map(([body, priority]) => createMessage(body, priority === undefined ? {} : { headers: { priority } })),
  );
  await until(async () => (await admin.messageCount(queue)) === sent.length, () => `expected ${sent.length} messages in ${queue}`);
  const got: Message[] = [];
  const subscription = transport.consume(endpoint, { prefetch: 1 }).subscribe((delivery) => {
    got.push(delivery.message);
    delivery.ack();
  });
  try {
    await until(async () => got.length === sent.length, () => `received ${got.length} of ${sent.length}`);
  } finally {
    subscription.unsubscribe();
  }
  return got;
}

const mixed = [
  ['a-none', undefined],
  ['b-1', 1],
  ['c-5', 5],
  ['d-1', 1],
  ['e-9', 9],
  ['f-5', 5],
  ['g-0', 0],
] as const;

describe('amqp priorities against RabbitMQ', () => {
  it('a queue declared with maxPriority (x-max-priority) delivers higher priorities first, in publish order within one', async () => {
    const got = await roundTrip(uniqueName('hG-priority'), 10, mixed);
    expect(got.map((message) => message.body)).toEqual(['e-9', 'c-5', 'f-5', 'b-1', 'd-1', 'a-none', 'g-0']);
    // the priority travels as the AMQP property and comes back as the header
    expect(got.map((message) => message.headers.priority)).toEqual([9, 5, 5, 1, 1, undefined, 0]);
  });

  it('a queue without maxPriority ignores the priority: publish order', async () => {
    const got = await roundTrip(uniqueName('hG-no-priority'), undefined, mixed);
    expect(got.map((message) => message.body)).toEqual(mixed.map(([body]) => body));
  });
});
