import { describe, expect, it } from 'vitest';
import { createMessage, EndpointError } from '../../facade/index.ts';
import { integerOption, parseEndpoint, resolveEndpointTemplate, resolveTemplate } from '../../src/spi.ts';

describe('endpoint URIs', () => {
  it('parses scheme, path and options', () => {
    const e = parseEndpoint('amqp:exchange/telemetry?routingKey=reading.{deviceId}&persistent=true');
    expect(e).toMatchObject({ scheme: 'amqp', path: 'exchange/telemetry', options: { routingKey: 'reading.{deviceId}', persistent: 'true' } });
    expect(parseEndpoint('memory:orders').path).toBe('orders');
    expect(parseEndpoint('mqtt:devices/+deviceId/telemetry').path).toBe('devices/+deviceId/telemetry');
    expect(parseEndpoint('mqtt:devices/#').path).toBe('devices/#');
    expect(parseEndpoint('mqtt:a/#?qos=1').options).toEqual({ qos: '1' });
  });

  it('rejects a URI without scheme or path with an EndpointError', () => {
    expect(() => parseEndpoint('orders')).toThrow(EndpointError);
    expect(() => parseEndpoint('memory:')).toThrow(/no path/);
  });

  it('reads integer options strictly', () => {
    const e = parseEndpoint('memory:x?capacity=10&bad=1.5');
    expect(integerOption(e, 'capacity', 5)).toBe(10);
    expect(integerOption(e, 'missing', 5)).toBe(5);
    expect(() => integerOption(e, 'bad', 5)).toThrow(/positive integer/);
  });

  it('fills templates from headers first, then body fields, leaving unknown placeholders visible', () => {
    const m = createMessage({ deviceId: 'body-dev', nested: { zone: 'z 1' } }, { headers: { region: 'eu' } });
    expect(resolveTemplate('amqp:x?routingKey=r.{region}.{deviceId}.{nested.zone}', m)).toBe('amqp:x?routingKey=r.eu.body-dev.z%201');
    expect(resolveTemplate('memory:{missing}', m)).toBe('memory:{missing}');
  });
});

describe('endpoint templates for destinations', () => {
  it('refuses a destination whose placeholder has no value, naming it', () => {
    const m = createMessage({ deviceId: 'd1' });
    expect(resolveEndpointTemplate('memory:readings.{deviceId}', m)).toBe('memory:readings.d1');
    expect(() => resolveEndpointTemplate('memory:{region}.{deviceId}.{zone}', m)).toThrow(EndpointError);
    expect(() => resolveEndpointTemplate('memory:{region}.{deviceId}.{zone}', m)).toThrow(/\{region\}, \{zone\}/);
  });
});
