/**
 * `interchange-eip`: the user API — what a route author needs, and nothing more (≤ 60 names, listed
 * in the README's "Public API"). Adapter and pattern authors build on `interchange-eip/spi`
 * (transports, deliveries, the step context, backoff, option helpers, DI tokens); the test kit is
 * `interchange-eip/testing`, each transport `interchange-eip/adapters/<name>`. What none of them
 * exports is internal and may change in any release.
 */

// Routes: the DSL
export { from, RouteBuilder, ChoiceBuilder, type FromOptions, type ToOptions, type StepOptions } from './route-builder.ts';
export type { RouteSource, DeliveryPolicy } from '../src/dsl/route-definition.ts';
export type { ReceiptBody } from '../src/runtime/receipts.ts';

// Running routes
export { createIntegration, Integration, type IntegrationOptions, type StopOptions } from '../src/runtime/integration.ts';
export { defineIntegration, type IntegrationModule, type RunningIntegration, type StopHook } from './cli/route-file.ts';
export type { RouteMetrics } from '../src/runtime/route-metrics.ts';

// Messages
export { createMessage, withBody, withHeaders, deriveMessage, combineMessages, type Message, type Headers, type MessageInit } from '../src/core/message.ts';

// Failures: policies, retry, dead letters
export { retryAfter, deadLetter, discard, reject, type FailurePolicy, type StepFailure } from '../src/core/failure.ts';
export { retry, deadLetterChannel, type RetryOptions, type DeadLetterChannelOptions } from '../patterns/index.ts';
export { DeadLetterHeaders } from '../src/core/dead-letter.ts';

// Errors (each with a stable `code`)
export { InterchangeError, RouteDefinitionError, NotConnectedError, NotStartedError, TimeoutError, CapacityError, EndpointError, StepError } from '../src/core/errors.ts';
export { SchemaValidationError, SchemaDefinitionError } from '../src/schema/errors.ts';

// Contracts: `schemaModule` loads schemas/; `interchange schemas types` fills `ContractTypes` (module augmentation)
export { schemaModule, type SchemaModuleOptions } from '../src/schema/schema.module.ts';
export type { ContractTypes, ContractName, ContractType } from '../src/schema/contract-types.ts';
export { defineUpcaster } from '../src/schema/upcaster.ts';

// The in-process channel (`memory:`), logging, secrets
export { memoryModule, MemoryTransport } from '../src/channel/index.ts';
export { Logger, consoleLogger, silentLogger } from '../src/core/logger.ts';
export { redactUrl } from '../src/core/redact.ts';
