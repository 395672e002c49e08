import type { AdapterEnvironment } from '../../src/core/adapter-environment.ts';
import { redactUrl } from '../../src/core/redact.ts';

/**
 * The NATS adapter's declaration for `interchange run`: `NATS_URL`, or any route using `nats:`, binds
 * NATS (unless the route file binds a `NatsTransport` itself) — to `NATS_URL`, else to
 * `nats://127.0.0.1:4222` (there is no embedded NATS server).
 *
 * Cheap to import: the transport (and nats.js with it) is imported by `bind`, only when it may bind; it
 * never connects.
 */
export const environment: AdapterEnvironment = {
  name: 'nats',
  variables: ['NATS_URL'],
  bind: async ({ env, schemes, isBound }) => {
    const url = env.NATS_URL === '' ? undefined : env.NATS_URL;
    if (url === undefined && !schemes.has('nats')) return undefined;
    const [{ NatsTransport }, { natsModule }] = await Promise.all([import('./nats-transport.ts'), import('./nats.module.ts')]);
    if (isBound(NatsTransport)) return undefined;
    return url === undefined
      ? { module: natsModule(), announcement: 'no NATS_URL: nats: endpoints use the server at nats://127.0.0.1:4222 (set NATS_URL to use another)' }
      : { module: natsModule({ url }), announcement: `NATS_URL is set: nats: endpoints use the server at ${redactUrl(url)}` };
  },
};
