import { ContainerModule } from 'inversify';
import { Logger, Transport } from '../../src/core/index.ts';
import type { Amqp10TransportOptions } from './amqp10-options.ts';
import { Amqp10Transport } from './amqp10-transport.ts';

/**
 * Binds the AMQP 1.0 transport (`amqp10:`) into the `Transport` multi-binding, logging through the
 * container's `Logger`. The URL defaults to `AMQP10_URL` (so `interchange run` picks it up), else
 * `amqp://guest:guest@127.0.0.1:5672`.
 * @example createIntegration({ routes, modules: [amqp10Module({ url: 'amqp://app:secret@rabbit:5672', maxDeliveries: 3 })] })
 */
export function amqp10Module(options: Amqp10TransportOptions = {}): ContainerModule {
  return new ContainerModule(({ bind }) => {
    bind(Amqp10Transport)
      .toDynamicValue((context) => new Amqp10Transport(options, context.get<Logger>(Logger)))
      .inSingletonScope();
    bind<Transport>(Transport).toService(Amqp10Transport);
  });
}
