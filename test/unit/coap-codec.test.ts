import { describe, expect, it } from 'vitest';
import { Block1Uploads, CoapConfigurationError, decodeRequest, encodeReply, encodeRequest, HEADERS_OPTION, ID_OPTION, PathPattern, readHead, type DatagramHead, type InboundRequest } from '../../adapters/coap/index.ts';
import { environment, parseListen } from '../../adapters/coap/environment.ts';
import { createMessage } from '../../src/core/index.ts';

const request = (overrides: Partial<InboundRequest>): InboundRequest => ({
  id: 'coap:n0nce:7',
  peer: '10.0.0.9:5683',
  messageId: 7,
  token: Buffer.from('0a0b', 'hex'),
  path: ['devices', 'd1', 'telemetry'],
  params: {},
  queries: [],
  contentFormat: undefined,
  idOption: undefined,
  headersOption: undefined,
  payload: Buffer.alloc(0),
  ...overrides,
});

describe('coap path patterns', () => {
  it('captures named segments and the rest; an exact path is exact', () => {
    expect(new PathPattern('devices/+deviceId/telemetry').match(['devices', 'd1', 'telemetry'])).toEqual({ deviceId: 'd1' });
    expect(new PathPattern('devices/+deviceId/telemetry').match(['devices', 'd1'])).toBeUndefined();
    expect(new PathPattern('files/#rest').match(['files', 'a', 'b'])).toEqual({ rest: 'a/b' });
    expect(new PathPattern('/a/b/').exact).toBe(true);
  });

  it('refuses parameters that would set reserved headers, and misplaced wildcards', () => {
    expect(() => new PathPattern('d/+x-interchange-reason')).toThrow(CoapConfigurationError);
    expect(() => new PathPattern('d/+coapPeer')).toThrow(/only Interchange sets/);
    expect(() => new PathPattern('#rest/d')).toThrow(/last/);
    expect(() => new PathPattern('a+b')).toThrow(/whole path segment/);
  });
});

