import { ContainerModule } from 'inversify';
import { Logger, Transport } from '../../src/core/index.ts';
import type { NatsTransportOptions } from './nats-options.ts';
import { NatsTransport } from './nats-transport.ts';

/**
 * Binds the NATS transport (`nats:`) into the `Transport` multi-binding. The server is `url`, else the
 * `NATS_URL` environment variable, else `nats://127.0.0.1:4222`. Throws `InvalidOptionsError` at
 * resolution for invalid options.
 * @example createIntegration({ routes, modules: [natsModule({ url: 'nats://127.0.0.1:4222', streams: [{ name: 'ORDERS', subjects: ['orders.>'] }] })] })
 */
export function natsModule(options: NatsTransportOptions = {}): ContainerModule {
  return new ContainerModule(({ bind }) => {
    bind(NatsTransport)
      .toDynamicValue((context) => {
        const url = options.url ?? (process.env.NATS_URL || undefined);
        const logger = context.get<Logger>(Logger, { optional: true });
        return new NatsTransport({ ...options, ...(url === undefined ? {} : { url }), ...(logger === undefined ? {} : { logger }) });
      })
      .inSingletonScope();
    bind<Transport>(Transport).toService(NatsTransport);
  });
}
