import { redactUrl, type AdapterEnvironment } from '../../src/core/index.ts';
import { AmqpTransport } from './amqp-transport.ts';
import { amqpModule } from './amqp.module.ts';

/**
 * The AMQP adapter's declaration for `interchange run`: `AMQP_URL` binds RabbitMQ at that URL (unless
 * the route file binds an `AmqpTransport` itself); without it, nothing is bound.
 */
export const environment: AdapterEnvironment = {
  name: 'amqp',
  variables: ['AMQP_URL'],
  bind: ({ env, isBound }) => {
    const url = env.AMQP_URL;
    if (url === undefined || url === '' || isBound(AmqpTransport)) return undefined;
    return { module: amqpModule({ url }), announcement: `AMQP_URL is set: amqp: endpoints use RabbitMQ at ${redactUrl(url)}` };
  },
};
