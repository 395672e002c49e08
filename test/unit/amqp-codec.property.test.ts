import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Headers, Message } from '../../src/core/index.ts';
import { BROKER_HEADERS } from '../../adapters/amqp/amqp-broker-headers.ts';
import { encodeMessage } from '../../adapters/amqp/amqp-codec.ts';
import { AmqpUnencodableError } from '../../adapters/amqp/amqp-errors.ts';
import { amqplibRoundTrip } from '../support/amqp-wire.ts';

// Property tests: whatever a message carries — names of any length and script, numbers of any
// size, NaN, ±Infinity — encodeMessage either refuses it with AmqpUnencodableError, or produces
// properties amqplib's own encoder takes (so channel.publish cannot throw) and that RabbitMQ takes
// (no non-finite double, an expiration and priority in range). Never anything else.

const lone = fc.integer({ min: 0xd800, max: 0xdfff }).map((code) => String.fromCharCode(code));
/** Any text: ASCII, any Unicode code point (1–4 bytes of UTF-8), lone surrogates. */
const text = (maxLength: number): fc.Arbitrary<string> =>
  fc.oneof(fc.string({ maxLength }), fc.string({ unit: 'binary', maxLength }), fc.string({ unit: fc.oneof(fc.constant('é'), fc.constant('€'), lone), maxLength }));
/** Around the 255-byte short-string limit, in any script. */
const nearLimit = fc.oneof(
  { weight: 12, arbitrary: text(20) },
  { weight: 1, arbitrary: text(140) },
  { weight: 1, arbitrary: fc.integer({ min: 250, max: 260 }).map((bytes) => 'a'.repeat(bytes)) },
  { weight: 1, arbitrary: fc.integer({ min: 83, max: 87 }).map((count) => '€'.repeat(count)) },
);
const special = fc.constantFrom(Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, -1e300, 1e300, -0, 2 ** 63, -(2 ** 63), -(2 ** 63) - 2048, 2 ** 50 + 0.5, -(2 ** 52) - 0.5, 2 ** 53, Number.MAX_VALUE, Number.MIN_VALUE);
const number = fc.oneof({ weight: 3, arbitrary: fc.integer() }, { weight: 3, arbitrary: fc.double() }, { weight: 1, arbitrary: fc.maxSafeInteger() }, { weight: 1, arbitrary: special });
const value = fc.oneof(
  { weight: 3, arbitrary: text(60) },
  { weight: 3, arbitrary: number },
  { weight: 1, arbitrary: fc.boolean() },
  // big enough, alone or together, to cross the headers-table limit (and amqplib's 64 KiB buffer) now and then
  { weight: 1, arbitrary: fc.integer({ min: 0, max: 40_000 }).map((length) => 'v'.repeat(length)) },
  { weight: 1, arbitrary: fc.integer({ min: 63_900, max: 65_600 }).map((length) => 'v'.repeat(length)) },
);
const name = fc.oneof({ weight: 4, arbitrary: nearLimit }, { weight: 1, arbitrary: fc.constantFrom(...BROKER_HEADERS, 'timestamp', 'expiresAt', 'priority', 'attempt') });
const maybe = <T>(arbitrary: fc.Arbitrary<T>): fc.Arbitrary<T | undefined> => fc.option(arbitrary, { nil: undefined });

const message = fc
  .record({
    id: fc.oneof(fc.uuid(), nearLimit),
    headers: fc.dictionary(name, value, { maxKeys: 6 }),
    correlationId: maybe(nearLimit),
    replyTo: maybe(nearLimit),
    type: maybe(nearLimit),
    priority: maybe(fc.oneof({ weight: 4, arbitrary: fc.integer({ min: -1, max: 256 }) }, { weight: 1, arbitrary: number })),
    timestamp: maybe(fc.oneof({ weight: 4, arbitrary: fc.date({ min: new Date(0), noInvalidDate: true }).map((date) => date.getTime()) }, { weight: 1, arbitrary: number }, { weight: 1, arbitrary: fc.constantFrom(2 ** 53 * 1000, -1, 0) })),
    expiresAt: maybe(fc.oneof({ weight: 4, arbitrary: fc.integer({ min: -1e6, max: 2 ** 32 + 10_000 }).map((offset) => Date.now() + offset) }, { weight: 1, arbitrary: number })),
    body: fc.oneof({ weight: 4, arbitrary: fc.jsonValue({ maxDepth: 2 }) }, { weight: 1, arbitrary: fc.integer({ min: 995, max: 1_002 }).map((size) => Buffer.alloc(size)) }),
    brokerHeaders: maybe(fc.subarray([...BROKER_HEADERS])),
  })
  .map(({ id, headers, brokerHeaders, body, ...known }) => {
    const all: Record<string, unknown> = { ...headers };
    for (const [key, field] of Object.entries(known)) if (field !== undefined) all[key] = field;
    return { message: { id, headers: all as Headers, body } satisfies Message, allowed: brokerHeaders === undefined ? undefined : new Set(brokerHeaders) };
  });

const brokerHeaderNames = new Set(BROKER_HEADERS);

/** A string as it reads back from UTF-8 (a lone surrogate becomes U+FFFD; that is UTF-8, not truncation). */
function wire(text: string): string {
  return Buffer.from(text, 'utf8').toString('utf8');
}

/** A header value as it reads back from the wire. */
function wireValue(value: unknown): unknown {
  if (typeof value === 'string') return wire(value);
  if (Array.isArray(value)) return value.map((item) => wire(String(item)));
  return value;
}

describe('AMQP encodeMessage (property tests against amqplib\'s encoder)', () => {
  it('every message either encodes into properties amqplib and RabbitMQ take, or is refused with AmqpUnencodableError', () => {
    fc.assert(
      fc.property(message, ({ message: subject, allowed }) => {
        let encoded;
        try {
          encoded = encodeMessage(subject, { persistent: true, mandatory: true, maxMessageBytes: 1_000, brokerHeaders: allowed });
        } catch (error) {
          expect(error).toBeInstanceOf(AmqpUnencodableError);
          return;
        }
        const read = amqplibRoundTrip(encoded);
        // what amqplib wrote is what encodeMessage meant: nothing truncated on the way
        const table = new Map(Object.entries(encoded.properties.headers as Record<string, unknown>).map(([key, meant]) => [wire(key), meant]));
        expect(Object.keys(read.headers as object).sort()).toEqual([...table.keys()].sort());
        for (const [key, sent] of Object.entries(read.headers as Record<string, unknown>)) {
          const meant = table.get(key);
          if (typeof meant === 'number') {
            expect(Number.isFinite(sent)).toBe(true); // RabbitMQ closes the connection on an infinite or NaN double
            expect(sent === meant || (sent === 0 && meant === 0)).toBe(true);
          } else {
            expect(sent).toEqual(wireValue(meant));
          }
          if (brokerHeaderNames.has(key)) expect(allowed?.has(key)).toBe(true);
        }
        expect(read.messageId).toBe(wire(subject.id));
        const expiration = read.expiration as string | undefined;
        if (expiration !== undefined) expect(/^\d+$/.test(expiration) && Number(expiration) <= 0xffffffff).toBe(true);
        const priority = read.priority as number | undefined;
        if (priority !== undefined) expect(Number.isInteger(priority) && priority >= 0 && priority <= 255).toBe(true);
      }),
      { numRuns: 2_000 },
    );
  });
});
