import type { Subscription } from 'rxjs';
import { afterEach, describe, expect, it } from 'vitest';
import { ZeroMqBindError, ZeroMqConfigurationError, ZeroMqTransport } from '../../adapters/zeromq/index.ts';
import { createMessage, parseEndpoint, PartialPublishError, silentLogger, TimeoutError, type Delivery } from '../../src/core/index.ts';
import { until } from '../support/wait.ts';

// Defects a review found in the ZeroMQ adapter: a batch that times out part-way, a second hwm on one
// address, bind errors retrying cannot fix.
const transports: ZeroMqTransport[] = [];
const subscriptions: Subscription[] = [];
const tag = `hZ-${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;

async function transport(publishTimeoutMs = 30_000): Promise<ZeroMqTransport> {
  const created = new ZeroMqTransport({ lingerMs: 0, publishTimeoutMs }, silentLogger);
  await created.connect();
  transports.push(created);
  return created;
}

afterEach(async () => {
  for (const subscription of subscriptions.splice(0)) subscription.unsubscribe();
  for (const created of transports.splice(0)) await created.close();
});

describe('ZeroMQ publish of a batch that times out part-way', () => {
  it('rejects with PartialPublishError naming only the messages not queued; the queued ones arrive', async () => {
    const zmq = await transport(500);
    const uri = `zmq:inproc://${tag}-batch?hwm=2&headers=all`;
    const held: Delivery[] = [];
    subscriptions.push(zmq.consume(parseEndpoint(uri), { prefetch: 1 }).subscribe((delivery) => held.push(delivery)));
    const messages = Array.from({ length: 10 }, (_, index) => createMessage({ index }));
    const error: unknown = await zmq.publish(parseEndpoint(uri), messages).then(
      () => undefined,
      (rejection: unknown) => rejection,
    );
    expect(error).toBeInstanceOf(PartialPublishError);
    const failed = [...(error as PartialPublishError).failures.keys()];
    expect(failed.length).toBeGreaterThan(0);
    expect(failed.length).toBeLessThan(10);
    const queued = 10 - failed.length;
    expect(failed).toEqual(Array.from({ length: failed.length }, (_, offset) => queued + offset));
    for (const reason of (error as PartialPublishError).failures.values()) expect(reason).toBeInstanceOf(TimeoutError);
    // release the consumer: exactly the queued ones arrive
    const settleAll = (): void => {
      for (const delivery of held.splice(0)) delivery.ack();
    };
    const got: number[] = [];
    await until(() => {
      for (const delivery of held) got.push((delivery.message.body as { index: number }).index);
      settleAll();
      return got.length === queued;
    }, () => `got ${got.length} of ${queued}`);
    expect(got).toEqual(Array.from({ length: queued }, (_, index) => index));
  });
});

describe('ZeroMQ endpoint options', () => {
  it('a second publish endpoint on the same address with another hwm is refused', async () => {
    const zmq = await transport();
    const uri = `zmq:inproc://${tag}-hwm`;
    subscriptions.push(zmq.consume(parseEndpoint(`${uri}?hwm=10`)).subscribe(() => undefined));
    await zmq.publish(parseEndpoint(`${uri}?hwm=10`), [createMessage({ a: 1 })]);
    await expect(zmq.publish(parseEndpoint(`${uri}?hwm=99`), [createMessage({ a: 2 })])).rejects.toBeInstanceOf(ZeroMqConfigurationError);
  });

  it('binding an address that is not this host\'s is a permanent ZeroMqBindError', async () => {
    const zmq = await transport();
    const errors: unknown[] = [];
    subscriptions.push(zmq.consume(parseEndpoint('zmq:tcp://192.0.2.1:5999')).subscribe({ error: (error: unknown) => errors.push(error) }));
    await until(() => errors.length === 1, () => 'the consume did not fail');
    expect(errors[0]).toBeInstanceOf(ZeroMqBindError);
    expect((errors[0] as ZeroMqBindError).permanent).toBe(true);
  });
});
