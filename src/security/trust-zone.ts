import type { StepDefinition } from '../core/step.ts';
import { classifiedFields, fieldsOfClass, PROTECTED_CLASSES, type Classification, type ClassifiedField, type SchemaLookup } from './classification.ts';

/** The step kind of `.protect()`: what `trustZoneFlows` looks for before a destination outside the zone. */
export const PROTECT_KIND = 'protect';

/**
 * Where classified data may go in clear: the endpoint URIs inside the trust zone, as prefixes
 * (`'memory:'`, `'amqp:queue/orders.'`, `'mqtt://broker.internal'`). Everything else is outside.
 * The zone is a declaration a route's author (and `trustZoneFlows`) checks against; it does not
 * rewrite routes: what leaves the zone goes through `.protect()` (encrypt or drop the classified
 * fields) — a dead-letter destination is always expected inside.
 */
export interface TrustZone {
  readonly internal: readonly string[];
  /** Whether `uri` is inside the zone (a prefix of `internal` matches it). */
  contains(uri: string): boolean;
}

/**
 * Declares the trust zone by URI prefixes.
 * @example const zone = trustZone({ internal: ['memory:', 'amqp:queue/internal.'] }); zone.contains('amqp:exchange/partner') // false
 */
export function trustZone({ internal }: { readonly internal: readonly string[] }): TrustZone {
  if (!Array.isArray(internal) || internal.some((prefix) => typeof prefix !== 'string' || prefix.trim() === '')) throw new TypeError('trustZone: internal must be an array of non-empty URI prefixes');
  const prefixes = Object.freeze([...internal]);
  return Object.freeze({ internal: prefixes, contains: (uri: string) => prefixes.some((prefix) => uri.startsWith(prefix)) });
}

/** One way classified fields leave a route: to `destination`, carrying `contract`'s `fields`. */
export interface ClassifiedFlow {
  readonly route: string;
  readonly step: string;
  readonly destination: string;
  readonly contract: string;
  readonly fields: readonly ClassifiedField[];
  readonly inside: boolean;
  /** Whether a `.protect()` step precedes the destination on the route's way. */
  readonly protected: boolean;
  /** Outside the zone, classified and not protected: the flow leaks. */
  readonly leaks: boolean;
}

/** What `trustZoneFlows` reads of a route (a `RouteDefinition` is one). */
export interface RouteShape {
  readonly id: string;
  readonly steps: readonly StepDefinition[];
  readonly errorHandler?: { readonly deadLetterUri?: string | undefined };
}

/**
 * Where the classified fields of each route go: for every destination a route sends to (its `.to()`s,
 * branches included, and its dead-letter channel), the contracts the route bound before it
 * (`.validate()`, `.to(uri, { contract })`) with classified fields of `classes` (default `internal`,
 * `personal`, `secret`), whether the destination is inside `zone`, and whether a `.protect()` step came
 * first. A flow with `leaks` is a classified contract leaving the zone unprotected (a dead-letter
 * channel outside the zone always leaks: dead letters keep their body for replay).
 * @example expect(trustZoneFlows(routes, zone, registry).filter((flow) => flow.leaks)).toEqual([])
 */
export function trustZoneFlows(routes: readonly RouteShape[], zone: TrustZone, registry: SchemaLookup, classes: readonly Classification[] = PROTECTED_CLASSES): ClassifiedFlow[] {
  const flows: ClassifiedFlow[] = [];
  for (const route of routes) {
    const contracts = new Set<string>();
    const add = (step: string, destination: string, contract: string, guarded: boolean): void => {
      const fields = fieldsOfClass(classifiedFields(registry, contract), classes);
      if (fields.length === 0) return;
      const inside = zone.contains(destination);
      flows.push({ route: route.id, step, destination, contract, fields, inside, protected: guarded, leaks: !inside && !guarded });
    };
    const walk = (steps: readonly StepDefinition[], guarded: boolean): void => {
      let protectedSoFar = guarded;
      for (const step of steps) {
        if (step.kind === PROTECT_KIND) protectedSoFar = true;
        if (step.contract !== undefined && step.kind !== PROTECT_KIND) contracts.add(step.contract);
        for (const destination of step.destinations ?? step.sendsTo) for (const contract of contracts) add(step.id, destination, contract, protectedSoFar);
        for (const branch of step.branches) walk(branch, protectedSoFar);
      }
    };
    walk(route.steps, false);
    const deadLetterUri = route.errorHandler?.deadLetterUri;
    if (deadLetterUri !== undefined) for (const contract of contracts) add('dead-letter-channel', deadLetterUri, contract, false);
  }
  return flows;
}
