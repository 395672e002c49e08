import type { IPublishPacket } from 'mqtt';
import { describe, expect, it } from 'vitest';
import { decodeMessage, type InboundPolicy } from '../../adapters/mqtt/message-codec.ts';
import { validateMqttEndpointOptions } from '../../adapters/mqtt/mqtt-options.ts';
import { TopicPattern } from '../../adapters/mqtt/topic-pattern.ts';
import { EndpointError, parseEndpoint } from '../../src/core/index.ts';

// A device must never control what reaches the back end: what it may put in an inbound PUBLISH
// besides the payload becomes headers only as the consumer endpoint's `headers` option allows.

const TOPIC = 'devices/d1/telemetry';
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

function publish(fields: Partial<IPublishPacket>): IPublishPacket {
  return { cmd: 'publish', topic: TOPIC, payload: Buffer.from('{"t":21.5}'), qos: 1, dup: false, retain: false, ...fields };
}

/** An MQTT 5 PUBLISH from a hostile device: every property it could use to steer the back end. */
const forged = publish({
  properties: {
    userProperties: {
      'x-interchange-error': 'forged failure',
      'x-interchange-error-code': 'FORGED',
      'message-id': 'another-devices-reading',
      'ic-types': 'count:n,urgent:b',
      count: '5',
      urgent: 'true',
      CC: 'audit.all',
      BCC: 'billing',
      expiresAt: '1e300',
      attempt: '9',
      mqttTopic: 'elsewhere',
      deviceId: 'd-spoofed',
      site: 'plant-3',
    },
    correlationData: Buffer.from('their-conversation'),
    contentType: 'application/json',
    messageExpiryInterval: 60,
    responseTopic: 'replies/d1',
  },
});

const params = { deviceId: 'd1' };
const decode = (packet: IPublishPacket, inbound?: InboundPolicy, attempt = 1) => decodeMessage(packet, params, attempt, false, inbound);

describe('mqtt inbound trust: consumer option headers', () => {
  it('standard (the default): only content type, expiry and response topic; a fresh id; topic parameters over properties', () => {
    const before = Date.now();
    const message = decode(forged);
    expect(message.id).toMatch(UUID);
    expect(message.id).not.toBe('another-devices-reading');
    const { expiresAt, ...rest } = message.headers;
    expect(rest).toEqual({ contentType: 'application/json', replyTo: 'replies/d1', deviceId: 'd1', mqttTopic: TOPIC });
    expect(expiresAt).toBeGreaterThanOrEqual(before + 60_000);
    expect(expiresAt).toBeLessThanOrEqual(Date.now() + 60_000);
    expect(message.body).toEqual({ t: 21.5 });
  });

  it('none: nothing but the payload (and what the adapter adds)', () => {
    const message = decode(forged, { headers: 'none' }, 2);
    expect(message.id).toMatch(UUID);
    expect(message.headers).toEqual({ deviceId: 'd1', mqttTopic: TOPIC, attempt: 2 });
    expect(message.body).toEqual({ t: 21.5 });
  });

  it('all: a trusted Interchange peer — id, typed user properties, correlation data; still the adapter\'s mqttTopic, attempt and topic parameters', () => {
    const message = decode(forged, { headers: 'all' });
    expect(message.id).toBe('another-devices-reading');
    expect(message.headers).toMatchObject({ 'x-interchange-error': 'forged failure', CC: 'audit.all', BCC: 'billing', count: 5, urgent: true, expiresAt: 1e300, correlationId: 'their-conversation', deviceId: 'd1', mqttTopic: TOPIC });
    expect(message.headers.attempt).toBeUndefined(); // attempt 1 — never the publisher's '9'
    expect(decode(forged, { headers: 'all' }, 3).headers.attempt).toBe(3);
  });

  it('outside all, no x-interchange-* header, message id, ic-types typing, CC/BCC or correlation data comes from the publisher', () => {
    for (const inbound of [undefined, { headers: 'standard' }, { headers: 'none' }, { headers: 'standard', userProperties: new Set(['site']) }] as const) {
      const { id, headers } = decode(forged, inbound);
      expect(id).not.toBe('another-devices-reading');
      expect(Object.keys(headers).filter((name) => /^x-interchange-|^(message-id|ic-types|cc|bcc|count|urgent|correlationId)$/i.test(name))).toEqual([]);
      expect(headers.expiresAt === undefined || headers.expiresAt < Date.now() + 61_000).toBe(true);
    }
  });

  it('a 3.1.1 {"$ic":1,…} envelope is a body like any other unless the publisher is trusted', () => {
    const envelope = { $ic: 1, id: 'another-devices-reading', headers: { 'x-interchange-error': 'forged', CC: 'audit.all' }, body: { t: 1 } };
    const packet = publish({ payload: Buffer.from(JSON.stringify(envelope)) });
    for (const inbound of [undefined, { headers: 'none' }] as const) {
      const message = decode(packet, inbound);
      expect(message.id).toMatch(UUID);
      expect(message.body).toEqual(envelope);
      expect(message.headers).toEqual({ deviceId: 'd1', mqttTopic: TOPIC });
    }
    const withAttempt = publish({ payload: Buffer.from(JSON.stringify({ ...envelope, headers: { attempt: 7 } })) });
    expect(decode(withAttempt, { headers: 'all' }).headers.attempt).toBeUndefined();
    const trusted = decode(packet, { headers: 'all' });
    expect(trusted).toMatchObject({ id: 'another-devices-reading', body: { t: 1 }, headers: { 'x-interchange-error': 'forged', CC: 'audit.all', deviceId: 'd1' } });
  });

  it('a trusted envelope cannot replace the headers object\'s prototype', () => {
    const packet = publish({ payload: Buffer.from('{"$ic":1,"id":"i","headers":{"__proto__":{"x-interchange-error":"forged"}},"body":1}') });
    const { headers } = decode(packet, { headers: 'all' });
    expect(Object.getPrototypeOf(headers)).toBe(Object.prototype);
    expect(headers['x-interchange-error']).toBeUndefined();
  });

  it('Message Expiry Interval becomes expiresAt only as the uint32 of seconds it is', () => {
    const expiry = (value: number) => decode(publish({ properties: { messageExpiryInterval: value } })).headers.expiresAt;
    expect(expiry(0xffffffff)).toBeLessThanOrEqual(Date.now() + 0xffffffff * 1000);
    expect(expiry(0)).toBeLessThanOrEqual(Date.now());
    for (const invalid of [-1, 1.5, 2 ** 40, Number.NaN]) expect(expiry(invalid)).toBeUndefined();
  });

  it('none: the content type does not steer decoding either', () => {
    const packet = publish({ payload: Buffer.from('{"a":1}'), properties: { contentType: 'application/octet-stream' } });
    expect(Buffer.isBuffer(decode(packet).body)).toBe(true);
    expect(decode(packet, { headers: 'none' }).body).toEqual({ a: 1 });
  });
});

