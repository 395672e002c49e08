import { ContainerModule } from 'inversify';
import { consoleLogger, Logger, Transport } from '../../src/spi.ts';
import { AmqpMemoryBroker, type AmqpMemoryBrokerOptions } from './memory-broker.ts';

/** A DI module binding an in-memory broker, and that broker (to read its queues in reports and tests). */
export interface AmqpMemoryModule extends ContainerModule {
  readonly broker: AmqpMemoryBroker;
}

/**
 * Binds an in-memory RabbitMQ (`AmqpMemoryBroker`) as the `amqp:` transport, in place of
 * `amqpModule`: the same topology and endpoint URIs, nothing installed. The broker is created here,
 * once per module (every container loading the module shares it), and logs through the container's
 * `Logger` unless `options.logger` is given.
 * @example const amqp = amqpMemoryModule({ topology }); createIntegration({ routes, modules: [amqp] }); amqp.broker.queueDepths()
 */
export function amqpMemoryModule(options: AmqpMemoryBrokerOptions = {}): AmqpMemoryModule {
  let logger: Logger = options.logger ?? consoleLogger;
  const forwarding: Logger = {
    info: (message, fields) => logger.info(message, fields),
    warn: (message, fields) => logger.warn(message, fields),
    error: (message, fields) => logger.error(message, fields),
  };
  const broker = new AmqpMemoryBroker({ ...options, logger: forwarding });
  const module = new ContainerModule(({ bind }) => {
    bind(AmqpMemoryBroker)
      .toDynamicValue((context) => {
        if (options.logger === undefined) logger = context.get<Logger>(Logger, { optional: true }) ?? consoleLogger;
        return broker;
      })
      .inSingletonScope();
    bind<Transport>(Transport).toService(AmqpMemoryBroker);
  });
  return Object.assign(module, { broker });
}
