import type { AnySchemaObject } from 'ajv';
import { resolve, withoutFragment } from './remote-refs.ts';

/** A contract as the cycle check sees it: its schema and the name its errors use (file, else `subject@version`). */
export interface NamedSchema {
  readonly name: string;
  readonly schema: AnySchemaObject;
}

/** A subschema: the contract it is in, and its JSON pointer from that contract's root (`''` the root). */
export interface SchemaLocation {
  readonly name: string;
  readonly pointer: string;
}

/** A cycle of references: the subschemas it runs through, back to the first. */
export type RefCycle = readonly SchemaLocation[];

/** Keywords whose subschemas apply to the same instance: a cycle through these alone never ends. */
const IN_PLACE_SINGLE = ['not', 'if', 'then', 'else'] as const;
const IN_PLACE_LIST = ['allOf', 'anyOf', 'oneOf'] as const;
const REFS = ['$ref', '$dynamicRef'] as const;
/** Values that are data, not subschemas. */
const DATA_KEYWORDS = new Set(['enum', 'const', 'default', 'examples']);

interface Location {
  readonly name: string;
  /** The object (schema, array or map of schemas) holding this one under `key`; undefined for a contract's root. */
  readonly parent: object | undefined;
  readonly key: string;
  /** The base URI `$ref`s of this subschema resolve against (its nearest `$id`). */
  readonly base: string;
}

/**
 * The first cycle of references (`$ref`, `$dynamicRef`, taken statically) and in-place applicators
 * (`allOf`/`anyOf`/`oneOf`/`not`/`if`/`then`/`else`/`dependentSchemas`) that passes through no
 * keyword consuming input (`properties`, `items`, `contains`…), within or across `schemas`; such a
 * schema would recurse forever on some body (JSON Schema leaves it undefined; ajv overflows the
 * stack). A recursive schema that descends into a property or an item (a tree) is no cycle here.
 * Unresolvable references are ignored (ajv reports them). Iterative: no recursion on the schemas.
 * @example inPlaceRefCycle([{ name: 'a/1.json', schema: { $id: 'urn:a:1', $ref: '#' } }]) // [{ name: 'a/1.json', pointer: '' }, { name: 'a/1.json', pointer: '' }]
 */
export function inPlaceRefCycle(schemas: readonly NamedSchema[]): RefCycle | undefined {
  const index = indexSchemas(schemas);
  const state = new Map<object, 'open' | 'done'>();
  // Trees have no cycles: every cycle runs through a reference, so searching from those finds it.
  for (const start of index.referring) {
    if (state.has(start)) continue;
    // Depth-first, iterative: each frame is a node and the edges still to follow.
    const stack: { node: object; next: object[] }[] = [{ node: start, next: inPlaceEdges(start, index) }];
    state.set(start, 'open');
    while (stack.length > 0) {
      const frame = stack[stack.length - 1]!;
      const target = frame.next.pop();
      if (target === undefined) {
        state.set(frame.node, 'done');
        stack.pop();
        continue;
      }
      const seen = state.get(target);
      if (seen === 'open') {
        const ring = stack.slice(stack.findIndex((entry) => entry.node === target)).map((entry) => locate(entry.node, index));
        // Told from its shallowest subschema, whichever node the search happened to enter it by.
        const first = ring.reduce((best, location, position) => (location.pointer.length < ring[best]!.pointer.length ? position : best), 0);
        const rotated = [...ring.slice(first), ...ring.slice(0, first)];
        return [...rotated, rotated[0]!];
      }
      if (seen === undefined) {
        state.set(target, 'open');
        stack.push({ node: target, next: inPlaceEdges(target, index) });
      }
    }
  }
  return undefined;
}

interface SchemaIndex {
  /** Every subschema (object) of every contract, with where it is. */
  readonly locations: Map<object, Location>;
  /** Schema resources by absolute URI without fragment, and anchors as `uri#name`. */
  readonly targets: Map<string, object>;
  /** The subschemas with a `$ref` or `$dynamicRef`. */
  readonly referring: object[];
}

