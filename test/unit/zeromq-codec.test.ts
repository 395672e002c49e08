import { describe, expect, it } from 'vitest';
import { decodeFrames, encodeFrames, MAX_ENVELOPE_BYTES, resolveZeroMqEndpoint, ZeroMqConfigurationError, ZeroMqDecodeError, ZeroMqUnencodableError } from '../../adapters/zeromq/index.ts';
import { isReservedHeaderName } from '../../adapters/zeromq/zeromq-codec.ts';
import { createMessage, parseEndpoint } from '../../src/core/index.ts';

const MAX = 16 * 1024 * 1024;

describe('zeromq codec', () => {
  it('round-trips id, typed headers and body through [envelope, body]; attempt and zmqTopic are never written', () => {
    const sent = createMessage({ a: 1 }, { headers: { 'x-n': 2, 'x-b': false, attempt: 4, zmqTopic: 'old' } });
    const frames = encodeFrames(sent, 'pipeline', '', MAX);
    expect(frames).toHaveLength(2);
    expect(JSON.parse(String(frames[0])).headers).not.toHaveProperty('attempt');
    const got = decodeFrames(frames, { pattern: 'pipeline', headers: 'all' });
    expect(got).toEqual({ id: sent.id, body: { a: 1 }, headers: { timestamp: sent.headers.timestamp, 'x-n': 2, 'x-b': false, attempt: 1 } });
  });

  it('pubsub writes the topic first and reads it back as zmqTopic; a Buffer body stays bytes', () => {
    const frames = encodeFrames(createMessage(Buffer.from([0, 255])), 'pubsub', 'orders.eu', MAX);
    expect(String(frames[0])).toBe('orders.eu');
    const got = decodeFrames(frames, { pattern: 'pubsub', headers: 'standard' }, 3);
    expect(Buffer.compare(got.body as Buffer, Buffer.from([0, 255]))).toBe(0);
    expect(got.headers).toMatchObject({ zmqTopic: 'orders.eu', attempt: 3, contentType: 'application/octet-stream' });
  });

  it('refuses what cannot be written: a non-finite header, an oversized envelope or message', () => {
    expect(() => encodeFrames(createMessage(1, { headers: { 'x-bad': Number.POSITIVE_INFINITY } }), 'pipeline', '', MAX)).toThrow(ZeroMqUnencodableError);
    expect(() => encodeFrames(createMessage(1, { headers: { 'x-big': 'a'.repeat(MAX_ENVELOPE_BYTES) } }), 'pipeline', '', MAX)).toThrow(/limit is 65536/);
    expect(() => encodeFrames(createMessage('b'.repeat(100)), 'pipeline', '', 50)).toThrow(/maxMessageBytes is 50/);
  });

  it('standard drops reserved and mistyped headers and a too-long id; frames it cannot read are ZeroMqDecodeError', () => {
    const envelope = JSON.stringify({ id: 'i'.repeat(2_000), headers: { 'X-Interchange-Error': 'x', replyTo: 'r', expiresAt: 'soon', 'x-ok': 'yes' } });
    const got = decodeFrames([Buffer.from(envelope), Buffer.from('1')], { pattern: 'pipeline', headers: 'standard' });
    expect(got.id).not.toBe('i'.repeat(2_000));
    expect(got.headers).toEqual({ 'x-ok': 'yes', attempt: 1 });
    expect(() => decodeFrames([Buffer.from('[]'), Buffer.from('1')], { pattern: 'pipeline', headers: 'standard' })).toThrow(ZeroMqDecodeError);
    expect(() => decodeFrames([Buffer.from('a'), Buffer.from('b'), Buffer.from('c'), Buffer.from('d')], { pattern: 'pubsub', headers: 'standard' })).toThrow(/1–3 frames/);
  });

  it('standard treats the peer as untrusted: a fresh id, and the names that identify, correlate, trace, expire or type a message are never taken', () => {
    const forged = { id: 'victim-id', correlationId: 'c', causationId: 'k', traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01', tracestate: 't=1', expiresAt: 1, timestamp: 2, priority: 9, schema: 'order@1', type: 'order', Id: 'x', CorrelationID: 'y' };
    const envelope = Buffer.from(JSON.stringify({ id: 'victim-id', headers: { ...forged, contentType: 'text/plain', 'x-tenant': 'acme' } }));
    const first = decodeFrames([envelope, Buffer.from('hi')], { pattern: 'pipeline', headers: 'standard' });
    const second = decodeFrames([envelope, Buffer.from('hi')], { pattern: 'pipeline', headers: 'standard' });
    expect(first.id).not.toBe('victim-id');
    expect(second.id).not.toBe(first.id);
    // contentType describes the body frame: taken (it decides how the body is read), and nothing else of the list
    expect(first.headers).toEqual({ contentType: 'text/plain', 'x-tenant': 'acme', attempt: 1 });
    expect(first.body).toBe('hi');
    for (const name of Object.keys(forged)) expect(isReservedHeaderName(name)).toBe(true);
    // headers=all (a trusted Interchange peer) keeps them all
    const trusted = decodeFrames([envelope, Buffer.from('hi')], { pattern: 'pipeline', headers: 'all' });
    expect(trusted.id).toBe('victim-id');
    expect(trusted.headers).toMatchObject({ ...forged, 'x-tenant': 'acme' });
  });
});

describe('zeromq endpoints', () => {
  it('defaults: the consumer binds a pipeline, the publisher binds pubsub; bind= turns a side around', () => {
    const defaults = { hwm: 1000, maxDeliveries: 5 };
    expect(resolveZeroMqEndpoint(parseEndpoint('zmq:tcp://127.0.0.1:5555'), defaults)).toMatchObject({ pattern: 'pipeline', consumerBinds: true, publisherBinds: false, hwm: 1000 });
    expect(resolveZeroMqEndpoint(parseEndpoint('zmq:ipc:///tmp/x.sock?pattern=pubsub&topic=a'), defaults)).toMatchObject({ pattern: 'pubsub', consumerBinds: false, publisherBinds: true, topic: 'a' });
    expect(resolveZeroMqEndpoint(parseEndpoint('zmq:inproc://q?bind=false&hwm=7'), defaults)).toMatchObject({ consumerBinds: false, publisherBinds: false, hwm: 7 });
    expect(() => resolveZeroMqEndpoint(parseEndpoint('zmq:tcp://127.0.0.1:5555?hwn=5'), defaults)).toThrow(/did you mean 'hwm'/);
    expect(() => resolveZeroMqEndpoint(parseEndpoint('zmq:tcp://127.0.0.1'), defaults)).toThrow(ZeroMqConfigurationError);
  });
});
