import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createMessage, parseEndpoint, silentLogger, UnencodableMessageError, type Headers, type Message } from '../../src/core/index.ts';
import { encodeMessage, type EncodeSettings } from '../../adapters/amqp/amqp-codec.ts';
import { resolveTarget } from '../../adapters/amqp/amqp-endpoint.ts';
import { AmqpConfigurationError, AmqpTransport, AmqpUnencodableError, DEFAULT_MAX_MESSAGE_BYTES, MAX_HEADER_TABLE_BYTES } from '../../adapters/amqp/index.ts';
import { amqplibRoundTrip } from '../support/amqp-wire.ts';

// Every limit encodeMessage enforces, at its edge: the last value that encodes (and that amqplib's
// own encoder then takes) and the first that is refused with AmqpUnencodableError.

const settings: EncodeSettings = { persistent: true, mandatory: true };
const NOW = 1_750_000_000_000;

function message(headers: Record<string, unknown>, body: unknown = { v: 1 }, id = 'm-1'): Message {
  return { id, headers: headers as Headers, body };
}

/** Encodes, and checks that amqplib's encoder takes the result; returns what amqplib reads back. */
function accepted(subject: Message, with_: EncodeSettings = settings): Record<string, unknown> {
  return amqplibRoundTrip(encodeMessage(subject, with_));
}

function refused(subject: Message, with_: EncodeSettings = settings): AmqpUnencodableError {
  try {
    encodeMessage(subject, with_);
  } catch (error) {
    expect(error).toBeInstanceOf(AmqpUnencodableError);
    return error as AmqpUnencodableError;
  }
  throw new Error('expected AmqpUnencodableError, but the message encoded');
}

/** `bytes` bytes of UTF-8 made of 2-byte characters (plus one ASCII one for odd counts): the limit is in bytes, not characters. */
function utf8(bytes: number): string {
  return 'é'.repeat(Math.floor(bytes / 2)) + (bytes % 2 === 1 ? 'a' : '');
}

beforeEach(() => {
  vi.useFakeTimers({ toFake: ['Date'] });
  vi.setSystemTime(NOW);
});
afterEach(() => {
  vi.useRealTimers();
});

