import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import type { Subscription } from 'rxjs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { DEAD_LETTER_SOURCE, RedisStreamsConfigurationError, RedisStreamsTransport, RedisStreamsUnencodableError, redisStreamsModule, type RedisStreamsTransportOptions } from '../../adapters/redis/index.ts';
import { createMessage, DeadLetterHeaders, parseEndpoint, PartialPublishError, silentLogger, type Delivery, type Message } from '../../src/core/index.ts';
import { from } from '../../facade/route-builder.ts';
import { startTestIntegration } from '../../facade/testing/index.ts';
import { ChildScript } from '../support/child-script.ts';
import { sleep, until } from '../support/wait.ts';

// Against the machine's Redis on 127.0.0.1:6379 (fails, never skips, if it is down). Keys: hR-streams-<run>-*.
const url = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const run = `hR-streams-${Date.now().toString(36)}-${randomBytes(2).toString('hex')}`;
let redis: Redis;
let counter = 0;
const transports: RedisStreamsTransport[] = [];
const subscriptions: Subscription[] = [];

const fresh = (label: string): string => `${run}-${label}-${(counter += 1)}`;

async function transport(options: RedisStreamsTransportOptions = {}): Promise<RedisStreamsTransport> {
  const created = new RedisStreamsTransport({ url, ...options }, silentLogger);
  await created.connect();
  transports.push(created);
  return created;
}

/** Consumes `uri`, collecting deliveries; `settle` decides what happens to each (default: held). */
function collect(via: RedisStreamsTransport, uri: string, settle: (delivery: Delivery) => void = () => undefined, prefetch = 100): Delivery[] {
  const got: Delivery[] = [];
  subscriptions.push(
    via.consume(parseEndpoint(uri), { prefetch }).subscribe((delivery) => {
      got.push(delivery);
      settle(delivery);
    }),
  );
  return got;
}

const numbered = (count: number): Message[] => Array.from({ length: count }, (_, index) => createMessage({ n: index }, { headers: { 'x-test': `m${index}` } }));

beforeAll(async () => {
  redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: () => null });
  await redis.connect().catch((error: unknown) => {
    throw new Error(`Redis is not reachable at ${url}`, { cause: error });
  });
});
afterEach(async () => {
  for (const subscription of subscriptions.splice(0)) subscription.unsubscribe();
  for (const created of transports.splice(0)) await created.close();
});
afterAll(async () => {
  const keys = await redis.keys(`${run}*`);
  if (keys.length > 0) await redis.del(...keys);
  redis.disconnect();
});

describe('RedisStreamsTransport: endpoints and options', () => {
  it('refuses a URI that is not redis:stream/<key>, unknown options, and a consumer without a group', async () => {
    const redisStreams = await transport();
    await expect(redisStreams.publish(parseEndpoint('redis:queue/x'), numbered(1))).rejects.toThrow(RedisStreamsConfigurationError);
    await expect(redisStreams.publish(parseEndpoint('redis:stream/x?grup=a'), numbered(1))).rejects.toThrow(/did you mean 'group'/);
    await expect(redisStreams.publish(parseEndpoint('redis:stream/x?consumer=a'), numbered(1))).rejects.toThrow(/consumer needs a group/);
    expect(() => new RedisStreamsTransport({ url: 'http://x', blockMs: 0 })).toThrow(RedisStreamsConfigurationError);
  });
});

