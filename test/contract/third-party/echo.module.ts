import { ContainerModule } from 'inversify';
import { Transport, type AdapterEnvironment } from 'interchange-eip/spi';
import { EchoTransport } from './echo-transport.ts';

/** Binds the echo transport (`echo:`) into the `Transport` multi-binding, as an adapter package would. */
export function echoModule(): ContainerModule {
  return new ContainerModule(({ bind }) => {
    bind(EchoTransport).toSelf().inSingletonScope();
    bind<Transport>(Transport).toService(EchoTransport);
  });
}

/**
 * The echo adapter's declaration for `interchange run` (INTERCHANGE_ADAPTERS=<this package>): a route
 * using `echo:` gets the transport, unless the route file binds one itself; `ECHO_URL` is checked.
 */
export const environment: AdapterEnvironment = {
  name: 'echo',
  variables: ['ECHO_URL'],
  bind: ({ schemes, isBound }) => (schemes.has('echo') && !isBound(EchoTransport) ? { module: echoModule(), announcement: 'echo: endpoints use the in-process echo transport' } : undefined),
};
