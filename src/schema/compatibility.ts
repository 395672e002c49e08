import type { AnySchemaObject } from 'ajv';
import type { CompatibilityMode } from './contract.ts';

/** Which readers a change breaks: BACKWARD = new readers on old data; FORWARD = old readers on new data. */
export type Direction = 'BACKWARD' | 'FORWARD';

/** One change between two versions and the directions it breaks. */
export interface SchemaChange {
  /** Dotted field path (`location.lat`), `(root)` for the object itself. */
  readonly field: string;
  /** What changed, phrased after "v<new> …" (e.g. "adds required field `unit` without a default"). */
  readonly change: string;
  readonly breaks: readonly Direction[];
}

/** A change the subject's mode forbids, with a sentence explaining it. */
export interface Incompatibility extends SchemaChange {
  readonly subject: string;
  readonly from: number;
  readonly to: number;
  readonly explanation: string;
}

const modeDirections: Readonly<Record<CompatibilityMode, readonly Direction[]>> = {
  BACKWARD: ['BACKWARD'],
  FORWARD: ['FORWARD'],
  FULL: ['BACKWARD', 'FORWARD'],
  NONE: [],
};

/**
 * The changes from `previous` to `next` that break compatibility in either direction: fields
 * added, removed, made required or optional, types widened, narrowed or changed, enum values added
 * or removed, additional properties allowed or refused — recursively through nested objects.
 * A required field added with a `default` is BACKWARD-compatible (`.upcast()` fills the default).
 */
export function schemaChanges(previous: AnySchemaObject, next: AnySchemaObject): SchemaChange[] {
  const changes: SchemaChange[] = [];
  compareObjects(previous, next, '', changes);
  return changes;
}

/**
 * The changes between two consecutive versions of a subject that its mode forbids, each explained:
 * "device.telemetry v2 adds required field `unit` without a default: BACKWARD-incompatible".
 * @example checkCompatibility('device.telemetry', 'BACKWARD', 1, v1, 2, v2)
 */
export function checkCompatibility(subject: string, mode: CompatibilityMode, from: number, previous: AnySchemaObject, to: number, next: AnySchemaObject): Incompatibility[] {
  const forbidden = modeDirections[mode];
  return schemaChanges(previous, next)
    .map((change) => ({ ...change, breaks: change.breaks.filter((direction) => forbidden.includes(direction)) }))
    .filter((change) => change.breaks.length > 0)
    .map((change) => ({
      ...change,
      subject,
      from,
      to,
      explanation: `${subject} v${to} ${change.change}: ${change.breaks.map((direction) => `${direction}-incompatible`).join(' and ')} (mode ${mode}; ${change.breaks.map(why).join('; ')})`,
    }));
}

function why(direction: Direction): string {
  return direction === 'BACKWARD' ? 'readers of the new version cannot read data written with the previous one' : 'readers of the previous version cannot read data written with the new one';
}

type Schema = Record<string, unknown>;

