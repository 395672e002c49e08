/**
 * The SPI tier, for adapter and pattern authors: the `Transport` contract, deliveries and their
 * settlement, the step context and lifecycle helpers, failure policies, errors, backoff, endpoint and
 * option helpers, the store SPIs and the in-process channel. Users of routes need the facade
 * (`interchange-eip`), not this.
 */
export * from './core/index.ts';
export * from './stores/idempotency-store.ts';
export * from './stores/aggregation-repository.ts';
export * from './channel/index.ts';
export * from './schema/step-support.ts';
