import { describe, expect, it } from 'vitest';
import { decodeFrame, encodeFrame, resolveStompTarget, StompConfigurationError, StompDecodeError, StompUnencodableError, deadLetterHeaders } from '../../adapters/stomp/index.ts';
import { createMessage, parseEndpoint } from '../../src/core/index.ts';

const all = { outbound: 'all', persistent: true } as const;
const trusted = { inbound: 'all', allowHeaders: undefined } as const;

describe('STOMP codec', () => {
  it('writes headers brokers act on as ic-h-<name>, types numbers, booleans and strings the client would alter', () => {
    const message = createMessage({ a: 1 }, { headers: { type: 'order', priority: 3, timestamp: 5, 'x-ok': true, padded: ' x ', path: 'C:\\n', 'ic-own': 'y', attempt: 4 } });
    const { headers, body } = encodeFrame(message, all, 1024);
    expect(headers).toMatchObject({ 'content-type': 'application/json', persistent: 'true', 'ic-id': message.id, 'ic-h-type': 'order', 'ic-h-priority': '3', 'ic-h-timestamp': '5', 'x-ok': 'true', padded: '%20x%20', path: 'C%3A%5Cn', 'ic-h-ic-own': 'y' });
    expect(headers.attempt).toBeUndefined();
    expect(headers.type).toBeUndefined();
    expect(Buffer.from(body).toString()).toBe('{"a":1}');
    const back = decodeFrame({ ...headers, 'message-id': 'broker-1', destination: '/queue/q', subscription: 's', ack: 'a', redelivered: 'false' }, body, { attempt: 2, maxBytes: 4096 }, trusted);
    expect(back).toEqual({ id: message.id, body: { a: 1 }, headers: { ...message.headers, attempt: 2, contentType: 'application/json', stompDestination: '/queue/q' } });
  });

  it('refuses what STOMP cannot carry, that message alone', () => {
    expect(() => encodeFrame(createMessage(1, { headers: { 'a:b': 'x' } }), all, 1024)).toThrow(StompUnencodableError);
    expect(() => encodeFrame(createMessage(1, { headers: { 'x-big': 'y'.repeat(9000) } }), all, 100_000)).toThrow(/8192/);
    expect(() => encodeFrame(createMessage('x'.repeat(2000)), all, 1024)).toThrow(/maxMessageBytes/);
    expect(() => encodeFrame(createMessage({ a: 1 }, { headers: { contentType: 'text/plain' } }), all, 1024)).toThrow(/needs a string or Buffer/);
  });

  it('sends body and content type alone with headers=none', () => {
    const { headers } = encodeFrame(createMessage('hi', { headers: { contentType: 'text/plain', 'x-a': 'b' } }), { outbound: 'none', persistent: false }, 1024);
    expect(headers).toEqual({ 'content-type': 'text/plain' });
  });

  it('takes nothing of an untrusted producer but content-type and non-reserved allow-listed headers', () => {
    const frame = { 'content-type': 'text/plain', 'ic-id': 'forged', 'x-interchange-error': 'forged', tenant: 'acme', attempt: '9', 'message-id': 'm-1', destination: '/queue/q' };
    const message = decodeFrame(frame, Buffer.from('hello'), { attempt: 1, maxBytes: 4096 }, { inbound: 'standard', allowHeaders: new Set(['tenant', 'attempt', 'x-interchange-error', 'message-id']) });
    expect(message).toEqual({ id: 'm-1', body: 'hello', headers: { contentType: 'text/plain', tenant: 'acme', attempt: 1, stompDestination: '/queue/q' } });
  });

  it('refuses an oversized or unparseable MESSAGE with StompDecodeError', () => {
    expect(() => decodeFrame({}, Buffer.alloc(100), { attempt: 1, maxBytes: 10 }, trusted)).toThrow(StompDecodeError);
    expect(() => decodeFrame({ 'content-type': 'application/json' }, Buffer.from('{'), { attempt: 1, maxBytes: 100 }, trusted)).toThrow(StompDecodeError);
    expect(decodeFrame({}, Buffer.from('{'), { attempt: 1, maxBytes: 100 }, trusted).body).toBe('{');
  });

  it('dead-letter headers keep the message, drop broker and forged x-interchange headers, add the typed reason', () => {
    const headers = deadLetterHeaders({ 'ic-id': 'i', 'ic-types': '{"n":"n"}', n: '1', 'message-id': 'm', 'x-queue-type': 'quorum', 'x-interchange-reason': 'forged', 'content-type': 'application/json' }, '/queue/q', 3, 'bad: input');
    expect(headers).toMatchObject({ 'ic-id': 'i', n: '1', 'content-type': 'application/json', persistent: 'true', 'x-interchange-reason': 'bad%3A%20input', 'x-interchange-attempts': '3', 'x-interchange-source': '/queue/q' });
    expect(headers['message-id']).toBeUndefined();
    expect(headers['x-queue-type']).toBeUndefined();
    expect(JSON.parse(headers['ic-types'] as string)).toMatchObject({ n: 'n', 'x-interchange-reason': 'e', 'x-interchange-attempts': 'n' });
  });
});

describe('STOMP endpoints', () => {
  it('maps destinations and refuses the unknown', () => {
    expect(resolveStompTarget(parseEndpoint('stomp:queue/orders')).destination).toBe('/queue/orders');
    expect(resolveStompTarget(parseEndpoint('stomp:/topic/alerts')).destination).toBe('/topic/alerts');
    expect(resolveStompTarget(parseEndpoint('stomp:exchange/amq.topic/a.b')).destination).toBe('/exchange/amq.topic/a.b');
    expect(resolveStompTarget(parseEndpoint('activemq:amq/queue/x')).deadLetter).toBe('/queue/DLQ.x');
    expect(() => resolveStompTarget(parseEndpoint('stomp:orders'))).toThrow(StompConfigurationError);
    expect(() => resolveStompTarget(parseEndpoint('stomp:topic/a?queueType=quorum'))).toThrow(/only for queue/);
    expect(() => resolveStompTarget(parseEndpoint('stomp:queue/a?header=all'))).toThrow(/did you mean 'headers'/);
  });
});
