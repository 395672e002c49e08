import rhea from 'rhea';
import { describe, expect, it } from 'vitest';
import { Amqp10DecodeError, Amqp10UnencodableError, decodeMessage, encodeMessage, MAX_BODY_DEPTH, MAX_PROPERTIES } from '../../adapters/amqp10/index.ts';
import { createMessage } from '../../src/core/index.ts';

const settings = { maxBytes: 1024 * 1024, durable: true };
const origin = { address: '/queue/q', attempt: 1, maxBytes: 1024 * 1024 };
const data = (body: unknown): { typecode: number; content: Buffer } => body as { typecode: number; content: Buffer };

describe('amqp10 codec: encode', () => {
  it('maps id, correlation, content type, reply-to, timestamps to AMQP properties; other headers to application properties; JSON in one data section', () => {
    const expiresAt = Date.now() + 60_000;
    const message = createMessage({ a: 1 }, { headers: { correlationId: 'c', replyTo: 'r', expiresAt, attempt: 4, 'x-n': 2, schema: 's@1' } });
    const wire = encodeMessage(message, settings);
    expect(wire.message_id).toBe(message.id);
    expect(wire.correlation_id).toBe('c');
    expect(wire.reply_to).toBe('r');
    expect(wire.content_type).toBe('application/json');
    expect(wire.durable).toBe(true);
    expect((wire.creation_time as Date).getTime()).toBe(message.headers.timestamp);
    expect((wire.absolute_expiry_time as Date).getTime()).toBe(expiresAt);
    expect(wire.ttl).toBeGreaterThan(0);
    expect(wire.application_properties).toEqual({ 'x-n': 2, schema: 's@1' });
    expect(data(wire.body).typecode).toBe(0x75);
    expect(data(wire.body).content.toString()).toBe('{"a":1}');
  });

  it('refuses, per message, what AMQP 1.0 cannot carry or what breaks the bounds', () => {
    expect(() => encodeMessage(createMessage(1, { headers: { 'x-bad': Number.POSITIVE_INFINITY } }), settings)).toThrow(Amqp10UnencodableError);
    expect(() => encodeMessage(createMessage(1, { headers: { correlationId: 5 as unknown as string } }), settings)).toThrow(/correlationId must be a string/);
    expect(() => encodeMessage(createMessage('x'.repeat(2_000)), { maxBytes: 1_000, durable: true })).toThrow(/maxMessageBytes is 1000/);
    const many = Object.fromEntries(Array.from({ length: MAX_PROPERTIES + 1 }, (_, index) => [`p${index}`, index]));
    expect(() => encodeMessage(createMessage(1, { headers: many }), settings)).toThrow(/application properties/);
    expect(() => encodeMessage(createMessage({ n: 1 }, { headers: { contentType: 'text/plain' } }), settings)).toThrow(/needs a string or Buffer body/);
  });
});

describe('amqp10 codec: decode', () => {
  it('round-trips what encode wrote, attempt from the origin', () => {
    const message = createMessage({ a: [1, 'b'] }, { headers: { correlationId: 'c', 'x-t': 'acme' } });
    const back = decodeMessage(encodeMessage(message, settings), { ...origin, attempt: 3 }, { headers: 'all', allowed: undefined });
    expect(back.id).toBe(message.id);
    expect(back.body).toEqual({ a: [1, 'b'] });
    expect(back.headers).toMatchObject({ correlationId: 'c', 'x-t': 'acme', attempt: 3, timestamp: message.headers.timestamp });
  });

  it('untrusted by default: only allow-listed, non-reserved application properties; x-interchange-* never', () => {
    const wire = { message_id: 'm', application_properties: { 'x-a': 'yes', 'x-b': 'no', schema: 'forged', 'x-interchange-reason': 'forged' }, body: 'v' };
    expect(decodeMessage(wire, origin, { headers: 'none', allowed: new Set(['x-a', 'schema', 'x-interchange-reason']) }).headers).toEqual({ 'x-a': 'yes', attempt: 1 });
    expect(decodeMessage(wire, origin, { headers: 'all', allowed: undefined }).headers).toEqual({ 'x-a': 'yes', 'x-b': 'no', schema: 'forged', attempt: 1 });
  });

  it('bodies: data without content type → Buffer, text/* → string, amqp-value as is; a bad JSON body or an oversize one → Amqp10DecodeError', () => {
    expect(Buffer.isBuffer(decodeMessage({ body: rhea.message.data_section(Buffer.from([1])) }, origin, { headers: 'none', allowed: undefined }).body)).toBe(true);
    expect(decodeMessage({ content_type: 'text/plain', body: rhea.message.data_section(Buffer.from('hi')) }, origin, { headers: 'none', allowed: undefined }).body).toBe('hi');
    expect(decodeMessage({ body: { k: 1 } }, origin, { headers: 'none', allowed: undefined }).body).toEqual({ k: 1 });
    expect(() => decodeMessage({ content_type: 'application/json', body: rhea.message.data_section(Buffer.from('{')) }, origin, { headers: 'none', allowed: undefined })).toThrow(Amqp10DecodeError);
    expect(() => decodeMessage({ body: rhea.message.data_section(Buffer.alloc(20)) }, { ...origin, maxBytes: 10 }, { headers: 'none', allowed: undefined })).toThrow(/maxMessageBytes is 10/);
  });

  it('ids of other AMQP types become text; a missing id gets <address>/<uuid>', () => {
    expect(decodeMessage({ message_id: 42, body: 'x' }, origin, { headers: 'none', allowed: undefined }).id).toBe('42');
    expect(decodeMessage({ body: 'x' }, origin, { headers: 'none', allowed: undefined }).id).toMatch(/^\/queue\/q\/[0-9a-f-]{36}$/);
  });
});

