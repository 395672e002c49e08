import type { ServiceIdentifier } from 'inversify';
import { deliveryStep, stepSpec, withBody, type Message, type StepFactory, type StepSpec } from '../src/core/index.ts';

export interface EnrichContext {
  /** A service bound in the integration's container. */
  service<S>(id: ServiceIdentifier<S>): S;
}

export interface EnrichOptions {
  /** Lookups running at once for this step (default 8); later messages wait their turn. */
  readonly concurrency?: number;
}

/**
 * Content enricher: fetches extra data for each message (asynchronously, at most `concurrency` at
 * once) and merges it into a new body. A rejected fetch fails that message only, through the
 * route's error handler (which may retry it with backoff).
 * @example .enrich((m, { service }) => service(Customers).byId(m.body.customerId), (m, customer) => ({ ...m.body, customer }))
 */
export function enrich<T, E, O>(
  fetch: (message: Message<T>, context: EnrichContext) => Promise<E>,
  merge: (message: Message<T>, extra: E) => O,
  { concurrency = 8 }: EnrichOptions = {},
): StepFactory<T, O> {
  return (context) => {
    const services: EnrichContext = { service: (id) => context.service(id) };
    return deliveryStep<T, O>(
      context,
      async (delivery, emit) => {
        const extra = await fetch(delivery.message, services);
        emit(delivery.with(withBody(delivery.message, merge(delivery.message, extra))));
      },
      { concurrency },
    );
  };
}

/** `.enrich(fetch, merge, options)`: the content enricher's DSL entry (kind `enrich`). */
export function enrichStep<T, E, O>(fetch: (message: Message<T>, context: EnrichContext) => Promise<E>, merge: (message: Message<T>, extra: E) => O, options?: EnrichOptions): StepSpec<T, O> {
  return stepSpec('enrich', enrich(fetch, merge, options));
}
