import { describe, expect, it } from 'vitest';
import { Container } from 'inversify';
import { decodeEntry, encodeEntry, ENTRY_ID_HEADER, MAX_HEADERS_BYTES, RedisStreamsDecodeError, RedisStreamsTransport, RedisStreamsUnencodableError, resolveStreamTarget } from '../../adapters/redis/index.ts';
import { environment } from '../../adapters/redis/environment.ts';
import { createMessage, DeadLetterHeaders, Logger, parseEndpoint, silentLogger, type Message } from '../../src/core/index.ts';

const ALL = { headers: 'all', fields: undefined } as const;
const origin = { key: 'orders', entryId: '1-0', attempt: 1 };
const asBuffers = (fields: readonly (string | Buffer)[]): Buffer[] => fields.map((field) => (Buffer.isBuffer(field) ? field : Buffer.from(field)));
const roundTrip = (message: Message): Message => decodeEntry(asBuffers(encodeEntry(message, 1_000_000)), origin, ALL, 1_000_000);

describe('Redis Streams codec: encodeEntry', () => {
  it('round-trips id, typed headers and a JSON body; attempt and redisEntryId are the consumer’s', () => {
    const sent = createMessage({ a: [1, 'b'] }, { headers: { 'x-n': 7, 'x-flag': false, 'x-s': 'text', attempt: 4, [ENTRY_ID_HEADER]: '9-9' } });
    const got = roundTrip(sent);
    expect(got.id).toBe(sent.id);
    expect(got.body).toEqual({ a: [1, 'b'] });
    expect(got.headers).toEqual({ timestamp: sent.headers.timestamp, 'x-n': 7, 'x-flag': false, 'x-s': 'text', attempt: 1, [ENTRY_ID_HEADER]: '1-0' });
  });

  it('refuses, for that message alone, what it cannot write', () => {
    const refuse = (message: Message, max = 1_000_000): unknown => {
      try {
        encodeEntry(message, max);
        return undefined;
      } catch (error) {
        return error;
      }
    };
    expect(refuse({ id: '', headers: {}, body: 1 })).toBeInstanceOf(RedisStreamsUnencodableError);
    expect(refuse({ id: 'x'.repeat(2_000), headers: {}, body: 1 })).toBeInstanceOf(RedisStreamsUnencodableError);
    expect(refuse(createMessage(1, { headers: { 'x-inf': Infinity } }))).toBeInstanceOf(RedisStreamsUnencodableError);
    expect(refuse(createMessage(1, { headers: { 'x-big': 'x'.repeat(MAX_HEADERS_BYTES) } }))).toBeInstanceOf(RedisStreamsUnencodableError);
    const cycle: Record<string, unknown> = {};
    cycle.self = cycle;
    expect(refuse(createMessage(cycle))).toBeInstanceOf(RedisStreamsUnencodableError);
    expect(refuse(createMessage({ a: 1 }, { headers: { contentType: 'text/plain' } }))).toBeInstanceOf(RedisStreamsUnencodableError);
    expect(refuse(createMessage('x'.repeat(100)), 50)).toBeInstanceOf(RedisStreamsUnencodableError);
  });
});

describe('Redis Streams codec: decodeEntry', () => {
  it('dead-letters (throws RedisStreamsDecodeError for) headers that are not a JSON object, an oversize entry, a JSON body that does not parse', () => {
    const decode = (fields: string[], max = 1_000): unknown => {
      try {
        return decodeEntry(asBuffers(fields), origin, ALL, max);
      } catch (error) {
        return error;
      }
    };
    expect(decode(['headers', '[1]', 'body', '1'])).toBeInstanceOf(RedisStreamsDecodeError);
    expect(decode(['body', 'x'.repeat(2_000)])).toBeInstanceOf(RedisStreamsDecodeError);
    expect(decode(['headers', '{"contentType":"application/json"}', 'body', '{oops'])).toBeInstanceOf(RedisStreamsDecodeError);
    // without a content type, a body that is not JSON is the text
    expect((decode(['body', 'plain words']) as Message).body).toBe('plain words');
  });

  it('headers=all reads dead-letter fields typed; headers=none takes only allow-listed, non-reserved fields and a stable id', () => {
    const trusted = decodeEntry(asBuffers(['id', 'm-1', 'body', '1', DeadLetterHeaders.attempts, '3', DeadLetterHeaders.reason, 'boom']), origin, ALL, 1_000);
    expect(trusted.headers[DeadLetterHeaders.attempts]).toBe(3);
    expect(trusted.headers[DeadLetterHeaders.reason]).toBe('boom');
    const foreign = decodeEntry(asBuffers(['id', 'forged', 'headers', '{"x-interchange-route":"r"}', 'site', 'north', 'attempt', '9', DeadLetterHeaders.reason, 'forged']), origin, { headers: 'none', fields: new Set(['site', 'attempt', DeadLetterHeaders.reason]) }, 1_000);
    expect(foreign.id).toBe('orders/1-0');
    expect(foreign.headers).toEqual({ site: 'north', attempt: 1, [ENTRY_ID_HEADER]: '1-0' });
  });
});

