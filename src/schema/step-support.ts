import { RouteDefinitionError, withHeaders, type Delivery, type Headers, type StepContext } from '../core/index.ts';
import { SchemaValidationError } from './errors.ts';
import { SchemaRegistry } from './registry.ts';
import { ValidationErrorsHeader, validationErrorsHeaderValue } from './validation-header.ts';

/**
 * The registry a schema step uses, resolved once when the route is compiled. A missing binding or an
 * unknown contract is a `RouteDefinitionError` at start, naming route and step — never a per-message failure.
 */
export function registryFor(context: StepContext, contracts: readonly string[]): SchemaRegistry {
  let registry: SchemaRegistry;
  try {
    registry = context.service<SchemaRegistry>(SchemaRegistry);
  } catch {
    throw new RouteDefinitionError("no SchemaRegistry is bound: add schemaModule({ directory: 'schemas' }) to the integration's modules", context.routeId, context.stepId, context.declaredAt);
  }
  for (const contract of contracts) {
    if (!registry.has(contract)) {
      throw new RouteDefinitionError(`unknown contract '${contract}' (registry has: ${registry.contracts().join(', ') || 'none'})`, context.routeId, context.stepId, context.declaredAt);
    }
    try {
      registry.validator(contract); // compiled now, at start, not on the first message
    } catch (cause) {
      throw new RouteDefinitionError((cause as Error).message, context.routeId, context.stepId, context.declaredAt);
    }
  }
  return registry;
}

/**
 * Hands a delivery that failed for good (an invalid message: the same input fails the same way) to
 * the route's error handler. The error is `permanent`, so the runtime never asks for a retry; should
 * a foreign context still return a delay, the delivery is rejected rather than retried.
 */
export function failPermanently(context: StepContext, delivery: Delivery, error: unknown): void {
  if (context.failed(delivery, error, 1) !== undefined) delivery.nack(error instanceof Error ? error : new Error(String(error)));
}

/**
 * Fails a message that did not pass a check for good (`failPermanently`), with its evidence attached
 * for the error handler and the dead-letter channel: the `evidence` headers, and for a
 * `SchemaValidationError` its issues in `x-interchange-validation-errors` (JSON, at most
 * `MAX_REPORTED_ISSUES`). The one way a step reports an invalid message; `validate`, `upcast` and
 * custom checks use it. Without evidence to add, the delivery goes as it is.
 * @example catch (error) { failWithEvidence(context, delivery, error, { 'x-mqtt-topic': topic }) }
 */
export function failWithEvidence(context: StepContext, delivery: Delivery, error: unknown, evidence: Headers = {}): void {
  const headers: Headers = error instanceof SchemaValidationError ? { ...evidence, [ValidationErrorsHeader]: validationErrorsHeaderValue(error.issues) } : evidence;
  failPermanently(context, Object.keys(headers).length === 0 ? delivery : delivery.with(withHeaders(delivery.message, headers)), error);
}
