import { ContainerModule } from 'inversify';
import { Logger, Transport } from '../../src/core/index.ts';
import type { RedisStreamsTransportOptions } from './redis-streams-options.ts';
import { RedisStreamsTransport } from './redis-streams-transport.ts';

/**
 * Binds the Redis Streams transport (`redis:`) into the `Transport` multi-binding, logging through
 * the container's `Logger`. The URL defaults to `REDIS_URL` (so `interchange run` picks it up), else
 * `redis://127.0.0.1:6379`.
 * @example createIntegration({ routes, modules: [redisStreamsModule({ maxDeliveries: 3, minIdleMs: 60_000 })] })
 */
export function redisStreamsModule(options: RedisStreamsTransportOptions = {}): ContainerModule {
  return new ContainerModule(({ bind }) => {
    bind(RedisStreamsTransport)
      .toDynamicValue((context) => new RedisStreamsTransport(options, context.get<Logger>(Logger)))
      .inSingletonScope();
    bind<Transport>(Transport).toService(RedisStreamsTransport);
  });
}