describe('amqp10 codec: amqp-value and amqp-sequence bodies from untrusted producers', () => {
  const types = rhea.types;
  const decodeValue = (body: unknown, maxBytes = 1024 * 1024): unknown =>
    decodeMessage(rhea.message.decode(rhea.message.encode({ message_id: 'v', body })) as never, { ...origin, maxBytes }, { headers: 'none', allowed: undefined }).body;

  it("refuses a map with a '__proto__' or 'constructor' key (rhea would make the first the body's prototype)", () => {
    const forged = types.wrap_map({});
    forged.value = [types.wrap_string('__proto__'), types.wrap_map({ isAdmin: true }), types.wrap_string('ok'), types.wrap_int(1)];
    expect(() => decodeValue(forged)).toThrow(/__proto__/);
    expect(() => decodeValue(types.wrap_map({ constructor: 1 }))).toThrow(Amqp10DecodeError);
    const nested = types.wrap_list([types.wrap_map({ a: types.wrap_map({ constructor: 'x' }) })]);
    expect(() => decodeValue(nested)).toThrow(/constructor/);
  });

  it('copies maps and lists into plain data: timestamps → epoch ms, described values → their value, binary → Buffer', () => {
    const body = decodeValue(types.wrap_list([types.wrap_map({ a: 1 }), types.wrap_timestamp(1000), types.described(types.wrap_ulong(77), types.wrap_string('d')), types.wrap_binary(Buffer.from('ab'))])) as unknown[];
    expect(body.slice(0, 3)).toEqual([{ a: 1 }, 1000, 'd']);
    expect(Object.getPrototypeOf(body[0])).toBe(Object.prototype);
    expect(Buffer.isBuffer(body[3])).toBe(true);
    const sequence = decodeMessage(rhea.message.decode(rhea.message.encode({ body: rhea.message.sequence_section([1, 'two']) })) as never, origin, { headers: 'none', allowed: undefined }).body;
    expect(sequence).toEqual([1, 'two']);
  });

  it('refuses bodies nested deeper than MAX_BODY_DEPTH or over maxMessageBytes, binary and lists included', () => {
    let deep: unknown = types.wrap_int(1);
    for (let level = 0; level < MAX_BODY_DEPTH + 1; level += 1) deep = types.wrap_list([deep]);
    expect(() => decodeValue(deep)).toThrow(/deeper than/);
    expect(() => decodeValue(types.wrap_binary(Buffer.alloc(2048)), 1024)).toThrow(/maxMessageBytes/);
    expect(() => decodeValue(types.wrap_list(Array.from({ length: 300 }, () => types.wrap_string('0123456789'))), 1024)).toThrow(/maxMessageBytes/);
  });

  it('turns bigints beyond the safe integers into decimal strings, safe ones into numbers', () => {
    const raw = { message_id: 'b', body: [2n ** 60n, 5n, { n: -(2n ** 60n) }] };
    expect(decodeMessage(raw as never, origin, { headers: 'none', allowed: undefined }).body).toEqual(['1152921504606846976', 5, { n: '-1152921504606846976' }]);
  });
});