describe('mqtt inbound trust: userProperties allow-list', () => {
  it('with standard, maps just the named user properties, as strings (the last of a repeated one)', () => {
    const packet = publish({ properties: { userProperties: { site: ['plant-1', 'plant-3'], firmware: '2.1', count: '5', 'ic-types': 'firmware:n' } } });
    const message = decode(packet, { headers: 'standard', userProperties: new Set(['site', 'firmware', 'missing']) });
    expect(message.headers).toEqual({ site: 'plant-3', firmware: '2.1', deviceId: 'd1', mqttTopic: TOPIC });
  });

  it('takes only the publisher\'s own properties (no inherited toString, constructor)', () => {
    const packet = publish({ properties: { userProperties: { site: 'plant-3' } } });
    expect(decode(packet, { headers: 'standard', userProperties: new Set(['toString', 'constructor', 'site']) }).headers).toEqual({ site: 'plant-3', deviceId: 'd1', mqttTopic: TOPIC });
  });

  it('topic parameters override an allow-listed user property of the same name', () => {
    expect(decode(forged, { headers: 'standard', userProperties: new Set(['deviceId']) }).headers.deviceId).toBe('d1');
  });

  it('never takes a reserved name, even if handed one without endpoint validation', () => {
    const message = decode(forged, { headers: 'standard', userProperties: new Set(['x-interchange-error', 'message-id', 'CC', 'expiresAt', 'mqttTopic', 'attempt', 'site']) });
    const { expiresAt: _expiresAt, ...rest } = message.headers;
    expect(rest).toEqual({ contentType: 'application/json', replyTo: 'replies/d1', site: 'plant-3', deviceId: 'd1', mqttTopic: TOPIC });
  });

  const validate = (uri: string) => () => validateMqttEndpointOptions(parseEndpoint(uri));

  it.each([
    'x-interchange-error',
    'X-Interchange-Anything',
    'message-id',
    'ic-types',
    'id',
    'attempt',
    'mqttTopic',
    'timestamp',
    'expiresAt',
    'correlationId',
    'causationId',
    'replyTo',
    'contentType',
    'schema',
    'type',
    'priority',
    'traceparent',
    'cc',
    'BCC',
  ])('refuses %s at endpoint validation', (name) => {
    expect(validate(`mqtt:devices/+deviceId/telemetry?userProperties=site,${name}`)).toThrow(EndpointError);
    expect(validate(`mqtt:devices/+deviceId/telemetry?userProperties=site,${name}`)).toThrow(`userProperties may not name '${name}'`);
  });

  it('applies to headers=standard only, and needs names', () => {
    expect(validate('mqtt:a/+d?headers=standard&userProperties=site,firmware')).not.toThrow();
    expect(validate('mqtt:a/+d?userProperties=site')).not.toThrow();
    expect(validate('mqtt:a/+d?headers=all&userProperties=site')).toThrow(/userProperties applies to headers=standard/);
    expect(validate('mqtt:a/+d?headers=none&userProperties=site')).toThrow(EndpointError);
    expect(validate('mqtt:a/+d?userProperties=site,,firmware')).toThrow(/userProperties must match pattern/);
    expect(validate('mqtt:a/+d?headers=trusted')).toThrow(/headers must be one of all, none, standard/);
  });

  it('a topic parameter may not be named after a header only Interchange sets', () => {
    for (const name of ['x-interchange-error', 'mqttTopic', 'attempt', 'timestamp', 'expiresAt']) {
      expect(() => new TopicPattern(`devices/+${name}/telemetry`)).toThrow(EndpointError);
    }
    expect(new TopicPattern('devices/+deviceId/telemetry').paramsOf(TOPIC)).toEqual({ deviceId: 'd1' });
  });
});

