import type { AnySchemaObject, KeywordDefinition } from 'ajv';

/**
 * Field classification from the contracts (`"x-classification"` on any property of a JSON Schema):
 * - `public` (the default): no restriction;
 * - `internal`: may appear in the organisation's own logs, dead letters and traces, but not leave the
 *   trust zone in clear (`.protect()` encrypts or drops it);
 * - `personal`: personal data — redacted in logs, dead-letter headers, traces and the console, and
 *   protected when leaving the trust zone;
 * - `secret`: credentials, card numbers… — same as `personal`, the marker says `[secret]`.
 * A classified object or array covers everything inside it (the whole value is redacted).
 */
export const CLASSIFICATIONS = ['public', 'internal', 'personal', 'secret'] as const;
export type Classification = (typeof CLASSIFICATIONS)[number];

/** The annotation keyword the registry accepts on any (sub)schema. */
export const CLASSIFICATION_KEYWORD = 'x-classification';

/** The classes redacted in what Interchange writes itself (logs, dead-letter headers, traces, console). */
export const REDACTED_CLASSES: readonly Classification[] = ['personal', 'secret'];

/** The classes `.protect()` encrypts or drops by default when a message leaves the trust zone. */
export const PROTECTED_CLASSES: readonly Classification[] = ['internal', 'personal', 'secret'];

/** The ajv keyword definition of `x-classification`: an annotation (never fails validation) whose value is one of `CLASSIFICATIONS`. */
export const classificationKeyword: Readonly<KeywordDefinition> = Object.freeze({
  keyword: CLASSIFICATION_KEYWORD,
  schemaType: 'string',
  metaSchema: { enum: [...CLASSIFICATIONS] },
});

/**
 * One classified field of a contract: a JSON pointer (RFC 6901) into the body, where `*` stands for
 * every item of an array (or every value of a map: `additionalProperties`, `patternProperties`), e.g.
 * `/customer/email`, `/lines/*\/iban`; `''` is the whole body.
 */
export interface ClassifiedField {
  readonly pointer: string;
  readonly classification: Exclude<Classification, 'public'>;
}

/** What the derivation needs of a registry (a `SchemaRegistry` is one): a contract's schema, and every contract (to resolve `$ref`s to other contracts by `$id`). */
export interface SchemaLookup {
  schema(ref: string): AnySchemaObject;
  contracts?(): readonly string[];
}

const RANK: Readonly<Record<Classification, number>> = { public: 0, internal: 1, personal: 2, secret: 3 };

const cache = new WeakMap<object, Map<string, readonly ClassifiedField[]>>();

/**
 * The classified fields of a contract (`subject@version`), as JSON pointers with `*` for array
 * items and map values, each with its class; sorted by pointer, `public` ones left out. Follows
 * `properties`, `items`, `prefixItems`, `additionalProperties`, `patternProperties`, `allOf`/`anyOf`/
 * `oneOf`, `if`/`then`/`else`, local `$ref`s (`#/$defs/…`) and `$ref`s to other contracts of the
 * registry. A field classified in one branch of a union is classified (the strictest class wins);
 * a classified object covers its whole value (no pointer below it is listed). A recursive `$ref`
 * is followed one level deep (deeper levels of a recursive structure are not listed: classify the
 * recursive property itself to cover them). Cached per registry and contract.
 * @example classifiedFields(registry, 'customer.registered@1') // [{ pointer: '/email', classification: 'personal' }, …]
 */
export function classifiedFields(registry: SchemaLookup, ref: string): readonly ClassifiedField[] {
  let perRegistry = cache.get(registry);
  if (perRegistry === undefined) {
    perRegistry = new Map();
    cache.set(registry, perRegistry);
  }
  const cached = perRegistry.get(ref);
  if (cached !== undefined) return cached;
  const fields = deriveClassifiedFields(registry.schema(ref), (id) => schemaById(registry, id));
  perRegistry.set(ref, fields);
  return fields;
}

