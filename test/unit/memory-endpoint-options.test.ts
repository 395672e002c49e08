import { firstValueFrom } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { MemoryTransport } from '../../src/channel/index.ts';
import { createMessage, EndpointError, parseEndpoint, silentLogger } from '../../src/core/index.ts';

// memory: endpoint options are checked against memoryEndpointOptionsSchema (defineOptions): a typo
// is an EndpointError naming the option and the URI, never an option silently ignored.
describe('memory: endpoint options', () => {
  const transport = (): MemoryTransport => new MemoryTransport({ logger: silentLogger });

  it.each([
    ['memory:orders?tpye=pubsub', "invalid options in 'memory:orders?tpye=pubsub': unknown option 'tpye' (did you mean 'type'?)"],
    ['memory:orders?type=topic', "invalid options in 'memory:orders?type=topic': type must be one of queue, pubsub, got 'topic'"],
    ['memory:orders?capacity=-1', "invalid options in 'memory:orders?capacity=-1': capacity must be a positive integer, got '-1'"],
    ['memory:orders?maxDelivries=3', "invalid options in 'memory:orders?maxDelivries=3': unknown option 'maxDelivries' (did you mean 'maxDeliveries'?)"],
  ])('publish to %s is refused', async (uri, message) => {
    const refused = transport().publish(parseEndpoint(uri), [createMessage({})]);
    await expect(refused).rejects.toBeInstanceOf(EndpointError);
    await expect(refused).rejects.toThrow(message);
  });

  it('consuming or observing an endpoint with an unknown option fails too', async () => {
    const endpoint = parseEndpoint('memory:orders?prefetch=10');
    await expect(firstValueFrom(transport().consume(endpoint))).rejects.toThrow("unknown option 'prefetch' (known: capacity, maxDeliveries, type)");
    expect(() => transport().observe(endpoint)).toThrow(EndpointError);
  });

  it('accepts every documented option', async () => {
    const memory = transport();
    await memory.publish(parseEndpoint('memory:jobs?type=queue&capacity=5&maxDeliveries=2'), [createMessage({})]);
    expect(memory.depth('jobs')).toBe(1);
  });
});
