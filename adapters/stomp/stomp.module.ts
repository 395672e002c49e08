import { ContainerModule } from 'inversify';
import { Logger, Transport } from '../../src/core/index.ts';
import type { StompTransportOptions } from './stomp-options.ts';
import { StompTransport } from './stomp-transport.ts';

/**
 * Binds a STOMP transport into the `Transport` multi-binding, logging through the container's
 * `Logger`. The broker is `url`, else `STOMP_URL`, else `stomp://127.0.0.1:61613`. With the default
 * scheme (`stomp`) the transport is also bound as `StompTransport`; a module with another `scheme`
 * (a second broker: `stompModule({ url: 'stomp://127.0.0.1:61623', scheme: 'activemq' })`) binds only the
 * `Transport`, so several modules live in one container. Throws `StompConfigurationError` for invalid options.
 * @example createIntegration({ routes, modules: [stompModule({ url: 'stomp://guest:guest@127.0.0.1:61613' }), stompModule({ url: 'stomp://127.0.0.1:61623', scheme: 'activemq' })] })
 */
export function stompModule(options: StompTransportOptions = {}): ContainerModule {
  return new ContainerModule(({ bind }) => {
    const create = (logger: Logger | undefined): StompTransport => new StompTransport(options, logger);
    if ((options.scheme ?? 'stomp') === 'stomp') {
      bind(StompTransport)
        .toDynamicValue((context) => create(context.get<Logger>(Logger, { optional: true })))
        .inSingletonScope();
      bind<Transport>(Transport).toService(StompTransport);
    } else {
      bind<Transport>(Transport)
        .toDynamicValue((context) => create(context.get<Logger>(Logger, { optional: true })))
        .inSingletonScope();
    }
  });
}
