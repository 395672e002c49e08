import { ContainerModule } from 'inversify';
import { Logger, Transport } from '../core/index.ts';
import { MemoryTransport, type MemoryTransportOptions } from './memory-transport.ts';

/**
 * Binds the in-memory transport (`memory:`) into the `Transport` multi-binding. It logs through the
 * container's `Logger` unless `options.logger` is given.
 */
export function memoryModule(options: MemoryTransportOptions = {}): ContainerModule {
  return new ContainerModule(({ bind }) => {
    bind(MemoryTransport)
      .toDynamicValue((context) => new MemoryTransport({ logger: context.get<Logger>(Logger), ...options }))
      .inSingletonScope();
    bind<Transport>(Transport).toService(MemoryTransport);
  });
}
