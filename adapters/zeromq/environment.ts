import type { AdapterEnvironment, AdapterEnvironmentContext, AdapterBinding } from '../../src/core/adapter-environment.ts';

/**
 * The ZeroMQ adapter's declaration for `interchange run`: a route using `zmq:` binds the transport
 * (unless the route file binds a `ZeroMqTransport` itself). ZeroMQ has no server, so no URL and no
 * credentials: every address is in the endpoint URI. The transport (and zeromq's native addon with
 * it) is imported by `bind`, only then; it never binds or connects a socket.
 */
export const environment: AdapterEnvironment = { name: 'zeromq', variables: [], bind: bindZeroMq };

async function bindZeroMq({ schemes, isBound }: AdapterEnvironmentContext): Promise<AdapterBinding | undefined> {
  if (!schemes.has('zmq')) return undefined;
  const [{ ZeroMqTransport }, { zeroMqModule }] = await Promise.all([import('./zeromq-transport.ts'), import('./zeromq.module.ts')]);
  if (isBound(ZeroMqTransport)) return undefined;
  return { module: zeroMqModule(), announcement: 'zmq: endpoints use ZeroMQ sockets (addresses in the endpoint URIs; at-most-once)' };
}
