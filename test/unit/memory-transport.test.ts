import { firstValueFrom, toArray, type Subscription } from 'rxjs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MemoryTransport } from '../../src/channel/index.ts';
import { createMessage, EndpointError, NotConnectedError, parseEndpoint, type Delivery, type Message } from '../../src/core/index.ts';
import { sleep } from '../support/wait.ts';


/** Polls until `check` holds (5 s at most). */
async function eventually(check: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 5_000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

const numbered = (count: number, from = 0): Message<number>[] => Array.from({ length: count }, (_, n) => createMessage(from + n));

describe('MemoryTransport', () => {
  let transport: MemoryTransport;
  let subscriptions: Subscription[];

  /** Subscribes and records every delivery; the caller settles them. */
  const hold = (uri: string, prefetch = 100): Delivery[] => {
    const received: Delivery[] = [];
    subscriptions.push(transport.consume(parseEndpoint(uri), { prefetch }).subscribe((delivery) => received.push(delivery)));
    return received;
  };

  beforeEach(async () => {
    transport = new MemoryTransport();
    await transport.connect();
    subscriptions = [];
  });

  afterEach(async () => {
    for (const subscription of subscriptions) subscription.unsubscribe();
    await transport.close();
  });

  it('moves a message nacked maxDeliveries times to <name>.dead with the reason in x-interchange-error', async () => {
    const [sent] = numbered(1) as [Message<number>];
    await transport.publish(parseEndpoint('memory:orders?maxDeliveries=3'), [sent]);
    const attempts: number[] = [];
    subscriptions.push(
      transport.consume(parseEndpoint('memory:orders?maxDeliveries=3')).subscribe((delivery) => {
        attempts.push(delivery.message.headers.attempt ?? 1);
        delivery.nack(new EndpointError('cannot price order'));
      }),
    );
    const dead = hold('memory:orders.dead');
    await eventually(() => dead.length === 1, 'the dead-lettered message');

    expect(attempts).toEqual([1, 2, 3]);
    const message = dead[0]?.message;
    expect(message?.id).toBe(sent.id);
    expect(message?.body).toBe(sent.body);
    expect(message?.headers['x-interchange-error']).toBe('cannot price order');
    expect(message?.headers['x-interchange-error-code']).toBe('ENDPOINT');
    expect(transport.depth('orders')).toBe(0);
  });

  it('takes maxDeliveries from the constructor when the endpoint does not set it', async () => {
    transport = new MemoryTransport({ maxDeliveries: 1 });
    await transport.publish(parseEndpoint('memory:once'), numbered(1));
    subscriptions.push(transport.consume(parseEndpoint('memory:once')).subscribe((delivery) => delivery.nack(new Error('no'))));
    const dead = hold('memory:once.dead');
    await eventually(() => dead.length === 1, 'the dead-lettered message');
    expect(dead[0]?.message.headers['x-interchange-error-code']).toBe('REJECTED');
  });

  it('refuses a pubsub endpoint on a queue channel and a queue endpoint on a pubsub channel', async () => {
    await transport.publish(parseEndpoint('memory:jobs'), numbered(1));
    await expect(transport.publish(parseEndpoint('memory:jobs?type=pubsub'), numbered(1))).rejects.toBeInstanceOf(EndpointError);
    await expect(firstValueFrom(transport.consume(parseEndpoint('memory:jobs?type=pubsub')))).rejects.toBeInstanceOf(EndpointError);

    subscriptions.push(transport.consume(parseEndpoint('memory:news?type=pubsub')).subscribe());
    await expect(transport.publish(parseEndpoint('memory:news?type=queue'), numbered(1))).rejects.toBeInstanceOf(EndpointError);
    await expect(transport.publish(parseEndpoint('memory:news?type=topic'), numbered(1))).rejects.toBeInstanceOf(EndpointError);
  });

  it('rejects publish after close with NotConnectedError, and accepts it again after connect', async () => {
    await transport.close();
    await expect(transport.publish(parseEndpoint('memory:closed'), numbered(1))).rejects.toBeInstanceOf(NotConnectedError);
    await transport.connect();
    await expect(transport.publish(parseEndpoint('memory:closed'), numbered(1))).resolves.toBeUndefined();
  });

  it('ignores a late ack of a delivery returned on unsubscribe: the redelivered copy stays unsettled', async () => {
    const [sent] = numbered(1) as [Message<number>];
    await transport.publish(parseEndpoint('memory:late'), [sent]);
    const first: Delivery[] = [];
    const firstSubscription = transport.consume(parseEndpoint('memory:late')).subscribe((delivery) => first.push(delivery));
    await eventually(() => first.length === 1, 'the first delivery');
    firstSubscription.unsubscribe();

    const second = hold('memory:late', 1);
    await eventually(() => second.length === 1, 'the redelivery');
    expect(second[0]?.message.headers.attempt).toBe(2);

    first[0]?.ack();
    // the late ack did not free the second consumer's only prefetch slot …
    await transport.publish(parseEndpoint('memory:late'), numbered(1));
    await sleep(100);
    expect(second).toHaveLength(1);
    expect(transport.depth('late')).toBe(1);
    // … nor settle its copy: unsubscribing returns it once more
    subscriptions.pop()?.unsubscribe();
    const third = hold('memory:late');
    await eventually(() => third.length === 2, 'both messages at the third consumer');
    expect(third[0]?.message.id).toBe(sent.id);
    expect(third[0]?.message.headers.attempt).toBe(3);
  });

  it('serves producers waiting on a full queue in arrival order, losing nothing', async () => {
    transport = new MemoryTransport({ capacity: 2 });
    const uri = 'memory:fifo';
    const received = hold(uri, 3);
    await transport.publish(parseEndpoint(uri), numbered(5)); // 3 held by the consumer, 2 queued: full
    expect(received).toHaveLength(3);

    const order: number[] = [];
    const producers = [numbered(1, 100), numbered(3, 200), numbered(1, 300), numbered(1, 400), numbered(2, 500), numbered(1, 600)];
    const published = producers.map((messages, index) => transport.publish(parseEndpoint(uri), messages).then(() => order.push(index)));
    await sleep(20);
    expect(order).toEqual([]);

    // several acks at once free several slots before any waiting producer runs
    for (const delivery of received.slice(0, 3)) delivery.ack();
    await eventually(() => {
      for (const delivery of received) delivery.ack();
      return order.length === producers.length;
    }, 'every producer to be admitted');
    await Promise.all(published);
    await eventually(() => {
      for (const delivery of received) delivery.ack();
      return received.length === 5 + 9;
    }, 'every message');

    expect(order).toEqual([0, 1, 2, 3, 4, 5]);
    expect(received.map((delivery) => delivery.message.body)).toEqual([0, 1, 2, 3, 4, 100, 200, 201, 202, 300, 400, 500, 501, 600]);
  });

  it('does not let a publish arriving as room frees overtake a producer already waiting', async () => {
    transport = new MemoryTransport({ capacity: 1 });
    const to = parseEndpoint('memory:overtake');
    const received = hold('memory:overtake', 1);
    await transport.publish(to, numbered(2)); // one held, one queued: full
    const early = transport.publish(to, numbered(1, 100));
    await sleep(10);

    received[0]?.ack(); // room for one: it belongs to the waiting producer …
    const late = transport.publish(to, numbered(1, 200)); // … not to this newcomer
    await eventually(() => {
      for (const delivery of received) delivery.ack();
      return received.length === 4;
    }, 'every message');
    await Promise.all([early, late]);
    expect(received.map((delivery) => delivery.message.body)).toEqual([0, 1, 100, 200]);
  });

  it('admits all of a waiting producer\'s batch before the next producer\'s', async () => {
    transport = new MemoryTransport({ capacity: 2 });
    const to = parseEndpoint('memory:batches');
    const received = hold('memory:batches', 1);
    await transport.publish(to, numbered(3)); // one held, two queued: full
    const first = transport.publish(to, numbered(5, 100));
    const second = transport.publish(to, numbered(1, 200));
    await eventually(() => {
      for (const delivery of received) delivery.ack();
      return received.length === 9;
    }, 'every message');
    await Promise.all([first, second]);
    expect(received.map((delivery) => delivery.message.body)).toEqual([0, 1, 2, 100, 101, 102, 103, 104, 200]);
  });

  it('completes a consumer whose signal was aborted before subscribing without leaving a pub-sub queue behind', async () => {
    const uri = 'memory:alerts?type=pubsub&capacity=1';
    const got = await firstValueFrom(transport.consume(parseEndpoint(uri), { signal: AbortSignal.abort() }).pipe(toArray()));
    expect(got).toEqual([]);
    // no subscriber: publishing goes nowhere and never waits for a queue nobody reads
    await transport.publish(parseEndpoint(uri), numbered(3));
    expect(transport.depth('alerts')).toBe(0);
  });

  it('releases a producer waiting on a pub-sub subscriber that leaves', async () => {
    const uri = 'memory:ticks?type=pubsub&capacity=1';
    const subscription = transport.consume(parseEndpoint(uri), { prefetch: 1 }).subscribe(); // holds everything
    subscriptions.push(subscription);
    let done = false;
    const published = transport.publish(parseEndpoint(uri), numbered(3)).then(() => {
      done = true;
    });
    await sleep(50);
    expect(done).toBe(false);

    subscription.unsubscribe();
    await published;
    expect(transport.depth('ticks')).toBe(0);
  });

  it('delivers pub-sub messages only to subscribers present when they were published', async () => {
    const uri = 'memory:events?type=pubsub';
    const early = hold(uri);
    await transport.publish(parseEndpoint(uri), numbered(2));
    const late = hold(uri);
    await transport.publish(parseEndpoint(uri), numbered(1, 10));
    await eventually(() => early.length === 3 && late.length === 1, 'the deliveries');
    expect(late.map((delivery) => delivery.message.body)).toEqual([10]);
  });

  it('hands consumers of one queue messages round-robin', async () => {
    const [a, b] = [hold('memory:rr'), hold('memory:rr')];
    await transport.publish(parseEndpoint('memory:rr'), numbered(6));
    const bodies = (deliveries: Delivery[]): unknown[] => deliveries.map((delivery) => delivery.message.body);
    expect([bodies(a), bodies(b)]).toContainEqual([0, 2, 4]);
    expect([bodies(a), bodies(b)]).toContainEqual([1, 3, 5]);
  });
});

describe('memory transport: destinations and close', () => {
  it('starts the attempt count afresh at each destination', async () => {
    const transport = new MemoryTransport();
    await transport.connect();
    await transport.publish(parseEndpoint('memory:next'), [createMessage('x', { headers: { attempt: 4 } })]);
    const got: unknown[] = [];
    const sub = transport.consume(parseEndpoint('memory:next')).subscribe((d) => {
      got.push(d.message.headers.attempt);
      d.ack();
    });
    expect(got).toEqual([undefined]);
    sub.unsubscribe();
  });

  it('close() stops intake of every consumer and refuses publishes', async () => {
    const transport = new MemoryTransport();
    await transport.connect();
    const endpoint = parseEndpoint('memory:closing');
    const got: string[] = [];
    const sub = transport.consume(endpoint).subscribe((d) => got.push(d.message.body as string));
    await transport.publish(endpoint, [createMessage('before')]);
    await transport.close();
    await expect(transport.publish(endpoint, [createMessage('after')])).rejects.toBeInstanceOf(NotConnectedError);
    await transport.connect();
    await transport.publish(endpoint, [createMessage('reconnected')]);
    expect(got).toEqual(['before']);
    expect(transport.depth('closing')).toBe(1);
    sub.unsubscribe();
  });
});
