import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMessage } from '../../src/core/index.ts';
import { from } from '../../facade/route-builder.ts';
import { startTestIntegration } from '../../facade/testing/index.ts';
import { idempotentConsumer } from '../../patterns/idempotent-consumer.ts';
import { RedisIdempotencyStore } from '../../adapters/redis/index.ts';
import { idempotencyStoreCases } from '../unit/postgres/idempotency-store.cases.ts';

// The Redis idempotency store against the real Redis (127.0.0.1:6379): fails when Redis is down.
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const prefix = `it-idem-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}:`;
let redis: Redis;

beforeAll(async () => {
  redis = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: () => null });
  await redis.connect().catch((error: unknown) => {
    throw new Error(`Redis is not reachable at ${REDIS_URL}: start it (redis-server --daemonize yes)`, { cause: error });
  });
});
afterAll(async () => {
  const keys = await redis.keys(`${prefix}*`);
  if (keys.length > 0) await redis.del(...keys);
  redis.disconnect();
});

let n = 0;
idempotencyStoreCases('RedisIdempotencyStore', (leaseMs) => new RedisIdempotencyStore(redis, { prefix: `${prefix}${(n += 1)}:`, leaseMs }));

describe('RedisIdempotencyStore in a route', () => {
  it('lets each message through once, keys expiring by themselves', async () => {
    const store = new RedisIdempotencyStore(redis, { prefix: `${prefix}route:`, retentionMs: 60_000 });
    const { app, kit, stop } = await startTestIntegration({ routes: [from('memory:in', { id: 'redis-dedupe' }).step('idempotent', idempotentConsumer({ store })).to('memory:out')] });
    try {
      const out = kit.mock('memory:out');
      const message = createMessage({ paid: 10 });
      await kit.sendMessages('memory:in', [message, message]);
      await out.expect(1);
      await expect.poll(() => app.metrics()['redis-dedupe']?.filtered).toBe(1);
      await expect.poll(() => redis.get(`${prefix}route:${message.id}`)).toBe('done');
      const ttl = await redis.pttl(`${prefix}route:${message.id}`);
      expect(ttl).toBeGreaterThan(0);
      expect(ttl).toBeLessThanOrEqual(60_000);
    } finally {
      await stop();
    }
  });
});
