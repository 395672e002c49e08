import { Redis } from 'ioredis';
import { afterAll, beforeAll } from 'vitest';
import { RedisStreamsTransport } from '../../adapters/redis/index.ts';
import { parseEndpoint } from '../../src/core/index.ts';
import { describeTransportContract } from '../../facade/testing/index.ts';

// The transport contract against the machine's Redis on 127.0.0.1:6379 (fails, never skips, if it is down).
// Point-to-point = a consumer group (`?group=`); publish-subscribe = the stream read without a group.
const url = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const admin = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 });
const keys = new Set<string>();

beforeAll(async () => {
  await admin.connect();
});
afterAll(async () => {
  admin.disconnect();
});

const key = (name: string): string => {
  const stream = `hR-contract:${name}`;
  keys.add(stream);
  keys.add(`${stream}:dead`);
  return stream;
};

describeTransportContract('redis streams (consumer groups; pub-sub without a group)', {
  create: async () => {
    const transport = new RedisStreamsTransport({ url });
    await transport.connect();
    return transport;
  },
  // headers=all: only this suite's Interchange transports write these streams (the default trusts no producer)
  endpoint: (name) => parseEndpoint(`redis:stream/${key(name)}?group=contract&headers=all`),
  pubsubEndpoint: (name) => parseEndpoint(`redis:stream/${key(name)}?headers=all`),
  cleanup: async () => {
    if (keys.size > 0) await admin.del(...keys);
    keys.clear();
  },
  features: {
    // one XADD pipeline per publish call, read back in stream order by one consumer
    guaranteedOrder: true,
    // nack → XCLAIM to the same consumer, delivery count + 1
    redeliversOnNack: true,
    // unsubscribe → the consumer's pending entries are made claimable at once (XCLAIM IDLE), the next consumer's claim round takes them
    redeliversUnsettledOnUnsubscribe: true,
    competingConsumers: true,
    publishSubscribe: true,
    // MAXLEN trims the oldest entries; XADD never waits for room
    boundedPublish: false,
    persistentAcrossReconnect: true,
  },
});
