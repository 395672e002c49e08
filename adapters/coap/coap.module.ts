import { ContainerModule } from 'inversify';
import { Logger, Transport } from '../../src/core/index.ts';
import type { CoapTransportOptions } from './coap-options.ts';
import { CoapTransport } from './coap-transport.ts';

/**
 * Binds the CoAP transport (`coap:`) into the `Transport` multi-binding, logging through the
 * container's `Logger`. Its embedded server listens on 127.0.0.1:5683 unless told otherwise.
 * @example createIntegration({ routes, modules: [coapModule({ host: '0.0.0.0', port: 5683 })] })
 */
export function coapModule(options: CoapTransportOptions = {}): ContainerModule {
  return new ContainerModule(({ bind }) => {
    bind(CoapTransport)
      .toDynamicValue((context) => new CoapTransport(options, context.get<Logger>(Logger)))
      .inSingletonScope();
    bind<Transport>(Transport).toService(CoapTransport);
  });
}
