import type { AdapterEnvironment } from '../../src/core/adapter-environment.ts';
import { redactUrl } from '../../src/core/redact.ts';

/**
 * The AMQP 1.0 adapter's declaration for `interchange run`: `AMQP10_URL`, or any route using
 * `amqp10:`, binds the transport (unless the route file binds an `Amqp10Transport` itself) — to
 * `AMQP10_URL`, else to `amqp://guest:guest@127.0.0.1:5672` (RabbitMQ with the `rabbitmq_amqp1_0` plugin).
 *
 * Cheap to import: the transport (and rhea with it) is imported by `bind`, only when it may bind; it never connects.
 */
export const environment: AdapterEnvironment = {
  name: 'amqp10',
  variables: ['AMQP10_URL'],
  bind: async ({ env, schemes, isBound }) => {
    const url = env.AMQP10_URL === '' ? undefined : env.AMQP10_URL;
    if (url === undefined && !schemes.has('amqp10')) return undefined;
    const [{ Amqp10Transport }, { amqp10Module }] = await Promise.all([import('./amqp10-transport.ts'), import('./amqp10.module.ts')]);
    if (isBound(Amqp10Transport)) return undefined;
    return url === undefined
      ? { module: amqp10Module(), announcement: 'no AMQP10_URL: amqp10: endpoints use the broker at amqp://guest:***@127.0.0.1:5672 (set AMQP10_URL to use another)' }
      : { module: amqp10Module({ url }), announcement: `AMQP10_URL is set: amqp10: endpoints use the broker at ${redactUrl(url)}` };
  },
};