function compareObjects(previous: Schema, next: Schema, path: string, changes: SchemaChange[]): void {
  const oldProps = propertiesOf(previous);
  const newProps = propertiesOf(next);
  const oldRequired = requiredOf(previous);
  const newRequired = requiredOf(next);
  const oldClosed = previous.additionalProperties === false;
  const newClosed = next.additionalProperties === false;
  const name = (field: string): string => (path === '' ? field : `${path}.${field}`);
  const push = (field: string, change: string, breaks: Direction[]): void => {
    if (breaks.length > 0) changes.push({ field, change, breaks });
  };

  for (const [field, schema] of Object.entries(newProps)) {
    if (field in oldProps) continue;
    const required = newRequired.has(field);
    const hasDefault = isObject(schema) && 'default' in schema;
    const what = required ? `required field \`${name(field)}\`${hasDefault ? ' (with a default)' : ' without a default'}` : `optional field \`${name(field)}\``;
    push(name(field), `adds ${what}`, required && !hasDefault ? ['BACKWARD'] : []);
    if (oldClosed) push(name(field), `adds field \`${name(field)}\`, which the previous version rejects (additionalProperties: false)`, ['FORWARD']);
  }
  for (const field of Object.keys(oldProps)) {
    if (field in newProps) continue;
    const breaks: Direction[] = [];
    if (oldRequired.has(field)) breaks.push('FORWARD');
    if (newClosed) breaks.push('BACKWARD');
    push(name(field), `removes ${oldRequired.has(field) ? 'required' : 'optional'} field \`${name(field)}\`${newClosed ? ' and allows no additional properties' : ''}`, breaks);
  }
  for (const [field, oldSchema] of Object.entries(oldProps)) {
    const newSchema = newProps[field];
    if (newSchema === undefined) continue;
    const wasRequired = oldRequired.has(field);
    const isRequired = newRequired.has(field);
    if (!wasRequired && isRequired) {
      const hasDefault = isObject(newSchema) && 'default' in newSchema;
      push(name(field), `makes field \`${name(field)}\` required${hasDefault ? ' (with a default)' : ' without a default'}`, hasDefault ? [] : ['BACKWARD']);
    }
    if (wasRequired && !isRequired) push(name(field), `makes required field \`${name(field)}\` optional`, ['FORWARD']);
    if (isObject(oldSchema) && isObject(newSchema)) compareValues(oldSchema, newSchema, name(field), changes);
  }
  if (oldClosed && !newClosed) push(path || '(root)', `allows additional properties in ${path === '' ? 'the body' : `\`${path}\``}`, ['FORWARD']);
  if (!oldClosed && newClosed) push(path || '(root)', `refuses additional properties in ${path === '' ? 'the body' : `\`${path}\``}`, ['BACKWARD']);
}

function compareValues(previous: Schema, next: Schema, field: string, changes: SchemaChange[]): void {
  const oldTypes = typesOf(previous);
  const newTypes = typesOf(next);
  if (oldTypes !== undefined && newTypes !== undefined) {
    const widened = [...newTypes].some((type) => !covers(oldTypes, type));
    const narrowed = [...oldTypes].some((type) => !covers(newTypes, type));
    const breaks: Direction[] = [...(narrowed ? (['BACKWARD'] as const) : []), ...(widened ? (['FORWARD'] as const) : [])];
    if (breaks.length > 0) {
      const verb = widened && narrowed ? 'changes' : widened ? 'widens' : 'narrows';
      changes.push({ field, change: `${verb} the type of \`${field}\` from ${[...oldTypes].join(' | ')} to ${[...newTypes].join(' | ')}`, breaks });
    }
  }
  const oldEnum = enumOf(previous);
  const newEnum = enumOf(next);
  if (oldEnum !== undefined || newEnum !== undefined) {
    const added = newEnum === undefined ? [] : newEnum.filter((value) => oldEnum !== undefined && !oldEnum.includes(value));
    const removed = oldEnum === undefined ? [] : oldEnum.filter((value) => newEnum === undefined ? false : !newEnum.includes(value));
    if (added.length > 0 || (newEnum === undefined && oldEnum !== undefined)) {
      changes.push({ field, change: newEnum === undefined ? `drops the enum of \`${field}\`` : `adds ${added.map((value) => JSON.stringify(value)).join(', ')} to the values of \`${field}\``, breaks: ['FORWARD'] });
    }
    if (removed.length > 0 || (oldEnum === undefined && newEnum !== undefined)) {
      changes.push({ field, change: oldEnum === undefined ? `restricts \`${field}\` to ${newEnum?.map((value) => JSON.stringify(value)).join(', ')}` : `removes ${removed.map((value) => JSON.stringify(value)).join(', ')} from the values of \`${field}\``, breaks: ['BACKWARD'] });
    }
  }
  if (isObject(previous.properties) || isObject(next.properties)) compareObjects(previous, next, field, changes);
  if (isObject(previous.items) && isObject(next.items)) compareValues(previous.items, next.items, `${field}[]`, changes);
}

function covers(types: ReadonlySet<string>, type: string): boolean {
  return types.has(type) || (type === 'integer' && types.has('number'));
}

function typesOf(schema: Schema): Set<string> | undefined {
  if (typeof schema.type === 'string') return new Set([schema.type]);
  if (Array.isArray(schema.type)) return new Set(schema.type.map(String));
  const values = enumOf(schema);
  if (values !== undefined) return new Set(values.map(jsonType));
  return undefined;
}

function enumOf(schema: Schema): unknown[] | undefined {
  if (Array.isArray(schema.enum)) return schema.enum;
  if ('const' in schema) return [schema.const];
  return undefined;
}

function jsonType(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  if (typeof value === 'number') return Number.isInteger(value) ? 'integer' : 'number';
  return typeof value;
}

function propertiesOf(schema: Schema): Record<string, unknown> {
  return isObject(schema.properties) ? schema.properties : {};
}

function requiredOf(schema: Schema): Set<string> {
  return new Set(Array.isArray(schema.required) ? schema.required.map(String) : []);
}

function isObject(value: unknown): value is Schema {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
