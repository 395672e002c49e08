import { Container } from 'inversify';
import { describe, expect, it } from 'vitest';
import { amqpModule, AmqpTransport } from '../../adapters/amqp/index.ts';
import { MqttTransport } from '../../adapters/mqtt/index.ts';
import { environmentModules } from '../../facade/cli/environment-modules.ts';
import { from } from '../../facade/index.ts';
import { EndpointError, InterchangeError } from '../../src/core/index.ts';
import { EchoTransport, echoModule } from '../contract/third-party/index.ts';

describe('transports from the environment (interchange run)', () => {
  it('binds RabbitMQ from AMQP_URL and announces it without the password', async () => {
    const container = new Container();
    const found = await environmentModules(container, [], { AMQP_URL: 'amqp://app:s3cret@rabbit.local:5672/prod' });
    expect(found).toHaveLength(1);
    expect(found[0]?.announcement).toBe('AMQP_URL is set: amqp: endpoints use RabbitMQ at amqp://app:***@rabbit.local:5672/prod');
    expect(found[0]?.announcement).not.toContain('s3cret');
    container.load(...found.map((entry) => entry.module));
    expect(container.isBound(AmqpTransport)).toBe(true);
  });

  it("leaves the route file's own amqp binding alone, and does nothing without AMQP_URL", async () => {
    const configured = new Container();
    configured.load(amqpModule({ url: 'amqp://127.0.0.1:5672' }));
    expect(await environmentModules(configured, [], { AMQP_URL: 'amqp://elsewhere:5672' })).toEqual([]);
    expect(await environmentModules(new Container(), [], {})).toEqual([]);
    expect(await environmentModules(new Container(), [], { AMQP_URL: '' })).toEqual([]);
  });

  it('binds MQTT from MQTT_URL, or to the embedded broker when a route uses mqtt: without one', async () => {
    const withUrl = await environmentModules(new Container(), [], { MQTT_URL: 'mqtt://user:pw@broker.local:1883' });
    expect(withUrl.map((entry) => entry.announcement)).toEqual(['MQTT_URL is set: mqtt: endpoints use the broker at mqtt://user:***@broker.local:1883']);
    const routes = [from('memory:in').choice((c) => c.when(() => true, (b) => b.to('mqtt:commands/all')))];
    const container = new Container();
    const embedded = await environmentModules(container, routes, {});
    expect(embedded.map((entry) => entry.announcement)).toEqual(['no MQTT_URL: mqtt: endpoints use an embedded MQTT broker on loopback (set MQTT_URL to use a real one)']);
    container.load(...embedded.map((entry) => entry.module));
    expect(container.isBound(MqttTransport)).toBe(true);
    expect(await environmentModules(new Container(), [from('memory:in').to('memory:out')], {})).toEqual([]);
  });

  it('checks every URL variable an adapter declares (DATABASE_URL, REDIS_URL too), the password never in the error', async () => {
    for (const name of ['AMQP_URL', 'MQTT_URL', 'DATABASE_URL', 'REDIS_URL']) {
      const checked = environmentModules(new Container(), [], { [name]: 'scheme://app:pa/ss@host:1' });
      await expect(checked).rejects.toBeInstanceOf(EndpointError);
      await expect(checked).rejects.toThrow(`${name} has '/' unencoded in its user info`);
      await expect(checked).rejects.not.toThrow('pa/ss');
    }
  });
});

describe('adapters named in INTERCHANGE_ADAPTERS', () => {
  const echoRoutes = [from('echo:in').to('memory:out')];

  it("binds a third-party adapter from its declaration when a route uses its scheme, unless the route file binds it", async () => {
    const env = { INTERCHANGE_ADAPTERS: ' ./test/contract/third-party/index.ts ,' };
    const container = new Container();
    const found = await environmentModules(container, echoRoutes, env);
    expect(found.map((entry) => entry.announcement)).toEqual(['echo: endpoints use the in-process echo transport']);
    container.load(...found.map((entry) => entry.module));
    expect(container.get(EchoTransport)).toBeInstanceOf(EchoTransport);

    expect(await environmentModules(new Container(), [from('memory:in').to('memory:out')], env)).toEqual([]);
    const configured = new Container();
    configured.load(echoModule());
    expect(await environmentModules(configured, echoRoutes, env)).toEqual([]);
    await expect(environmentModules(new Container(), echoRoutes, { ...env, ECHO_URL: 'echo://x:y#z@host' })).rejects.toBeInstanceOf(EndpointError);
  });

  it('an entry that cannot be loaded, or declares nothing, is an error naming it', async () => {
    const missing = environmentModules(new Container(), [], { INTERCHANGE_ADAPTERS: './no/such/adapter.js' });
    await expect(missing).rejects.toBeInstanceOf(InterchangeError);
    await expect(missing).rejects.toThrow("INTERCHANGE_ADAPTERS: cannot load './no/such/adapter.js'");
    await expect(environmentModules(new Container(), [], { INTERCHANGE_ADAPTERS: './test/contract/third-party/echo-transport.ts' })).rejects.toThrow("INTERCHANGE_ADAPTERS: './test/contract/third-party/echo-transport.ts' exports no adapter environment");
  });
});