describe('RedisStreamsTransport: publish', () => {
  it('writes one entry per message with id, headers and body fields; attempt is never written', async () => {
    const key = fresh('fields');
    const redisStreams = await transport();
    const message = createMessage({ orderId: 42 }, { headers: { 'x-tenant': 'acme', attempt: 3, urgent: true } });
    await redisStreams.publish(parseEndpoint(`redis:stream/${key}`), [message]);
    const [[, fields]] = (await redis.xrange(key, '-', '+')) as [[string, string[]]];
    expect(fields[0]).toBe('id');
    expect(fields[1]).toBe(message.id);
    expect(JSON.parse(fields[3] as string)).toEqual({ timestamp: message.headers.timestamp, 'x-tenant': 'acme', urgent: true });
    expect(JSON.parse(fields[5] as string)).toEqual({ orderId: 42 });
  });

  it('trims with MAXLEN ~ when the endpoint sets maxLen, and keeps everything without it', async () => {
    const [trimmed, kept] = [fresh('trim'), fresh('keep')];
    const redisStreams = await transport();
    for (let batch = 0; batch < 10; batch += 1) {
      await redisStreams.publish(parseEndpoint(`redis:stream/${trimmed}?maxLen=100`), numbered(100));
      await redisStreams.publish(parseEndpoint(`redis:stream/${kept}`), numbered(100));
    }
    const length = await redis.xlen(trimmed);
    // approximate trimming removes whole radix-tree nodes (stream-node-max-entries, 100 by default)
    expect(length).toBeGreaterThanOrEqual(100);
    expect(length).toBeLessThan(300);
    expect(await redis.xlen(kept)).toBe(1000);
  });

  it('fails an unencodable message alone: the others are written, the call rejects with PartialPublishError', async () => {
    const key = fresh('partial');
    const redisStreams = await transport();
    const bad = createMessage({ n: 1 }, { headers: { 'x-bad': Number.NaN } });
    const error = await redisStreams.publish(parseEndpoint(`redis:stream/${key}`), [numbered(1)[0] as Message, bad, numbered(1)[0] as Message]).catch((thrown: unknown) => thrown);
    expect(error).toBeInstanceOf(PartialPublishError);
    expect([...(error as PartialPublishError).failures.keys()]).toEqual([1]);
    expect((error as PartialPublishError).failures.get(1)).toBeInstanceOf(RedisStreamsUnencodableError);
    expect(await redis.xlen(key)).toBe(2);
  });

  it('refuses an entry over maxMessageBytes before sending it', async () => {
    const key = fresh('big');
    const redisStreams = await transport({ maxMessageBytes: 1_000 });
    const error = await redisStreams.publish(parseEndpoint(`redis:stream/${key}`), [createMessage('x'.repeat(2_000))]).catch((thrown: unknown) => thrown);
    expect((error as PartialPublishError).failures.get(0)).toBeInstanceOf(RedisStreamsUnencodableError);
    expect((error as PartialPublishError).failures.get(0)?.message).toMatch(/maxMessageBytes is 1000/);
    expect(await redis.exists(key)).toBe(0);
  });

  it('rejects when Redis refuses the XADD (the key holds another type)', async () => {
    const key = fresh('wrongtype');
    await redis.set(key, 'a string');
    const redisStreams = await transport();
    await expect(redisStreams.publish(parseEndpoint(`redis:stream/${key}`), numbered(1))).rejects.toThrow(/WRONGTYPE/);
  });
});

