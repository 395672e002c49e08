import type { AdapterEnvironment, AdapterEnvironmentContext, AdapterBinding } from '../../src/core/adapter-environment.ts';
import { redactUrl } from '../../src/core/redact.ts';

/**
 * The Redis adapter's declaration for `interchange run`: it binds nothing by itself (a route file
 * creates its Redis client), but `REDIS_URL` is where route files conventionally take it from, so the
 * CLI checks it before anything starts. Imports nothing of the adapter.
 *
 * Redis Streams: a route using `redis:` binds the streams transport (unless the route file binds a
 * `RedisStreamsTransport` itself) — to `REDIS_URL`, else to `redis://127.0.0.1:6379`. The transport
 * (and ioredis with it) is imported by `bind`, only then; it never connects.
 */
export const environment: AdapterEnvironment = { name: 'redis', variables: ['REDIS_URL'], bind: bindStreams };

async function bindStreams({ env, schemes, isBound }: AdapterEnvironmentContext): Promise<AdapterBinding | undefined> {
  if (!schemes.has('redis')) return undefined;
  const [{ RedisStreamsTransport }, { redisStreamsModule }] = await Promise.all([import('./redis-streams-transport.ts'), import('./redis-streams.module.ts')]);
  if (isBound(RedisStreamsTransport)) return undefined;
  const url = env.REDIS_URL === '' ? undefined : env.REDIS_URL;
  return url === undefined
    ? { module: redisStreamsModule(), announcement: 'no REDIS_URL: redis: endpoints use Redis at redis://127.0.0.1:6379' }
    : { module: redisStreamsModule({ url }), announcement: `REDIS_URL is set: redis: endpoints use Redis at ${redactUrl(url)}` };
}
