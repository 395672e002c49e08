import { afterEach, describe, expect, it } from 'vitest';
import { MemoryTransport } from '../../src/channel/index.ts';
import { createMessage, from, type Message } from '../../facade/index.ts';
import { parseEndpoint, type Delivery } from '../../src/spi.ts';
import { startTestIntegration, type TestIntegration } from '../../facade/testing/index.ts';

/** A message with body `body` and, unless undefined, a `priority` header. */
const prioritized = (body: string, priority?: number): Message<string> => createMessage(body, priority === undefined ? {} : { headers: { priority } });

describe('memory transport: the priority header', () => {
  let transport: MemoryTransport;
  afterEach(async () => {
    await transport.close();
  });

  const drain = (uri: string): string[] => {
    const bodies: string[] = [];
    transport
      .consume(parseEndpoint(uri))
      .subscribe((delivery) => {
        bodies.push(delivery.message.body as string);
        delivery.ack();
      })
      .unsubscribe();
    return bodies;
  };

  it('hands out higher priorities first, in publish order within one priority; no header counts as 0', async () => {
    transport = new MemoryTransport();
    const endpoint = parseEndpoint('memory:hG-jobs');
    await transport.publish(endpoint, [prioritized('a0'), prioritized('b5', 5), prioritized('c1', 1), prioritized('d5', 5), prioritized('e0', 0), prioritized('f9', 9), prioritized('g1', 1)]);
    expect(drain('memory:hG-jobs')).toEqual(['f9', 'b5', 'd5', 'c1', 'g1', 'a0', 'e0']);
  });

  it('stays a plain FIFO without priorities, and ignores a priority that is not a finite number', async () => {
    transport = new MemoryTransport();
    const endpoint = parseEndpoint('memory:hG-fifo');
    const odd = [createMessage('s', { headers: { priority: '9' } }), createMessage('n', { headers: { priority: Number.NaN } })];
    await transport.publish(endpoint, [prioritized('1'), odd[0]!, prioritized('2'), odd[1]!, prioritized('-1', -1), prioritized('3')]);
    expect(drain('memory:hG-fifo')).toEqual(['1', 's', '2', 'n', '3', '-1']);
  });

  it('orders what arrives while a consumer takes messages: a later higher priority passes the queued lower ones', async () => {
    transport = new MemoryTransport();
    const endpoint = parseEndpoint('memory:hG-live');
    await transport.publish(endpoint, [prioritized('low-1', 1), prioritized('low-2', 1)]);
    const held: Delivery[] = [];
    const subscription = transport.consume(endpoint, { prefetch: 1 }).subscribe((delivery) => held.push(delivery));
    await transport.publish(endpoint, [prioritized('high', 7)]);
    const seen = (): string[] => held.map((delivery) => delivery.message.body as string);
    expect(seen()).toEqual(['low-1']); // already handed out before the high one arrived
    held[0]?.ack();
    expect(seen()).toEqual(['low-1', 'high']);
    held[1]?.ack();
    expect(seen()).toEqual(['low-1', 'high', 'low-2']);
    held[2]?.ack();
    subscription.unsubscribe();
  });

  it('puts a rejected message back at its place: behind higher priorities, before its own priority admitted later', async () => {
    transport = new MemoryTransport();
    const endpoint = parseEndpoint('memory:hG-redeliver');
    await transport.publish(endpoint, [prioritized('p5-a', 5), prioritized('p5-b', 5), prioritized('p1-a', 1)]);
    const intake = new AbortController();
    const held: Delivery[] = [];
    const first = transport.consume(endpoint, { prefetch: 2, signal: intake.signal }).subscribe((delivery) => held.push(delivery));
    expect(held.map((delivery) => delivery.message.body)).toEqual(['p5-a', 'p5-b']);
    intake.abort();
    await transport.publish(endpoint, [prioritized('p9', 9), prioritized('p5-c', 5), prioritized('p1-b', 1)]);
    held[1]?.nack(new Error('rejected'));
    held[0]?.nack(new Error('rejected'));
    const again: Message[] = [];
    const second = transport.consume(endpoint).subscribe((delivery) => {
      again.push(delivery.message);
      delivery.ack();
    });
    expect(again.map((message) => message.body)).toEqual(['p9', 'p5-a', 'p5-b', 'p5-c', 'p1-a', 'p1-b']);
    expect(again.map((message) => message.headers.attempt)).toEqual([undefined, 2, 2, undefined, undefined, undefined]);
    first.unsubscribe();
    second.unsubscribe();
  });

  it('orders each pub-sub subscriber queue the same way', async () => {
    transport = new MemoryTransport();
    const endpoint = parseEndpoint('memory:hG-topic?type=pubsub');
    const intake = new AbortController();
    const held: Delivery[] = [];
    const subscription = transport.consume(endpoint, { prefetch: 1, signal: intake.signal }).subscribe((delivery) => held.push(delivery));
    await transport.publish(endpoint, [prioritized('none'), prioritized('low', 1), prioritized('high', 3)]);
    for (let index = 0; index < 3; index += 1) held[index]?.ack();
    // one publish call is admitted whole before anything is handed out
    expect(held.map((delivery) => delivery.message.body)).toEqual(['high', 'low', 'none']);
    subscription.unsubscribe();
  });
});

describe('memory priorities through a route', () => {
  let test: TestIntegration | undefined;
  afterEach(async () => {
    await test?.stop();
    test = undefined;
  });

  it('a route consuming a backlog processes it highest priority first', async () => {
    test = await startTestIntegration({ routes: [from<string>('memory:hG-backlog', { id: 'hG-backlog', prefetch: 1 }).to('memory:hG-done')] });
    const { app, kit } = test;
    await app.stopRoute('hG-backlog', { drainTimeoutMs: 1_000 });
    await app.transports.publish('memory:hG-backlog', [prioritized('normal'), prioritized('urgent', 9), prioritized('bulk', -1), prioritized('high', 5)]);
    const done = kit.mock<string>('memory:hG-done');
    app.startRoute('hG-backlog');
    await done.expect(4);
    expect(done.bodies()).toEqual(['urgent', 'high', 'normal', 'bulk']);
  });
});