describe('RedisStreamsTransport: consumer groups', () => {
  it('creates the group with MKSTREAM from the first entry, and XACKs only once the delivery is settled', async () => {
    const key = fresh('ack');
    const redisStreams = await transport();
    await redisStreams.publish(parseEndpoint(`redis:stream/${key}`), numbered(3));
    const got = collect(redisStreams, `redis:stream/${key}?group=g`);
    await until(() => got.length === 3, () => `expected 3 deliveries, got ${got.length}`);
    expect((await redis.xpending(key, 'g'))[0]).toBe(3);
    got[0]?.ack();
    await until(async () => (await redis.xpending(key, 'g'))[0] === 2, () => 'the ack did not XACK the entry');
    for (const delivery of got) delivery.ack();
    await until(async () => (await redis.xpending(key, 'g'))[0] === 0, () => 'the acks did not XACK every entry');
  });

  it('start=$ makes a new group skip what the stream already holds', async () => {
    const key = fresh('start');
    const redisStreams = await transport();
    await redisStreams.publish(parseEndpoint(`redis:stream/${key}`), numbered(2));
    const got = collect(redisStreams, `redis:stream/${key}?group=late&start=$&headers=all`, (delivery) => delivery.ack());
    await until(async () => ((await redis.xinfo('GROUPS', key)) as unknown[]).length === 1, () => 'the group was not created');
    const [later] = numbered(1);
    await redisStreams.publish(parseEndpoint(`redis:stream/${key}`), [later as Message]);
    await until(() => got.length === 1, () => 'the entry added after the group was not delivered');
    await sleep(150);
    expect(got.map((delivery) => delivery.message.id)).toEqual([later?.id]);
  });

  it('dead-letters after maxDeliveries nacks to <key>:dead with the reason, then XACKs the entry', async () => {
    const key = fresh('dlq');
    const redisStreams = await transport();
    const [sent] = numbered(1);
    await redisStreams.publish(parseEndpoint(`redis:stream/${key}`), [sent as Message]);
    const got = collect(redisStreams, `redis:stream/${key}?group=g&maxDeliveries=3&headers=all`, (delivery) => delivery.nack(new Error(`refused at attempt ${String(delivery.message.headers.attempt)}`)));
    await until(async () => (await redis.xlen(`${key}:dead`)) === 1, () => `nothing dead-lettered after ${got.length} deliveries`);
    expect(got.map((delivery) => delivery.message.headers.attempt)).toEqual([1, 2, 3]);
    expect(got.every((delivery) => delivery.message.id === sent?.id)).toBe(true);
    await until(async () => (await redis.xpending(key, 'g'))[0] === 0, () => 'the dead-lettered entry is still pending');

    const dead = collect(redisStreams, `redis:stream/${key}:dead?group=audit&headers=all`, (delivery) => delivery.ack());
    await until(() => dead.length === 1, () => 'the dead letter was not consumed');
    const letter = dead[0]?.message as Message;
    expect(letter.id).toBe(sent?.id);
    expect(letter.body).toEqual(sent?.body);
    expect(letter.headers['x-test']).toBe('m0');
    expect(letter.headers[DeadLetterHeaders.reason]).toBe('refused at attempt 3');
    expect(letter.headers[DeadLetterHeaders.attempts]).toBe(3);
    expect(letter.headers[DEAD_LETTER_SOURCE]).toMatch(new RegExp(`^${key}/\\d+-\\d+$`));
    await sleep(150);
    expect(got).toHaveLength(3);
  });

  it('dead-letters an undecodable entry at once (to ?deadLetter=), and goes on with the next', async () => {
    const key = fresh('undecodable');
    const deadKey = fresh('undecodable-dead');
    await redis.xadd(key, '*', 'id', 'broken-1', 'headers', 'not json', 'body', '{}');
    const redisStreams = await transport();
    const [good] = numbered(1);
    await redisStreams.publish(parseEndpoint(`redis:stream/${key}`), [good as Message]);
    const got = collect(redisStreams, `redis:stream/${key}?group=g&deadLetter=${deadKey}&headers=all`, (delivery) => delivery.ack());
    await until(() => got.length === 1, () => 'the good entry was not delivered');
    expect(got[0]?.message.id).toBe(good?.id);
    await until(async () => (await redis.xlen(deadKey)) === 1, () => 'the undecodable entry was not dead-lettered');
    const [[, fields]] = (await redis.xrange(deadKey, '-', '+')) as [[string, string[]]];
    expect(fields.slice(0, 6)).toEqual(['id', 'broken-1', 'headers', 'not json', 'body', '{}']);
    expect(fields[fields.indexOf(DeadLetterHeaders.reason) + 1]).toMatch(/headers field is not JSON/);
    await until(async () => (await redis.xpending(key, 'g'))[0] === 0, () => 'the undecodable entry is still pending');
  });

  it('a consumer that restarts under the same name re-reads its own pending entries at once (attempt 2), after a SIGKILL', async () => {
    const key = fresh('crash-same');
    const redisStreams = await transport();
    const sent = numbered(5);
    await redisStreams.publish(parseEndpoint(`redis:stream/${key}`), sent);
    const child = new ChildScript(fileURLToPath(new URL('./redis-streams-crash-child.ts', import.meta.url)), [url, key, 'g', 'stable', '3']);
    try {
      await until(() => child.lines.filter((line) => line.startsWith('got ')).length === 3, () => `the child took ${child.lines.join(' | ')}`, 20_000);
    } finally {
      await child.kill();
    }
    const taken = child.lines.filter((line) => line.startsWith('got ')).map((line) => line.split(' ')[1]);
    // the same consumer name, and a minIdleMs far away: only its own pending list can bring them back now
    const got = collect(redisStreams, `redis:stream/${key}?group=g&consumer=stable&minIdleMs=3600000`, (delivery) => delivery.ack());
    await until(() => got.length === 5, () => `expected 5 deliveries, got ${got.length}`);
    const attempts = new Map(got.map((delivery) => [delivery.message.id, delivery.message.headers.attempt]));
    for (const id of taken) expect(attempts.get(id as string)).toBe(2);
    // without headers=all (the child's and this endpoint's default) a message's id is <key>/<entry id>
    const entryIds = ((await redis.xrange(key, '-', '+')) as [string, string[]][]).map(([entryId]) => `${key}/${entryId}`);
    expect(new Set(got.map((delivery) => delivery.message.id))).toEqual(new Set(entryIds));
    await until(async () => (await redis.xpending(key, 'g'))[0] === 0, () => 'entries still pending');
  });

  it("another consumer claims a killed consumer's pending entries once they are idle for minIdleMs (XAUTOCLAIM)", async () => {
    const key = fresh('crash-other');
    const redisStreams = await transport({ claimIntervalMs: 50 });
    const sent = numbered(4);
    await redisStreams.publish(parseEndpoint(`redis:stream/${key}`), sent);
    const child = new ChildScript(fileURLToPath(new URL('./redis-streams-crash-child.ts', import.meta.url)), [url, key, 'g', 'doomed', '2']);
    try {
      await until(() => child.lines.filter((line) => line.startsWith('got ')).length === 2, () => `the child took ${child.lines.join(' | ')}`, 20_000);
    } finally {
      await child.kill();
    }
    const got = collect(redisStreams, `redis:stream/${key}?group=g&consumer=survivor&minIdleMs=300`, (delivery) => delivery.ack());
    await until(() => got.length === 4, () => `expected 4 deliveries, got ${got.length}`);
    const claimed = got.filter((delivery) => delivery.message.headers.attempt === 2).map((delivery) => delivery.message.id);
    const taken = child.lines.filter((line) => line.startsWith('got ')).map((line) => line.split(' ')[1]);
    expect(new Set(claimed)).toEqual(new Set(taken));
    await until(async () => (await redis.xpending(key, 'g'))[0] === 0, () => 'entries still pending');
  });

  it('an entry a crashed consumer took more than maxDeliveries times goes to the dead-letter stream without another delivery', async () => {
    const key = fresh('poison');
    const redisStreams = await transport({ claimIntervalMs: 50 });
    await redisStreams.publish(parseEndpoint(`redis:stream/${key}`), numbered(1));
    await redis.xgroup('CREATE', key, 'g', '0');
    // two deliveries to consumers that never settled (as if each crashed on it), then idle far past minIdleMs
    await redis.xreadgroup('GROUP', 'g', 'ghost', 'COUNT', 1, 'STREAMS', key, '>');
    const [[entryId]] = (await redis.xrange(key, '-', '+')) as [[string, string[]]];
    await redis.xclaim(key, 'g', 'ghost-2', 0, entryId, 'IDLE', 100_000_000);
    const got = collect(redisStreams, `redis:stream/${key}?group=g&maxDeliveries=2&minIdleMs=1000`);
    await until(async () => (await redis.xlen(`${key}:dead`)) === 1, () => 'the poison entry was not dead-lettered');
    const [[, fields]] = (await redis.xrange(`${key}:dead`, '-', '+')) as [[string, string[]]];
    expect(fields[fields.indexOf(DeadLetterHeaders.reason) + 1]).toMatch(/delivered 2 time\(s\) without being settled/);
    expect(got).toHaveLength(0);
  });

  it('entries the route holds past minIdleMs stay with their consumer: another consumer claims none of them', async () => {
    const key = fresh('held');
    const holder = await transport({ claimIntervalMs: 50 });
    const other = await transport({ claimIntervalMs: 50 });
    await holder.publish(parseEndpoint(`redis:stream/${key}`), numbered(2));
    const held = collect(holder, `redis:stream/${key}?group=g&minIdleMs=200`);
    await until(() => held.length === 2, () => 'the holder got nothing');
    const stolen = collect(other, `redis:stream/${key}?group=g&minIdleMs=200`);
    await sleep(1_000); // five times minIdleMs: the holder keeps resetting the idle time of what it holds
    expect(stolen).toHaveLength(0);
    for (const delivery of held) delivery.ack();
    await until(async () => (await redis.xpending(key, 'g'))[0] === 0, () => 'the held entries were not acked');
  });

  it('by default (no headers=all) takes a foreign entry: a stable id from the entry id, only the allow-listed fields, never reserved names', async () => {
    const key = fresh('foreign');
    const entryId = await redis.xadd(key, '*', 'orderId', '42', 'tenant', 'acme', 'x-interchange-route', 'forged', 'contentType', 'text/forged', 'id', 'forged-id');
    const redisStreams = await transport();
    const got = collect(redisStreams, `redis:stream/${key}?group=g&fields=tenant,x-interchange-route,contentType`, (delivery) => delivery.ack());
    await until(() => got.length === 1, () => 'the foreign entry was not delivered');
    const message = got[0]?.message as Message;
    expect(message.id).toBe(`${key}/${entryId}`);
    expect(message.headers).toEqual({ tenant: 'acme', attempt: 1, redisEntryId: entryId });
    expect(message.body).toEqual({ orderId: '42', tenant: 'acme', 'x-interchange-route': 'forged', contentType: 'text/forged' });
  });

  it('a Buffer body and a text body round-trip as they were sent', async () => {
    const key = fresh('bodies');
    const redisStreams = await transport();
    const bytes = Buffer.from([0, 1, 2, 255, 254]);
    await redisStreams.publish(parseEndpoint(`redis:stream/${key}`), [createMessage(bytes), createMessage('héllo', { headers: { contentType: 'text/plain' } })]);
    const got = collect(redisStreams, `redis:stream/${key}?group=g&headers=all`, (delivery) => delivery.ack());
    await until(() => got.length === 2, () => 'the entries were not delivered');
    expect(Buffer.compare(got[0]?.message.body as Buffer, bytes)).toBe(0);
    expect(got[0]?.message.headers.contentType).toBe('application/octet-stream');
    expect(got[1]?.message.body).toBe('héllo');
  });
});