describe('Redis Streams endpoint', () => {
  it('resolves key, group, dead-letter stream and defaults', () => {
    expect(resolveStreamTarget(parseEndpoint('redis:stream/a/b:c?group=g&consumer=c1&maxLen=10'))).toMatchObject({ key: 'a/b:c', group: 'g', consumer: 'c1', start: '0', maxLen: 10, deadLetterKey: 'a/b:c:dead' });
    expect(resolveStreamTarget(parseEndpoint('redis:stream/t'))).toMatchObject({ group: undefined, start: '$' });
    expect(() => resolveStreamTarget(parseEndpoint('redis:stream/t?deadLetter=t'))).toThrow(/cannot be the stream itself/);
    expect(() => resolveStreamTarget(parseEndpoint('redis:stream/t?headers=all&fields=a'))).toThrow(/not with headers=all/);
  });

  it('trusts no producer by default: a forged id, headers field and x-interchange-* fields are taken only with an explicit headers=all', () => {
    const forged = asBuffers([
      'id', 'forged-id',
      'headers', JSON.stringify({ replyTo: 'amqp:exchange/evil', receiptTo: 'amqp:exchange/evil', expiresAt: 1, correlationId: 'c', contentType: 'text/plain', 'x-interchange-route': 'r' }),
      DeadLetterHeaders.reason, 'forged',
      'tenant', 'acme',
      'receiptTo', 'amqp:exchange/evil',
      'body', '{"n":1}',
    ]); // prettier-ignore
    const byDefault = resolveStreamTarget(parseEndpoint('redis:stream/orders?group=g'));
    expect(byDefault.inbound.headers).toBe('none');
    const untrusted = decodeEntry(forged, origin, byDefault.inbound, 10_000);
    expect(untrusted.id).toBe('orders/1-0');
    expect(untrusted.headers).toEqual({ attempt: 1, [ENTRY_ID_HEADER]: '1-0' });
    expect(untrusted.body).toEqual({ n: 1 }); // no content type steers it
    // fields= allow-lists without naming headers=none; reserved names (receiptTo too) never pass
    const allowed = resolveStreamTarget(parseEndpoint('redis:stream/orders?group=g&fields=tenant,receiptTo,receiptOn'));
    expect(decodeEntry(forged, origin, allowed.inbound, 10_000).headers).toEqual({ tenant: 'acme', attempt: 1, [ENTRY_ID_HEADER]: '1-0' });
    const trusted = decodeEntry(forged, origin, resolveStreamTarget(parseEndpoint('redis:stream/orders?group=g&headers=all')).inbound, 10_000);
    expect(trusted.id).toBe('forged-id');
    expect(trusted.headers).toMatchObject({ replyTo: 'amqp:exchange/evil', receiptTo: 'amqp:exchange/evil', [DeadLetterHeaders.reason]: 'forged' });
    expect(trusted.body).toBe('{"n":1}'); // text/plain
  });
});

describe('Redis environment for interchange run', () => {
  it('binds the streams transport only when a route uses redis:, to REDIS_URL (redacted in the announcement)', async () => {
    const container = new Container();
    container.bind(Logger).toConstantValue(silentLogger);
    const isBound = (id: Parameters<Container['isBound']>[0]): boolean => container.isBound(id);
    expect(await environment.bind?.({ env: { REDIS_URL: 'redis://u:secret@cache:6379' }, schemes: new Set(['amqp']), isBound })).toBeUndefined();
    const binding = await environment.bind?.({ env: { REDIS_URL: 'redis://u:secret@cache:6379' }, schemes: new Set(['redis']), isBound });
    expect(binding?.announcement).toBe('REDIS_URL is set: redis: endpoints use Redis at redis://u:***@cache:6379');
    container.load(binding?.module as never);
    expect(container.get(RedisStreamsTransport)).toBeInstanceOf(RedisStreamsTransport);
  });
});
