import { ContainerModule } from 'inversify';
import { asyncScheduler, type SchedulerLike } from 'rxjs';
import { consoleLogger, Logger, Transport } from '../core/index.ts';
import { TransportRegistry } from '../runtime/transport-registry.ts';
import { Scheduler } from './tokens.ts';

/**
 * The core bindings: the transport registry (collecting every `Transport` multi-binding), the default
 * logger and scheduler. Adapters add their transports with modules of their own.
 */
export const coreModule = new ContainerModule(({ bind }) => {
  bind(TransportRegistry)
    .toDynamicValue((context) => new TransportRegistry(context.getAll<Transport>(Transport, { optional: true })))
    .inSingletonScope();
  bind<Logger>(Logger).toConstantValue(consoleLogger);
  bind<SchedulerLike>(Scheduler).toConstantValue(asyncScheduler);
});
