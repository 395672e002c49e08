import type { AnySchemaObject } from 'ajv';

/**
 * Every `$ref`/`$dynamicRef` in `schema` that points outside the given set of schema ids (after
 * resolving it against the enclosing `$id`): the registry never fetches a schema, so such a
 * reference is refused when contracts load. Fragment-only refs (`#/$defs/x`) are local.
 */
export function foreignRefs(schema: AnySchemaObject, known: ReadonlySet<string>): string[] {
  const foreign: string[] = [];
  const ids = new Set(known);
  collectIds(schema, ids);
  const visit = (node: unknown, base: string): void => {
    if (Array.isArray(node)) {
      for (const item of node) visit(item, base);
      return;
    }
    if (node === null || typeof node !== 'object') return;
    const record = node as Record<string, unknown>;
    const here = typeof record.$id === 'string' ? resolve(record.$id, base) ?? base : base;
    for (const key of ['$ref', '$dynamicRef']) {
      const ref = record[key];
      if (typeof ref !== 'string' || ref.startsWith('#')) continue;
      const target = resolve(ref, here);
      if (target === undefined || !ids.has(withoutFragment(target))) foreign.push(ref);
    }
    for (const [key, value] of Object.entries(record)) if (key !== 'enum' && key !== 'const' && key !== 'default' && key !== 'examples') visit(value, here);
  };
  visit(schema, typeof schema.$id === 'string' ? schema.$id : 'urn:interchange:anonymous');
  return foreign;
}

function collectIds(node: unknown, ids: Set<string>, base = 'urn:interchange:anonymous'): void {
  if (node === null || typeof node !== 'object') return;
  const record = node as Record<string, unknown>;
  let here = base;
  if (typeof record.$id === 'string') {
    here = resolve(record.$id, base) ?? base;
    ids.add(withoutFragment(here));
  }
  for (const value of Object.values(record)) collectIds(value, ids, here);
}

/** `ref` resolved against `base`, or undefined when it does not resolve. */
export function resolve(ref: string, base: string): string | undefined {
  try {
    return new URL(ref, base).href;
  } catch {
    return undefined;
  }
}

export function withoutFragment(uri: string): string {
  const hash = uri.indexOf('#');
  return hash === -1 ? uri : uri.slice(0, hash);
}
