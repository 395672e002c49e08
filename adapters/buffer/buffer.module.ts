import { ContainerModule } from 'inversify';
import { Logger, Transport } from '../../src/core/index.ts';
import { validateBufferTransportOptions, type BufferTransportOptions } from './buffer-options.ts';
import { BufferTransport } from './buffer-transport.ts';

/**
 * Binds the durable buffer transport (`buffer:`) into the `Transport` multi-binding, logging through
 * the container's `Logger` unless `options.logger` is given. Throws `InvalidOptionsError` at once for
 * invalid options.
 * @example createIntegration({ routes, modules: [bufferModule({ directory: '/var/lib/bridge/buffer' })] })
 */
export function bufferModule(options: BufferTransportOptions): ContainerModule {
  validateBufferTransportOptions(options);
  return new ContainerModule(({ bind }) => {
    bind(BufferTransport)
      .toDynamicValue((context) => new BufferTransport({ logger: context.get<Logger>(Logger), ...options }))
      .inSingletonScope();
    bind<Transport>(Transport).toService(BufferTransport);
  });
}
