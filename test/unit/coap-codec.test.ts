import { describe, expect, it } from 'vitest';
import { block1Extent, CoapConfigurationError, decodeRequest, encodeRequest, HEADERS_OPTION, ID_OPTION, PathPattern, type InboundRequest } from '../../adapters/coap/index.ts';
import { environment, parseListen } from '../../adapters/coap/environment.ts';
import { createMessage } from '../../src/core/index.ts';

const request = (overrides: Partial<InboundRequest>): InboundRequest => ({
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
    expect(got.id).toBe('10.0.0.9:5683/7/0a0b');
    expect(got.headers['x-interchange-reason']).toBeUndefined();
    expect(got.body).toEqual(Buffer.from([0xa1, 0x01]));
    expect(decodeRequest(request({ payload: Buffer.from('{"a":1}') }), { trusted: false, query: undefined }, 1).body).toEqual({ a: 1 });
    expect(() => decodeRequest(request({ contentFormat: 'application/json', payload: Buffer.from('{') }), { trusted: false, query: undefined }, 1)).toThrow(/not valid JSON/);
  });

  it('refuses a message over one datagram, and header values that are not scalars', () => {
    expect(() => encodeRequest(createMessage('x'.repeat(1_200)), 4)).toThrow(/one-datagram/);
    expect(() => encodeRequest(createMessage(1, { headers: { 'x-bad': Number.NaN } }), 4)).toThrow(/finite number/);
  });

  it('reads where a Block1 block ends from the raw datagram', () => {
    // CON POST, token 0, Uri-Path "a" (option 11), Block1 (option 27, delta 16 → extended 13+3) num 4 more 0 szx 6 (1024)
    const datagram = Buffer.from([0x40, 0x02, 0x00, 0x01, 0xb1, 0x61, 0xd1, 0x03, 0x46, 0xff, 0x00]);
    expect(block1Extent(datagram)).toBe(5 * 1024);
    expect(block1Extent(Buffer.from([0x40, 0x02, 0x00, 0x01, 0xb1, 0x61, 0xff, 0x00]))).toBeUndefined();
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
