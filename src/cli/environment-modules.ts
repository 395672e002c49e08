import type { Container, ContainerModule } from 'inversify';
import { amqpModule, AmqpTransport, redactUrl } from '../../adapters/amqp/index.ts';

export interface EnvironmentModule {
  readonly module: ContainerModule;
  /** One line for the console, secrets redacted. */
  readonly announcement: string;
}

/**
 * Transports configured by the environment, for `interchange run`: `AMQP_URL` binds RabbitMQ unless
 * the route file's modules already bind an `amqp` transport (their configuration wins).
 */
export function environmentModules(container: Container, env: NodeJS.ProcessEnv = process.env): EnvironmentModule[] {
  const modules: EnvironmentModule[] = [];
  const amqpUrl = env.AMQP_URL;
  if (amqpUrl !== undefined && amqpUrl !== '' && !container.isBound(AmqpTransport)) {
    modules.push({ module: amqpModule({ url: amqpUrl }), announcement: `AMQP_URL is set: amqp: endpoints use RabbitMQ at ${redactUrl(amqpUrl)}` });
  }
  return modules;
}
