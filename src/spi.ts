/**
 * The SPI tier (`interchange-eip/spi`), for adapter and pattern authors: the `Transport` contract,
 * deliveries and their settlement, the step context and lifecycle helpers (`deliveryStep`, `fanOut`),
 * failure policies, errors, backoff, endpoint and option helpers, the DI tokens, route definitions as
 * data, the store SPIs, the in-process channel, and what a step needs of the schema registry. Users of
 * routes need the facade (`interchange-eip`), not this. Anything in `src/` not exported here (or by
 * the facade) is internal.
 */
export * from './core/index.ts';
export * from './stores/idempotency-store.ts';
export * from './stores/aggregation-repository.ts';
export * from './stores/persistent-aggregation-repository.ts';
export * from './stores/claim-check-store.ts';
export * from './stores/file-claim-check-store.ts';
export * from './stores/message-store.ts';
export * from './stores/delayed-message-store.ts';
export * from './channel/index.ts';

// DI: the tokens (`Transport`, `Logger` come with the core above) and the core bindings
export { Scheduler } from './di/tokens.ts';
export { coreModule } from './di/core.module.ts';

// Routes as data, what the runtime reports, the transports by scheme
export { validateRoutes, type RouteDefinition, type RouteSource, type SourceOptions, type DeliveryPolicy, type IdempotencyOptions, type ReceiptOptions } from './dsl/route-definition.ts';
export { ReceiptHeaders, type ReceiptOutcome, type ReceiptBody } from './runtime/receipts.ts';
export type { RouteMetrics } from './runtime/route-metrics.ts';
export type { RouteFailure, StopOptions } from './runtime/integration.ts';
export type { RouteStatus } from './runtime/route-runtime.ts';
export type { StepMetrics } from './runtime/route-metrics.ts';
export { RouteObserver, type RouteProbe, type ObservedRoute, type ExecutionOutcome, type GaveUp, type PublishObservation } from './runtime/route-observer.ts';
export { TransportRegistry } from './runtime/transport-registry.ts';

// Contracts, for steps and adapters that validate: the registry, its errors, the typed contract map
export * from './schema/step-support.ts';
export * from './schema/errors.ts';
export * from './schema/validation-header.ts';
export { SchemaRegistry, JsonSchemaRegistry, type SchemaRegistryOptions } from './schema/registry.ts';
export { contractRef, parseContractRef, type ContractRef } from './schema/contract.ts';
export { parseJsonSafely, DEFAULT_PAYLOAD_LIMITS, type PayloadLimits } from './schema/safe-json.ts';
export { defineUpcaster, type Upcaster } from './schema/upcaster.ts';
export type { ContractTypes, ContractName, ContractType, ContractVersion, ContractCheck } from './schema/contract-types.ts';