/** `classifiedFields` for one schema, `$ref`s to other documents resolved by `resolveId` (by `$id`). */
export function deriveClassifiedFields(root: AnySchemaObject, resolveId: (id: string) => AnySchemaObject | undefined = () => undefined): readonly ClassifiedField[] {
  const found = new Map<string, ClassifiedField['classification']>();
  // a schema may appear twice on one path: a recursive `$ref` is followed one level deep
  const walk = (schema: unknown, document: AnySchemaObject, pointer: string, path: readonly object[]): void => {
    if (!isRecord(schema) || path.filter((seen) => seen === schema).length >= 2) return;
    const inPath = [...path, schema];
    const own = schema[CLASSIFICATION_KEYWORD];
    if (typeof own === 'string' && own !== 'public' && own in RANK) {
      const previous = found.get(pointer);
      const classification = own as ClassifiedField['classification'];
      if (previous === undefined || RANK[classification] > RANK[previous]) found.set(pointer, classification);
      return; // the whole value is classified
    }
    if (typeof schema.$ref === 'string') {
      const target = resolveRef(schema.$ref, document, resolveId);
      if (target !== undefined) walk(target.schema, target.document, pointer, inPath);
    }
    if (isRecord(schema.properties)) for (const [name, property] of Object.entries(schema.properties)) walk(property, document, `${pointer}/${escapeToken(name)}`, inPath);
    if (isRecord(schema.patternProperties)) for (const property of Object.values(schema.patternProperties)) walk(property, document, `${pointer}/*`, inPath);
    if (isRecord(schema.additionalProperties)) walk(schema.additionalProperties, document, `${pointer}/*`, inPath);
    if (isRecord(schema.items)) walk(schema.items, document, `${pointer}/*`, inPath);
    if (Array.isArray(schema.prefixItems)) schema.prefixItems.forEach((item, index) => walk(item, document, `${pointer}/${index}`, inPath));
    for (const keyword of ['allOf', 'anyOf', 'oneOf'] as const) {
      const branches = schema[keyword];
      if (Array.isArray(branches)) for (const branch of branches) walk(branch, document, pointer, inPath);
    }
    for (const keyword of ['if', 'then', 'else'] as const) walk(schema[keyword], document, pointer, inPath);
  };
  walk(root, root, '', []);
  const pointers = [...found.keys()].sort();
  // a classified ancestor covers its descendants (a union can classify both)
  return pointers
    .filter((pointer) => !pointers.some((other) => other !== pointer && covers(other, pointer)))
    .map((pointer) => ({ pointer, classification: found.get(pointer) as ClassifiedField['classification'] }));
}

const idMaps = new WeakMap<object, Map<string, AnySchemaObject>>();

function schemaById(registry: SchemaLookup, id: string): AnySchemaObject | undefined {
  let byId = idMaps.get(registry);
  if (byId === undefined) {
    byId = new Map();
    for (const ref of registry.contracts?.() ?? []) {
      const schema = registry.schema(ref);
      if (typeof schema.$id === 'string') byId.set(schema.$id, schema);
    }
    idMaps.set(registry, byId);
  }
  return byId.get(id);
}

/** The fields of `fields` whose class is one of `classes`. */
export function fieldsOfClass(fields: readonly ClassifiedField[], classes: readonly Classification[]): readonly ClassifiedField[] {
  return fields.every((field) => classes.includes(field.classification)) ? fields : fields.filter((field) => classes.includes(field.classification));
}

/** Whether `ancestor` (a classified pointer) covers `pointer`: equal, or a prefix of it at a token boundary (`*` matches one token). */
function covers(ancestor: string, pointer: string): boolean {
  if (ancestor === '') return true;
  const a = ancestor.split('/');
  const p = pointer.split('/');
  if (a.length > p.length) return false;
  return a.every((token, index) => token === p[index] || token === '*' || p[index] === '*');
}

function resolveRef(ref: string, document: AnySchemaObject, resolveId: (id: string) => AnySchemaObject | undefined): { schema: unknown; document: AnySchemaObject } | undefined {
  const hash = ref.indexOf('#');
  const base = hash < 0 ? ref : ref.slice(0, hash);
  const fragment = hash < 0 ? '' : ref.slice(hash + 1);
  const target = base === '' || base === document.$id ? document : resolveId(base);
  if (target === undefined) return undefined;
  let node: unknown = target;
  for (const token of fragment.split('/').slice(1)) {
    if (!isRecord(node) && !Array.isArray(node)) return undefined;
    node = (node as Record<string, unknown>)[token.replace(/~1/g, '/').replace(/~0/g, '~')];
  }
  return { schema: node, document: target };
}

function escapeToken(name: string): string {
  return name.replace(/~/g, '~0').replace(/\//g, '~1');
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
