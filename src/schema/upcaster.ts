import type { AnySchemaObject } from 'ajv';
import type { ContractName, ContractType } from './contract-types.ts';

/** A translator from one version of a subject to a later one (a message translator between contracts). */
export interface Upcaster {
  readonly subject: string;
  readonly from: number;
  readonly to: number;
  translate(body: unknown): unknown;
}

/**
 * A typed upcaster, registered with `schemaModule({ upcasters })`: the compiler checks `translate`
 * against both contracts' generated types.
 * @example defineUpcaster('device.telemetry', 1, 2, (v1) => ({ ...v1, unit: 'C' }))
 */
export function defineUpcaster<S extends string, F extends number, T extends number>(
  subject: S,
  from: F,
  to: T,
  translate: (body: ContractType<`${S}@${F}` & ContractName>) => ContractType<`${S}@${T}` & ContractName>,
): Upcaster {
  // through unknown: with no contracts known (an empty `ContractTypes`) both sides are `never`
  return { subject, from, to, translate: translate as unknown as (body: unknown) => unknown };
}

/**
 * What `.upcast()` does between consecutive versions without a registered translator: copies the
 * body and fills each missing top-level property that the newer version gives a `default`
 * (the BACKWARD rule "a new required field needs a default" is what makes this enough).
 */
export function defaultsUpcaster(target: AnySchemaObject): Pick<Upcaster, 'translate'> {
  const properties = (target.properties ?? {}) as Record<string, { default?: unknown }>;
  const defaults = Object.entries(properties).filter(([, property]) => typeof property === 'object' && property !== null && 'default' in property);
  return {
    translate(body) {
      if (body === null || typeof body !== 'object' || Array.isArray(body)) return body;
      const copy: Record<string, unknown> = { ...(body as Record<string, unknown>) };
      for (const [name, property] of defaults) if (!Object.hasOwn(copy, name)) copy[name] = structuredClone(property.default);
      return copy;
    },
  };
}
