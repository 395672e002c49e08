import type { ClassifiedField } from './classification.ts';

/**
 * The classified fields of every contract known to this process, by `subject@version`: what the
 * core's failure path (`deadLetterMessage`) and the console consult to redact a message by its
 * `schema` header without a registry at hand. Every `JsonSchemaRegistry` adds its contracts when it
 * is built. Fail-safe by construction: entries are only ever added, and two registries classifying
 * the same contract are merged (the union: more redaction, never less). Contracts without classified
 * fields are not entered, so a lookup for them is one `Map.get` that misses.
 */
const index = new Map<string, readonly ClassifiedField[]>();

/** Adds the classified fields of `ref` (merged with what another registry said of it). */
export function indexClassification(ref: string, fields: readonly ClassifiedField[]): void {
  if (fields.length === 0) return;
  const known = index.get(ref);
  if (known === undefined) {
    index.set(ref, fields);
    return;
  }
  const merged = new Map(known.map((field) => [field.pointer, field] as const));
  for (const field of fields) if (!merged.has(field.pointer)) merged.set(field.pointer, field);
  index.set(ref, [...merged.values()]);
}

/** The classified fields of a contract, empty when it has none or is unknown here. */
export function indexedClassification(ref: unknown): readonly ClassifiedField[] {
  return typeof ref === 'string' ? (index.get(ref) ?? NONE) : NONE;
}

const NONE: readonly ClassifiedField[] = Object.freeze([]);