describe('RedisStreamsTransport: without a group', () => {
  it('reads only entries added after it subscribed, and a nack is not redelivered (at most once)', async () => {
    const key = fresh('tail');
    const redisStreams = await transport();
    await redisStreams.publish(parseEndpoint(`redis:stream/${key}`), numbered(2));
    const got = collect(redisStreams, `redis:stream/${key}?headers=all`, (delivery) => delivery.nack(new Error('no')));
    await sleep(200); // the subscriber has taken the stream's last id as its start
    const later = numbered(3);
    await redisStreams.publish(parseEndpoint(`redis:stream/${key}`), later);
    await until(() => got.length === 3, () => `expected 3 deliveries, got ${got.length}`);
    await sleep(200);
    expect(got.map((delivery) => delivery.message.id)).toEqual(later.map((message) => message.id));
    expect(await redis.xlen(key)).toBe(5);
  });
});

describe('RedisStreamsTransport in a route', () => {
  it('moves entries stream → stream with redisStreamsModule, acking the source after the destination confirmed', async () => {
    const [source, destination] = [fresh('route-in'), fresh('route-out')];
    const { stop } = await startTestIntegration({
      modules: [redisStreamsModule({ url })],
      routes: [from(`redis:stream/${source}?group=route&headers=all`, { id: 'hR-streams-route' }).to(`redis:stream/${destination}`)],
    });
    try {
      const publisher = await transport();
      const sent = numbered(50);
      await publisher.publish(parseEndpoint(`redis:stream/${source}`), sent);
      await until(async () => (await redis.xlen(destination)) === 50, () => 'the route did not move every entry');
      await until(async () => (await redis.xpending(source, 'route'))[0] === 0, () => 'the source entries were not acked');
      const ids = ((await redis.xrange(destination, '-', '+')) as [string, string[]][]).map(([, fields]) => fields[1]);
      expect(ids).toEqual(sent.map((message) => message.id));
    } finally {
      await stop();
    }
  });
});
