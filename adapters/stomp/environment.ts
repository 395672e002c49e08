import type { AdapterEnvironment } from '../../src/core/adapter-environment.ts';
import { redactUrl } from '../../src/core/redact.ts';

/**
 * The STOMP adapter's declaration for `interchange run`: `STOMP_URL`, or any route using `stomp:`, binds
 * a STOMP transport (unless the route file binds a `StompTransport` itself) — to `STOMP_URL`, else to
 * RabbitMQ's STOMP port `stomp://127.0.0.1:61613`. A second broker (another scheme) is bound by the
 * route file (`stompModule({ url, scheme })`).
 *
 * Cheap to import: the transport (and @stomp/stompjs with it) is imported by `bind`, only when it may
 * bind; it never connects.
 */
export const environment: AdapterEnvironment = {
  name: 'stomp',
  variables: ['STOMP_URL'],
  bind: async ({ env, schemes, isBound }) => {
    const url = env.STOMP_URL === '' ? undefined : env.STOMP_URL;
    if (url === undefined && !schemes.has('stomp')) return undefined;
    const [{ StompTransport }, { stompModule }] = await Promise.all([import('./stomp-transport.ts'), import('./stomp.module.ts')]);
    if (isBound(StompTransport)) return undefined;
    return url === undefined
      ? { module: stompModule({ url: 'stomp://127.0.0.1:61613' }), announcement: 'no STOMP_URL: stomp: endpoints use the broker at stomp://127.0.0.1:61613 (set STOMP_URL to use another)' }
      : { module: stompModule({ url }), announcement: `STOMP_URL is set: stomp: endpoints use the broker at ${redactUrl(url)}` };
  },
};
