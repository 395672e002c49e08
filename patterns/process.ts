import type { ServiceIdentifier } from 'inversify';
import { deliveryStep, stepSpec, type Message, type StepFactory, type StepSpec } from '../src/core/index.ts';

export interface ProcessContext {
  service<S>(id: ServiceIdentifier<S>): S;
}

/**
 * Service activator: runs a side effect for each message (write to a database, call an API) and
 * passes the message on when it resolves. At most `concurrency` run at once (default 1: in order).
 * @example .process(async (m, { service }) => service(Orders).save(m.body))
 */
export function process<T>(handle: (message: Message<T>, context: ProcessContext) => Promise<void> | void, { concurrency = 1 }: { concurrency?: number } = {}): StepFactory<T, T> {
  return (context) => {
    const services: ProcessContext = { service: (id) => context.service(id) };
    return deliveryStep<T, T>(
      context,
      async (delivery, emit) => {
        await handle(delivery.message, services);
        emit(delivery);
      },
      { concurrency },
    );
  };
}

/** `.process(handle, options)`: the service activator's DSL entry (kind `process`). */
export function processStep<T>(handle: (message: Message<T>, context: ProcessContext) => Promise<void> | void, options?: { concurrency?: number }): StepSpec<T, T> {
  return stepSpec('process', process(handle, options));
}