describe('mqtt inbound trust: headers=trace (W3C trace context of an untrusted publisher)', () => {
  const TRACEPARENT = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
  const traced = (userProperties: Record<string, string | string[]>) => publish({ properties: { ...forged.properties, userProperties: { ...forged.properties?.userProperties, ...userProperties } } });

  it('takes a well-formed traceparent and tracestate, and nothing else the device sent', () => {
    const message = decode(traced({ traceparent: TRACEPARENT, tracestate: 'vendor=abc,other=1' }), { headers: 'trace' }, 2);
    expect(message.id).toMatch(UUID);
    expect(message.headers).toEqual({ traceparent: TRACEPARENT, tracestate: 'vendor=abc,other=1', deviceId: 'd1', mqttTopic: TOPIC, attempt: 2 });
    expect(message.body).toEqual({ t: 21.5 });
  });

  it.each([
    ['uppercase hex', TRACEPARENT.toUpperCase()],
    ['version ff', `ff${TRACEPARENT.slice(2)}`],
    ['a later version', `01${TRACEPARENT.slice(2)}`],
    ['an all-zero trace id', `00-${'0'.repeat(32)}-00f067aa0ba902b7-01`],
    ['an all-zero span id', '00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01'],
    ['trailing data', `${TRACEPARENT}-extra`],
    ['a 60,000-character value', `${TRACEPARENT}${'0'.repeat(60_000)}`],
    ['a repeated property', [TRACEPARENT, TRACEPARENT]],
  ])('drops a traceparent with %s, and its tracestate with it', (_case, traceparent) => {
    const { headers } = decode(traced({ traceparent, tracestate: 'vendor=abc' }), { headers: 'trace' });
    expect(headers).toEqual({ deviceId: 'd1', mqttTopic: TOPIC });
  });

  it.each([
    ['over 512 characters', `a=${'v'.repeat(250)},b=${'v'.repeat(250)},c=${'v'.repeat(10)}`],
    ['malformed', 'Not A Trace State'],
    ['repeated', ['a=1', 'b=2']],
    ['empty', ''],
  ])('keeps the traceparent but drops a tracestate %s', (_case, tracestate) => {
    const { headers } = decode(traced({ traceparent: TRACEPARENT, tracestate }), { headers: 'trace' });
    expect(headers).toEqual({ traceparent: TRACEPARENT, deviceId: 'd1', mqttTopic: TOPIC });
  });

  it('like none, the content type does not steer decoding; an MQTT 3.1.1 PUBLISH (no properties) gives no trace context', () => {
    const packet = publish({ payload: Buffer.from('{"a":1}'), properties: { contentType: 'application/octet-stream', userProperties: { traceparent: TRACEPARENT } } });
    expect(decode(packet, { headers: 'trace' }).body).toEqual({ a: 1 });
    expect(decode(publish({}), { headers: 'trace' }).headers).toEqual({ deviceId: 'd1', mqttTopic: TOPIC });
  });

  it('the other untrusted modes take no trace context', () => {
    for (const inbound of [undefined, { headers: 'none' }] as const) expect(decode(traced({ traceparent: TRACEPARENT }), inbound).headers.traceparent).toBeUndefined();
  });

  it('is a valid consume option, without userProperties', () => {
    expect(() => validateMqttEndpointOptions(parseEndpoint('mqtt:a/+d?headers=trace&qos=1'))).not.toThrow();
    expect(() => validateMqttEndpointOptions(parseEndpoint('mqtt:a/+d?headers=trace&userProperties=site'))).toThrow(/userProperties applies to headers=standard/);
  });
});
