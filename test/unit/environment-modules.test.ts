import { Container } from 'inversify';
import { describe, expect, it } from 'vitest';
import { amqpModule, AmqpTransport } from '../../adapters/amqp/index.ts';
import { MqttTransport } from '../../adapters/mqtt/index.ts';
import { environmentModules } from '../../facade/cli/environment-modules.ts';
import { from } from '../../facade/index.ts';

describe('transports from the environment (interchange run)', () => {
  it('binds RabbitMQ from AMQP_URL and announces it without the password', () => {
    const container = new Container();
    const found = environmentModules(container, [], { AMQP_URL: 'amqp://app:s3cret@rabbit.local:5672/prod' });
    expect(found).toHaveLength(1);
    expect(found[0]?.announcement).toBe('AMQP_URL is set: amqp: endpoints use RabbitMQ at amqp://app:***@rabbit.local:5672/prod');
    expect(found[0]?.announcement).not.toContain('s3cret');
    container.load(...found.map((entry) => entry.module));
    expect(container.isBound(AmqpTransport)).toBe(true);
  });

  it("leaves the route file's own amqp binding alone, and does nothing without AMQP_URL", () => {
    const configured = new Container();
    configured.load(amqpModule({ url: 'amqp://127.0.0.1:5672' }));
    expect(environmentModules(configured, [], { AMQP_URL: 'amqp://elsewhere:5672' })).toEqual([]);
    expect(environmentModules(new Container(), [], {})).toEqual([]);
    expect(environmentModules(new Container(), [], { AMQP_URL: '' })).toEqual([]);
  });

  it('binds MQTT from MQTT_URL, or to the embedded broker when a route uses mqtt: without one', () => {
    const withUrl = environmentModules(new Container(), [], { MQTT_URL: 'mqtt://user:pw@broker.local:1883' });
    expect(withUrl.map((entry) => entry.announcement)).toEqual(['MQTT_URL is set: mqtt: endpoints use the broker at mqtt://user:***@broker.local:1883']);
    const routes = [from('memory:in').choice((c) => c.when(() => true, (b) => b.to('mqtt:commands/all')))];
    const container = new Container();
    const embedded = environmentModules(container, routes, {});
    expect(embedded.map((entry) => entry.announcement)).toEqual(['no MQTT_URL: mqtt: endpoints use an embedded MQTT broker on loopback (set MQTT_URL to use a real one)']);
    container.load(...embedded.map((entry) => entry.module));
    expect(container.isBound(MqttTransport)).toBe(true);
    expect(environmentModules(new Container(), [from('memory:in').to('memory:out')], {})).toEqual([]);
  });
});
