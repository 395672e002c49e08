import rhea from 'rhea';
import { describe, expect, it } from 'vitest';
import { Amqp10DecodeError, Amqp10UnencodableError, decodeMessage, encodeMessage, MAX_PROPERTIES } from '../../adapters/amqp10/index.ts';
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
