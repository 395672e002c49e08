import type { IPublishPacket } from 'mqtt';
import { describe, expect, it } from 'vitest';
import { createMessage } from '../../facade/index.ts';
import { decodeMessage, encodeMessage, type InboundPolicy } from '../../adapters/mqtt/message-codec.ts';

/** Consumers of a trusted Interchange peer (`?headers=all`): the inverse of `encodeMessage`. */
const PEER: InboundPolicy = { headers: 'all' };

/** What the broker hands a subscriber for a PUBLISH written from `encodeMessage`'s output. */
function received(encoded: ReturnType<typeof encodeMessage>, topic = 't'): IPublishPacket {
  const payload = typeof encoded.payload === 'string' ? Buffer.from(encoded.payload) : encoded.payload;
  const properties = encoded.properties as IPublishPacket['properties'];
  return { cmd: 'publish', topic, payload, qos: 1, dup: false, retain: false, ...(properties === undefined ? {} : { properties }) };
}

describe('MQTT message codec', () => {
  it('carries id and headers as MQTT 5 user properties, typed on the way back (headers=all)', () => {
    const message = createMessage({ a: 1 }, { headers: { tenant: 'acme', priority: 3, urgent: true, correlationId: 'c-1' } });
    const encoded = encodeMessage(message, 5);
    const back = decodeMessage(received(encoded), undefined, 1, false, PEER);
    expect(back.id).toBe(message.id);
    expect(back.body).toEqual({ a: 1 });
    expect(back.headers).toMatchObject({ tenant: 'acme', priority: 3, urgent: true, correlationId: 'c-1', timestamp: message.headers.timestamp });
  });

  it('types timestamp and expiresAt by name: no ic-types entry is sent for them', () => {
    const message = createMessage('x', { headers: { expiresAt: Date.now() + 60_000 } });
    const user = encodeMessage(message, 5).properties?.userProperties ?? {};
    expect(user['ic-types']).toBeUndefined();
    const back = decodeMessage(received(encodeMessage(message, 5)), undefined, 1, false, PEER);
    expect(back.headers.timestamp).toBe(message.headers.timestamp);
    expect(back.headers.expiresAt).toBe(message.headers.expiresAt);
  });

  it('keeps a foreign publisher\'s non-numeric timestamp as the string it sent', () => {
    const packet = received({ payload: '{}', properties: { userProperties: { timestamp: 'yesterday' } } });
    expect(decodeMessage(packet, undefined, 1, false, PEER).headers.timestamp).toBe('yesterday');
  });

  it('gives messages from publishers without an id a fresh one, and topic parameters as headers', () => {
    const packet = received({ payload: '{"t":21}', properties: undefined }, 'devices/d7/telemetry');
    const message = decodeMessage(packet, { deviceId: 'd7' }, 2);
    expect(message.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(message.headers).toMatchObject({ deviceId: 'd7', mqttTopic: 'devices/d7/telemetry', attempt: 2 });
    expect(message.body).toEqual({ t: 21 });
  });

  it('payload=raw: the body is the payload bytes as sent, unparsed; headers still decoded (an allow-listed user property)', () => {
    const bytes = Buffer.from('{"deviceId": "d1", "t": 21.5}');
    const packet = { ...received({ payload: bytes, properties: { userProperties: { tenant: 'acme' } } }, 'devices/d1/telemetry') };
    const message = decodeMessage(packet, { deviceId: 'd1' }, 1, true, { headers: 'standard', userProperties: new Set(['tenant']) });
    expect(message.body).toBe(bytes);
    expect(message.headers).toMatchObject({ tenant: 'acme', deviceId: 'd1', mqttTopic: 'devices/d1/telemetry' });
  });

  it('headers=none: the payload alone, as a device publishes it; MQTT 5 standard properties kept', () => {
    const plain = createMessage({ t: 21.5 }, { headers: { tenant: 'acme' } });
    expect(encodeMessage(plain, 5, 'none')).toEqual({ payload: '{"t":21.5}', properties: undefined });
    expect(encodeMessage(plain, 4, 'none')).toEqual({ payload: '{"t":21.5}', properties: undefined });
    const standard = createMessage('on', { headers: { contentType: 'text/plain', replyTo: 'replies/1', correlationId: 'c-9', tenant: 'acme' } });
    expect(encodeMessage(standard, 5, 'none')).toEqual({ payload: 'on', properties: { contentType: 'text/plain', responseTopic: 'replies/1', correlationData: Buffer.from('c-9') } });
    const back = decodeMessage(received(encodeMessage(plain, 5, 'none')), undefined, 1);
    expect(back.id).not.toBe(plain.id);
    expect(back.headers.tenant).toBeUndefined();
    expect(back.body).toEqual({ t: 21.5 });
  });

  it('headers=trace: as none, plus traceparent and tracestate as MQTT 5 user properties, read back by a headers=trace consumer', () => {
    const traceparent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
    const traced = createMessage({ t: 21.5 }, { headers: { tenant: 'acme', traceparent, tracestate: 'vendor=abc', contentType: 'application/json' } });
    expect(encodeMessage(traced, 5, 'trace')).toEqual({ payload: '{"t":21.5}', properties: { contentType: 'application/json', userProperties: { traceparent, tracestate: 'vendor=abc' } } });
    expect(encodeMessage(traced, 4, 'trace')).toEqual({ payload: '{"t":21.5}', properties: undefined });
    expect(encodeMessage(createMessage({ t: 1 }), 5, 'trace')).toEqual({ payload: '{"t":1}', properties: undefined });
    const back = decodeMessage(received(encodeMessage(traced, 5, 'trace')), undefined, 1, false, { headers: 'trace' });
    expect(back.headers).toEqual({ traceparent, tracestate: 'vendor=abc', mqttTopic: 't' });
  });

  it('headers=all carries traceparent and tracestate like any header, both ways', () => {
    const traceparent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
    const back = decodeMessage(received(encodeMessage(createMessage(1, { headers: { traceparent, tracestate: 'a=1' } }), 5)), undefined, 1, false, PEER);
    expect(back.headers).toMatchObject({ traceparent, tracestate: 'a=1' });
  });
});
