import { ContainerModule } from 'inversify';
import { Logger, Transport } from '../../src/core/index.ts';
import type { ZeroMqTransportOptions } from './zeromq-options.ts';
import { ZeroMqTransport } from './zeromq-transport.ts';

/**
 * Binds the ZeroMQ transport (`zmq:`) into the `Transport` multi-binding, logging through the
 * container's `Logger`.
 * @example createIntegration({ routes, modules: [zeroMqModule({ hwm: 10_000, maxDeliveries: 3 })] })
 */
export function zeroMqModule(options: ZeroMqTransportOptions = {}): ContainerModule {
  return new ContainerModule(({ bind }) => {
    bind(ZeroMqTransport)
      .toDynamicValue((context) => new ZeroMqTransport(options, context.get<Logger>(Logger)))
      .inSingletonScope();
    bind<Transport>(Transport).toService(ZeroMqTransport);
  });
}
