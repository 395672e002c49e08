import type { AdapterEnvironment } from '../../src/core/adapter-environment.ts';
import { redactUrl } from '../../src/core/redact.ts';

/**
 * The AMQP adapter's declaration for `interchange run`: `AMQP_URL` binds RabbitMQ at that URL (unless
 * the route file binds an `AmqpTransport` itself); without it, nothing is bound.
 *
 * Cheap to import: the transport (and amqplib with it) is imported by `bind`, and only when
 * `AMQP_URL` is set, so a run that does not use RabbitMQ never loads it. `bind` therefore resolves
 * asynchronously; it never connects.
 */
export const environment: AdapterEnvironment = {
  name: 'amqp',
  variables: ['AMQP_URL'],
  bind: async ({ env, isBound }) => {
    const url = env.AMQP_URL;
    if (url === undefined || url === '') return undefined;
    const [{ AmqpTransport }, { amqpModule }] = await Promise.all([import('./amqp-transport.ts'), import('./amqp.module.ts')]);
    if (isBound(AmqpTransport)) return undefined;
    return { module: amqpModule({ url }), announcement: `AMQP_URL is set: amqp: endpoints use RabbitMQ at ${redactUrl(url)}` };
  },
};