describe('coap codec', () => {
  it('round-trips an Interchange message between trusted peers', () => {
    const sent = createMessage({ t: 1 }, { headers: { correlationId: 'c1', 'x-count': 3, 'x-urgent': true } });
    const encoded = encodeRequest(sent, 10);
    const got = decodeRequest(request({ idOption: encoded.options[ID_OPTION] as Buffer, headersOption: encoded.options[HEADERS_OPTION] as Buffer, contentFormat: 'application/json', payload: encoded.payload }), { trusted: true, query: undefined }, 2);
    expect(got.id).toBe(sent.id);
    expect(got.body).toEqual({ t: 1 });
    expect(got.headers).toMatchObject({ ...sent.headers, attempt: 2 });
  });

  it('untrusted: the id is the exchange\'s, the options are ignored, a payload without a format is JSON or bytes', () => {
    const got = decodeRequest(request({ idOption: Buffer.from('forged'), headersOption: Buffer.from('{"x-interchange-reason":"x"}'), payload: Buffer.from([0xa1, 0x01]) }), { trusted: false, query: undefined }, 1);
    expect(got.id).toBe('coap:n0nce:7');
    expect(got.headers['x-interchange-reason']).toBeUndefined();
    expect(got.body).toEqual(Buffer.from([0xa1, 0x01]));
    expect(decodeRequest(request({ payload: Buffer.from('{"a":1}') }), { trusted: false, query: undefined }, 1).body).toEqual({ a: 1 });
    expect(() => decodeRequest(request({ contentFormat: 'application/json', payload: Buffer.from('{') }), { trusted: false, query: undefined }, 1)).toThrow(/not valid JSON/);
  });

  it('refuses a message over one datagram, and header values that are not scalars', () => {
    expect(() => encodeRequest(createMessage('x'.repeat(1_200)), 4)).toThrow(/one-datagram/);
    expect(() => encodeRequest(createMessage(1, { headers: { 'x-bad': Number.NaN } }), 4)).toThrow(/finite number/);
  });

  it('reads a datagram\'s head: type, code, Message ID, token, Observe, Block1, payload length', () => {
    // CON POST, token 0x07, Uri-Path "a" (option 11), Block1 (option 27, delta 16 → extended 13+3) num 4 more 0 szx 6 (1024)
    const head = readHead(Buffer.from([0x41, 0x02, 0x00, 0x01, 0x07, 0xb1, 0x61, 0xd1, 0x03, 0x46, 0xff, 0x00, 0x01]));
    expect(head).toMatchObject({ type: 0, code: 2, messageId: 1, token: Buffer.from([7]), observe: false, block1: { num: 4, more: false, szx: 6 }, payloadLength: 2 });
    expect(readHead(Buffer.from([0x40, 0x01, 0x00, 0x02, 0x60]))).toMatchObject({ code: 1, observe: true, block1: undefined, payloadLength: 0 });
    expect(readHead(Buffer.from([0x40, 0x02, 0x00, 0x01, 0xff]))).toBeUndefined(); // a payload marker without payload
    expect(readHead(Buffer.from([0x80, 0x02, 0x00, 0x01]))).toBeUndefined(); // version 2
  });

  it('encodes a reply: ACK with the request\'s Message ID and token, Content-Format, Max-Age, Size1, the text', () => {
    const head = readHead(Buffer.from([0x42, 0x02, 0x12, 0x34, 0xaa, 0xbb])) as DatagramHead;
    const reply = encodeReply(head, { code: '4.13', payload: 'big', size1: 1024, maxAgeSeconds: 5 });
    expect([...reply.subarray(0, 6)]).toEqual([0x62, 0x8d, 0x12, 0x34, 0xaa, 0xbb]); // ACK, 4.13, mid, token
    // Content-Format (12) empty, Max-Age (14) 5, Size1 (60: delta 46 → 13 + 33) 1024, payload
    expect([...reply.subarray(6)]).toEqual([0xc0, 0x21, 0x05, 0xd2, 33, 0x04, 0x00, 0xff, ...Buffer.from('big')]);
  });

  it('block-wise uploads: exact block sizes, in order, bounded per address and in total', () => {
    const uploads = new Block1Uploads({ maxMessageBytes: 64, maxBufferedBytes: 100, perAddress: 2, lifetimeMs: 60_000, retryAfterSeconds: 5 });
    const block = (token: number, num: number, more: boolean, payloadLength: number, szx = 0): DatagramHead => ({ type: 0, code: 2, messageId: 1, token: Buffer.from([token]), observe: false, block1: { num, more, szx }, payloadLength });
    expect(uploads.check(block(1, 0, true, 16, 7), 30, 'a', 1)).toMatchObject({ code: '4.00' }); // SZX 7
    expect(uploads.check({ ...block(1, 0, true, 16), token: Buffer.alloc(0) }, 30, 'a', 1)).toMatchObject({ code: '4.00' });
    expect(uploads.check(block(1, 0, true, 60), 80, 'a', 1)).toMatchObject({ code: '4.00' }); // more=1, payload ≠ 16
    expect(uploads.check(block(1, 4, false, 1), 30, 'a', 1)).toMatchObject({ code: '4.13', size1: 64 });
    expect(uploads.check(block(1, 1, false, 16), 30, 'a', 1)).toMatchObject({ code: '4.08' }); // no block 0
    expect(uploads.check(block(1, 0, true, 16), 40, 'a', 1)).toBeUndefined();
    expect(uploads.check(block(1, 0, true, 16), 40, 'a', 1)).toBeUndefined(); // a retransmission passes
    expect(uploads.check(block(1, 2, true, 16), 40, 'a', 1)).toMatchObject({ code: '4.08' }); // a gap
    expect(uploads.check(block(2, 0, true, 16), 40, 'a', 1)).toBeUndefined();
    expect(uploads.check(block(3, 0, true, 16), 40, 'a', 1)).toMatchObject({ code: '5.03', maxAgeSeconds: 5 }); // third from 'a'
    expect(uploads.bufferedBytes).toBe(80);
    expect(uploads.check(block(3, 0, true, 16), 40, 'b', 1)).toMatchObject({ code: '5.03' }); // 120 > 100 buffered
    expect(uploads.check(block(1, 1, false, 3), 30, 'a', 1)).toBeUndefined(); // the last block ends upload 1
    expect(uploads.bufferedBytes).toBe(40);
    expect(uploads.check(block(3, 0, true, 16), 40, 'b', 1)).toBeUndefined();
  });

  it('parses COAP_LISTEN', () => {
    expect(parseListen('0.0.0.0:5684')).toEqual({ host: '0.0.0.0', port: 5684 });
    expect(parseListen('[::]:5683')).toEqual({ host: '::', port: 5683 });
    expect(parseListen('5690')).toEqual({ host: '127.0.0.1', port: 5690 });
    expect(() => parseListen('host:99999')).toThrow(/COAP_LISTEN/);
  });
});

describe('coap environment', () => {
  it('binds the transport with its embedded server when a route uses coap:, on COAP_LISTEN when set', async () => {
    const isBound = (): boolean => false;
    expect(await environment.bind?.({ env: {}, schemes: new Set(['amqp']), isBound })).toBeUndefined();
    expect((await environment.bind?.({ env: {}, schemes: new Set(['coap']), isBound }))?.announcement).toMatch(/embedded CoAP server on udp:\/\/127\.0\.0\.1:5683/);
    expect((await environment.bind?.({ env: { COAP_LISTEN: '0.0.0.0:5700' }, schemes: new Set(['coap']), isBound }))?.announcement).toMatch(/udp:\/\/0\.0\.0\.0:5700/);
    expect(await environment.bind?.({ env: {}, schemes: new Set(['coap']), isBound: () => true })).toBeUndefined();
  });
});
