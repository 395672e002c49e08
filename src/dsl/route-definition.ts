import { parseEndpoint, RouteDefinitionError, type ErrorHandler, type StepDefinition } from '../core/index.ts';
import { missingTransportHint } from '../runtime/transport-hints.ts';

export interface SourceOptions {
  /**
   * Deliveries unsettled at once for this route: the route's admission control. Default: the source
   * transport's `defaultPrefetch` (MQTT 1,000), else 100.
   */
  readonly prefetch?: number;
}

/** A route as data: what the DSL builds and the runtime compiles. */
export interface RouteDefinition {
  readonly id: string;
  readonly source: string;
  readonly sourceOptions: SourceOptions;
  readonly steps: readonly StepDefinition[];
  readonly errorHandler: ErrorHandler;
  readonly declaredAt: string;
}

/** Anything that yields a route definition: a builder or a definition itself. */
export interface RouteSource {
  definition(): RouteDefinition;
}

/**
 * Build-time checks, all reported as `RouteDefinitionError` naming route and step:
 * empty or blank route and step ids (dead letters and errors could not name them), duplicate route
 * ids, duplicate step ids in a route, endpoints whose scheme no transport serves (source, static
 * destinations, dead-letter channel; saying what to set for a known one), and routes that never send anywhere.
 */
export function validateRoutes(routes: readonly RouteDefinition[], schemes: ReadonlySet<string>): void {
  const seen = new Map<string, RouteDefinition>();
  for (const route of routes) {
    if (isBlank(route.id)) {
      throw new RouteDefinitionError(`route id is empty: name the route with { id: 'orders' }, or leave id out to use its source URI ('${route.source}')`, undefined, undefined, route.declaredAt);
    }
    const twin = seen.get(route.id);
    if (twin !== undefined) {
      throw new RouteDefinitionError(`duplicate route id (also declared at ${twin.declaredAt}); give one of them { id }`, route.id, undefined, route.declaredAt);
    }
    seen.set(route.id, route);
    const checkUri = (uri: string, stepId?: string, declared = route.declaredAt): void => {
      let scheme: string;
      try {
        scheme = parseEndpoint(uri).scheme;
      } catch (error) {
        throw new RouteDefinitionError((error as Error).message, route.id, stepId, declared);
      }
      if (!schemes.has(scheme)) {
        throw new RouteDefinitionError(`unknown scheme '${scheme}' in '${uri}' (known: ${[...schemes].sort().join(', ') || 'none'})${missingTransportHint(scheme)}`, route.id, stepId, declared);
      }
    };
    checkUri(route.source);
    if (route.errorHandler.deadLetterUri !== undefined) checkUri(route.errorHandler.deadLetterUri);
    const stepIds = new Set<string>();
    let sends = false;
    const walk = (steps: readonly StepDefinition[]): void => {
      for (const step of steps) {
        if (isBlank(step.id)) throw new RouteDefinitionError(`step id is empty: name the ${step.kind} step, or leave id out for a generated one`, route.id, undefined, step.declaredAt);
        if (stepIds.has(step.id)) throw new RouteDefinitionError('duplicate step id', route.id, step.id, step.declaredAt);
        stepIds.add(step.id);
        for (const uri of step.sendsTo) checkUri(uri, step.id, step.declaredAt);
        sends ||= step.sends;
        for (const branch of step.branches) walk(branch);
      }
    };
    walk(route.steps);
    if (!sends) throw new RouteDefinitionError("route has no .to(): its messages would be acknowledged and go nowhere", route.id, undefined, route.declaredAt);
  }
}

/** An id that names nothing: not a string (a definition built by hand), empty or only whitespace. */
function isBlank(id: unknown): boolean {
  return typeof id !== 'string' || id.trim() === '';
}
