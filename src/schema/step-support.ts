import { RouteDefinitionError, type Delivery, type StepContext } from '../core/index.ts';
import { SchemaRegistry } from './registry.ts';

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
export function failPermanently(context: StepContext, delivery: Delivery, error: Error): void {
  if (context.failed(delivery, error, 1) !== undefined) delivery.nack(error);
}