describe('encodeMessage limits', () => {
  it('refuses with a permanent AMQP_UNENCODABLE error naming the id (cut to 64 chars), the field and the limit', () => {
    const error = refused(message({ correlationId: 'c'.repeat(300) }, {}, 'i'.repeat(200)));
    expect(error).toBeInstanceOf(UnencodableMessageError);
    expect(error.code).toBe('AMQP_UNENCODABLE');
    expect(error.permanent).toBe(true);
    expect(error.message).toContain(`'${'i'.repeat(64)}…'`);
    expect(error.message).not.toContain('i'.repeat(65));
    expect(error.message).toMatch(/correlationId is 300 bytes .* at most 255/);
  });

  it.each(['correlationId', 'replyTo', 'type', 'contentType'])('%s: 255 bytes of UTF-8 encode, 256 are refused', (name) => {
    const body = name === 'contentType' ? 'text' : { v: 1 };
    expect(accepted(message({ [name]: utf8(255) }, body))[name]).toBe(utf8(255));
    expect(refused(message({ [name]: utf8(256) }, body)).field).toBe(name);
  });

  it('message id: 255 bytes of UTF-8 encode, 256 are refused', () => {
    expect(accepted(message({}, {}, utf8(255))).messageId).toBe(utf8(255));
    expect(refused(message({}, {}, utf8(256))).field).toBe('messageId');
  });

  it('a short-string property of the wrong type is refused', () => {
    expect(refused(message({ correlationId: 42 })).field).toBe('correlationId');
    expect(refused(message({ replyTo: true })).field).toBe('replyTo');
  });

  it('header name: 255 bytes of UTF-8 encode, 256 are refused', () => {
    expect(accepted(message({ [utf8(255)]: 'v' })).headers).toEqual({ [utf8(255)]: 'v' });
    expect(refused(message({ [utf8(256)]: 'v' })).message).toMatch(/name of 256 bytes/);
  });

  it(`headers table: ${MAX_HEADER_TABLE_BYTES} encoded bytes encode, one more is refused`, () => {
    // 4 (table length) + 1 + 1 (name) + 1 (tag) + 4 (string length) + value
    const fits = MAX_HEADER_TABLE_BYTES - 11;
    expect((accepted(message({ h: 'a'.repeat(fits) })).headers as Record<string, string>).h).toHaveLength(fits);
    expect(refused(message({ h: 'a'.repeat(fits + 1) })).message).toMatch(new RegExp(`headers encode to ${MAX_HEADER_TABLE_BYTES + 1} bytes`));
  });

  it('headers table: counts numbers and booleans by the size amqplib writes them in', () => {
    // 4 + 'h' string entry (7 + value) + 2-byte-name entries: 'b' boolean 3+1, 'n' int64 3+8
    const fits = MAX_HEADER_TABLE_BYTES - 4 - 4 - 11 - 7;
    expect(() => accepted(message({ h: 'a'.repeat(fits), b: true, n: 2 ** 40 }))).not.toThrow();
    expect(refused(message({ h: 'a'.repeat(fits + 1), b: true, n: 2 ** 40 })).field).toBe('headers');
    // a one-byte number leaves room for 7 more bytes
    expect(() => accepted(message({ h: 'a'.repeat(fits + 7), b: true, n: 5 }))).not.toThrow();
  });

  it.each([
    ['NaN', Number.NaN],
    ['Infinity', Number.POSITIVE_INFINITY],
    ['-Infinity', Number.NEGATIVE_INFINITY],
    ['-1e300', -1e300],
    ['the first double below -2^63', -(2 ** 63) - 2048],
    ['2^50 + 0.5 (amqplib writes it as int64)', 2 ** 50 + 0.5],
    ['-(2^51 + 0.5)', -(2 ** 51 + 0.5)],
  ])('a header number %s is refused', (_, value) => {
    expect(refused(message({ n: value })).field).toBe("header 'n'");
  });

  it.each([
    ['-2^63', -(2 ** 63)],
    ['1e300 (a double)', 1e300],
    ['2^63 (a double)', 2 ** 63],
    ['2^50 - 0.5 (a double)', 2 ** 50 - 0.5],
    ['2^53 (an int64)', 2 ** 53],
    ['-0', -0],
  ])('a header number %s encodes', (_, value) => {
    expect(accepted(message({ n: value })).headers).toHaveProperty('n');
  });

  it('a header value that is not a string, number or boolean is refused', () => {
    expect(refused(message({ h: null })).message).toMatch(/is null/);
    expect(refused(message({ h: { nested: 1 } })).message).toMatch(/is a object/);
    expect(refused(message({ h: 10n })).message).toMatch(/is a bigint/);
  });

  it('priority: 0 and 255 encode; 256, -1 and 1.5 are refused', () => {
    expect(accepted(message({ priority: 0 })).priority).toBe(0);
    expect(accepted(message({ priority: 255 })).priority).toBe(255);
    for (const priority of [256, -1, 1.5]) expect(refused(message({ priority })).field).toBe('priority');
  });

  it('timestamp: 0 and 2^53 s encode; before 1970 and after 2^53 s are refused', () => {
    expect(accepted(message({ timestamp: 0 })).timestamp).toBe(0);
    expect(accepted(message({ timestamp: 2 ** 53 * 1000 })).timestamp).toBe(2 ** 53);
    expect(refused(message({ timestamp: -1 })).field).toBe('timestamp');
    expect(refused(message({ timestamp: 2 ** 54 * 1000 })).field).toBe('timestamp');
  });

  it('a non-numeric timestamp (a foreign publisher\'s) stays a header and sets no property', () => {
    const read = accepted(message({ timestamp: 'yesterday' }));
    expect(read.timestamp).toBeUndefined();
    expect(read.headers).toEqual({ timestamp: 'yesterday' });
  });

  it('expiresAt: 2^32 - 1 ms away encodes, 2^32 ms away is refused', () => {
    expect(accepted(message({ expiresAt: NOW + 0xffffffff })).expiration).toBe('4294967295');
    expect(refused(message({ expiresAt: NOW + 2 ** 32 })).field).toBe('expiresAt');
  });

  it('expiresAt: in the past expires at once (expiration 0)', () => {
    expect(accepted(message({ expiresAt: NOW - 5_000 })).expiration).toBe('0');
  });

  it.each([
    ['1e300', 1e300],
    ['NaN', Number.NaN],
    ['-Infinity', Number.NEGATIVE_INFINITY],
    ['a string', 'tomorrow'],
  ])('expiresAt %s is refused', (_, expiresAt) => {
    expect(() => encodeMessage(message({ expiresAt }), settings)).toThrow(AmqpUnencodableError);
  });

  it('body: maxMessageBytes encode, one more byte is refused', () => {
    const limited = { ...settings, maxMessageBytes: 1_000 };
    expect(() => encodeMessage(message({}, Buffer.alloc(1_000)), limited)).not.toThrow();
    expect(refused(message({}, Buffer.alloc(1_001)), limited).message).toMatch(/body is 1001 bytes; maxMessageBytes is 1000/);
  });

  it('body: the default limit is 16 MiB', () => {
    expect(DEFAULT_MAX_MESSAGE_BYTES).toBe(16 * 1024 * 1024);
    expect(refused(message({}, Buffer.alloc(DEFAULT_MAX_MESSAGE_BYTES + 1))).field).toBe('body');
  });

  it('body: one that cannot be serialised as JSON is refused', () => {
    const circular: Record<string, unknown> = {};
    circular.self = circular;
    expect(refused(message({}, circular)).field).toBe('body');
    expect(refused(message({}, { n: 1n })).field).toBe('body');
  });

  it('body: a non-string body with a text content type is refused', () => {
    expect(refused(message({ contentType: 'text/plain' }, { v: 1 })).field).toBe('body');
  });
});