function indexSchemas(schemas: readonly NamedSchema[]): SchemaIndex {
  const locations = new Map<object, Location>();
  const targets = new Map<string, object>();
  const referring: object[] = [];
  for (const { name, schema } of schemas) {
    const pending: { node: object; parent: object | undefined; key: string; base: string }[] = [{ node: schema, parent: undefined, key: '', base: 'urn:interchange:anonymous' }];
    for (let item = pending.pop(); item !== undefined; item = pending.pop()) {
      const { node, parent, key } = item;
      if (locations.has(node)) continue;
      const record = node as Record<string, unknown>;
      const base = !Array.isArray(node) && typeof record.$id === 'string' ? (resolve(record.$id, item.base) ?? item.base) : item.base;
      locations.set(node, { name, parent, key, base });
      if (Array.isArray(node)) {
        node.forEach((child: unknown, position) => {
          if (isObject(child)) pending.push({ node: child, parent: node, key: String(position), base });
        });
        continue;
      }
      if (typeof record.$id === 'string') targets.set(withoutFragment(base), node);
      for (const anchor of ['$anchor', '$dynamicAnchor']) if (typeof record[anchor] === 'string') targets.set(`${withoutFragment(base)}#${record[anchor] as string}`, node);
      if (typeof record.$ref === 'string' || typeof record.$dynamicRef === 'string') referring.push(node);
      for (const child in record) {
        const value = record[child];
        if (isObject(value) && !DATA_KEYWORDS.has(child) && Object.hasOwn(record, child)) pending.push({ node: value, parent: node, key: child, base });
      }
    }
  }
  return { locations, targets, referring };
}

/** Where a subschema is: its contract and its JSON pointer, built from its parents. */
function locate(node: object, index: SchemaIndex): SchemaLocation {
  const segments: string[] = [];
  let location = index.locations.get(node)!;
  while (location.parent !== undefined) {
    segments.push(`/${location.key.replaceAll('~', '~0').replaceAll('/', '~1')}`);
    location = index.locations.get(location.parent)!;
  }
  return { name: location.name, pointer: segments.reverse().join('') };
}

/** The subschemas `node` applies to the very same instance, references resolved. */
function inPlaceEdges(node: object, index: SchemaIndex): object[] {
  const record = node as Record<string, unknown>;
  const edges: unknown[] = [];
  for (const key of IN_PLACE_SINGLE) edges.push(record[key]);
  for (const key of IN_PLACE_LIST) if (Array.isArray(record[key])) edges.push(...(record[key] as unknown[]));
  if (isObject(record.dependentSchemas)) edges.push(...Object.values(record.dependentSchemas));
  const base = index.locations.get(node)?.base ?? 'urn:interchange:anonymous';
  for (const key of REFS) if (typeof record[key] === 'string') edges.push(resolveRef(record[key] as string, base, index));
  return edges.filter((edge): edge is object => isObject(edge) && index.locations.has(edge)).reverse();
}

/** The subschema a reference names, or undefined when it does not resolve here. */
function resolveRef(ref: string, base: string, index: SchemaIndex): object | undefined {
  const absolute = resolve(ref, base);
  if (absolute === undefined) return undefined;
  const hash = absolute.indexOf('#');
  const resource = hash === -1 ? absolute : absolute.slice(0, hash);
  const fragment = hash === -1 ? '' : decoded(absolute.slice(hash + 1));
  if (fragment === undefined) return undefined;
  if (!fragment.startsWith('/')) return fragment === '' ? index.targets.get(resource) : index.targets.get(`${resource}#${fragment}`);
  let node: unknown = index.targets.get(resource);
  for (const segment of fragment.slice(1).split('/')) {
    if (!isObject(node)) return undefined;
    node = (node as Record<string, unknown>)[segment.replaceAll('~1', '/').replaceAll('~0', '~')];
  }
  return isObject(node) ? node : undefined;
}

function isObject(value: unknown): value is object {
  return value !== null && typeof value === 'object';
}

function decoded(fragment: string): string | undefined {
  try {
    return decodeURIComponent(fragment);
  } catch {
    return undefined;
  }
}
