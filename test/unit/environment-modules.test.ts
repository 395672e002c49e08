import { Container } from 'inversify';
import { describe, expect, it } from 'vitest';
import { amqpModule, AmqpTransport } from '../../adapters/amqp/index.ts';
import { environmentModules } from '../../src/cli/environment-modules.ts';

describe('transports from the environment (interchange run)', () => {
  it('binds RabbitMQ from AMQP_URL and announces it without the password', () => {
    const container = new Container();
    const found = environmentModules(container, { AMQP_URL: 'amqp://app:s3cret@rabbit.local:5672/prod' });
    expect(found).toHaveLength(1);
    expect(found[0]?.announcement).toBe('AMQP_URL is set: amqp: endpoints use RabbitMQ at amqp://app:***@rabbit.local:5672/prod');
    expect(found[0]?.announcement).not.toContain('s3cret');
    container.load(...found.map((entry) => entry.module));
    expect(container.isBound(AmqpTransport)).toBe(true);
  });

  it("leaves the route file's own amqp binding alone, and does nothing without AMQP_URL", () => {
    const configured = new Container();
    configured.load(amqpModule({ url: 'amqp://127.0.0.1:5672' }));
    expect(environmentModules(configured, { AMQP_URL: 'amqp://elsewhere:5672' })).toEqual([]);
    expect(environmentModules(new Container(), {})).toEqual([]);
    expect(environmentModules(new Container(), { AMQP_URL: '' })).toEqual([]);
  });
});
