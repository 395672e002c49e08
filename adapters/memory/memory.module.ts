import { ContainerModule } from 'inversify';
import { Transport } from '../../src/core/index.ts';
import { MemoryTransport, type MemoryTransportOptions } from './memory-transport.ts';

/** Binds the in-memory transport (`memory:`) into the `Transport` multi-binding. */
export function memoryModule(options: MemoryTransportOptions = {}): ContainerModule {
  return new ContainerModule(({ bind }) => {
    bind(MemoryTransport).toConstantValue(new MemoryTransport(options));
    bind<Transport>(Transport).toService(MemoryTransport);
  });
}
