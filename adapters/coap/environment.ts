import type { AdapterEnvironment } from '../../src/core/adapter-environment.ts';

/**
 * The CoAP adapter's declaration for `interchange run`: any route using `coap:` binds the CoAP
 * transport (unless the route file binds a `CoapTransport` itself) with its embedded server — on
 * `COAP_LISTEN` (`host:port`, `[v6]:port` or a port alone) when set, else 127.0.0.1:5683 — so devices
 * can post with nothing else set up. Imports node-coap only when it binds; never listens by itself.
 */
export const environment: AdapterEnvironment = {
  name: 'coap',
  variables: [],
  bind: async ({ env, schemes, isBound }) => {
    if (!schemes.has('coap')) return undefined;
    const [{ CoapTransport }, { coapModule }] = await Promise.all([import('./coap-transport.ts'), import('./coap.module.ts')]);
    if (isBound(CoapTransport)) return undefined;
    const listen = env.COAP_LISTEN === undefined || env.COAP_LISTEN === '' ? undefined : parseListen(env.COAP_LISTEN);
    return listen === undefined
      ? { module: coapModule(), announcement: 'coap: endpoints use an embedded CoAP server on udp://127.0.0.1:5683 (set COAP_LISTEN=host:port to change)' }
      : { module: coapModule(listen), announcement: `COAP_LISTEN is set: coap: endpoints use an embedded CoAP server on udp://${listen.host.includes(':') ? `[${listen.host}]` : listen.host}:${listen.port}` };
  },
};

/** `host:port`, `[v6]:port` or `port` → options; throws `Error` naming the variable on anything else. */
export function parseListen(text: string): { host: string; port: number } {
  const match = /^(?:(?:\[([^\]]+)\]|([^:[\]]+)):)?(\d{1,5})$/.exec(text.trim());
  const port = Number(match?.[3]);
  if (match === null || !Number.isInteger(port) || port > 65535) throw new Error(`COAP_LISTEN must be host:port, [ipv6]:port or a port, got '${text.slice(0, 64)}'`);
  return { host: match[1] ?? match[2] ?? '127.0.0.1', port };
}