describe('encodeMessage broker headers', () => {
  const steering = { CC: 'other-queue', BCC: 'secret-queue', 'x-delay': 60_000, 'x-death': 'forged', 'x-first-death-queue': 'q', 'x-received-from': 'up', 'x-stream-filter-value': 'f', 'x-deduplication-header': 'd' };

  it('drops CC, BCC, x-delay, x-death and the other broker headers by default; keeps the rest', () => {
    const read = accepted(message({ ...steering, cc: 'plain', 'x-user': 'u' }));
    expect(read.headers).toEqual({ cc: 'plain', 'x-user': 'u' });
  });

  it('keeps the broker headers the endpoint allows (brokerHeaders), CC as the array of routing keys RabbitMQ needs', () => {
    const read = accepted(message(steering), { ...settings, brokerHeaders: new Set(['CC', 'x-delay']) });
    expect(read.headers).toEqual({ CC: ['other-queue'], 'x-delay': 60_000 });
  });

  it('an allowed CC is split on commas; each routing key is a short string', () => {
    const allowCc = { ...settings, brokerHeaders: new Set(['CC']) };
    expect(accepted(message({ CC: 'a,b' }), allowCc).headers).toEqual({ CC: ['a', 'b'] });
    expect(refused(message({ CC: `a,${'k'.repeat(256)}` }), allowCc).field).toBe("header 'CC' routing key");
  });

  it('?brokerHeaders= on an endpoint is validated and becomes the allow-list', () => {
    expect(resolveTarget(parseEndpoint('amqp:exchange/e?routingKey=k&brokerHeaders=CC,x-delay')).brokerHeaders).toEqual(new Set(['CC', 'x-delay']));
    expect(resolveTarget(parseEndpoint('amqp:queue/q')).brokerHeaders).toBeUndefined();
    expect(() => resolveTarget(parseEndpoint('amqp:queue/q?brokerHeaders=x-user'))).toThrow(AmqpConfigurationError);
    expect(() => resolveTarget(parseEndpoint('amqp:queue/q?brokerHeaders=cc'))).toThrow(AmqpConfigurationError);
  });
});

describe('AMQP options', () => {
  it('maxMessageBytes is validated by the options schema', () => {
    expect(() => new AmqpTransport({ maxMessageBytes: 0 }, silentLogger)).toThrow(AmqpConfigurationError);
    expect(() => new AmqpTransport({ maxMessageBytes: 1.5 }, silentLogger)).toThrow(AmqpConfigurationError);
    expect(() => new AmqpTransport({ maxMessageBytes: 1_000 }, silentLogger)).not.toThrow();
  });

  it('an endpoint routing key over 255 bytes of UTF-8 is refused when the endpoint is resolved', () => {
    expect(() => resolveTarget(parseEndpoint(`amqp:exchange/e?routingKey=${utf8(256)}`))).toThrow(AmqpConfigurationError);
    expect(resolveTarget(parseEndpoint(`amqp:exchange/e?routingKey=${utf8(255)}`)).routingKey).toBe(utf8(255));
  });

  it('createMessage output encodes as before (messageId, content type, persistent)', () => {
    const read = accepted(createMessage({ a: 1 }, { headers: { correlationId: 'c', 'x-n': 3 } }));
    expect(read).toMatchObject({ contentType: 'application/json', correlationId: 'c', deliveryMode: 2, headers: { 'x-n': 3 } });
  });
});
