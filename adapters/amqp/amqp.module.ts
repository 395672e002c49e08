import { ContainerModule } from 'inversify';
import { Logger, Transport } from '../../src/core/index.ts';
import type { AmqpTransportOptions } from './amqp-options.ts';
import { AmqpTransport } from './amqp-transport.ts';

/**
 * Binds the RabbitMQ transport (`amqp:`) into the `Transport` multi-binding, logging through the
 * container's `Logger`. The URL defaults to `AMQP_URL` (so `interchange run` picks it up), else
 * `amqp://127.0.0.1:5672`.
 * @example createIntegration({ routes, modules: [amqpModule({ topology: { queues: [{ name: 'orders', type: 'quorum' }] } })] })
 */
export function amqpModule(options: AmqpTransportOptions = {}): ContainerModule {
  return new ContainerModule(({ bind }) => {
    bind(AmqpTransport)
      .toDynamicValue((context) => new AmqpTransport(options, context.get<Logger>(Logger)))
      .inSingletonScope();
    bind<Transport>(Transport).toService(AmqpTransport);
  });
}
