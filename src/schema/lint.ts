import type { AnySchemaObject } from 'ajv';

/** One documentation problem in a contract. */
export interface LintProblem {
  readonly contract: string;
  /** Dotted field path, `(root)` for the contract itself. */
  readonly field: string;
  readonly problem: string;
}

/**
 * Documentation lint: the contract and every property (nested objects, array items, `$defs`
 * included) carry a `description`; every numeric property carries a `unit` (use "1" for a plain count).
 * @example lintContract('device.telemetry@1', schema)
 */
export function lintContract(contract: string, schema: AnySchemaObject): LintProblem[] {
  const problems: LintProblem[] = [];
  if (!hasText(schema.description)) problems.push({ contract, field: '(root)', problem: 'the contract has no description' });
  visitProperties(schema, '', (field, property) => {
    if (!hasText(property.description)) problems.push({ contract, field, problem: `property \`${field}\` has no description` });
    if (isNumeric(property) && !hasText(property.unit)) problems.push({ contract, field, problem: `numeric property \`${field}\` has no unit (add "unit": "…")` });
  });
  for (const [name, definition] of Object.entries(isRecord(schema.$defs) ? schema.$defs : {})) {
    if (isRecord(definition)) visitProperties(definition, `$defs.${name}`, (field, property) => {
      if (!hasText(property.description)) problems.push({ contract, field, problem: `property \`${field}\` has no description` });
      if (isNumeric(property) && !hasText(property.unit)) problems.push({ contract, field, problem: `numeric property \`${field}\` has no unit (add "unit": "…")` });
    });
  }
  return problems;
}

type Schema = Record<string, unknown>;

/**
 * Calls `visit` for each property of an object schema, recursively, with its dotted path (`lines[].sku`
 * inside array items), its name and the object schema that declares it (whose `required` says
 * whether it is required).
 */
export function visitProperties(schema: Schema, path: string, visit: (field: string, property: Schema, parent: Schema, name: string) => void): void {
  const properties = isRecord(schema.properties) ? schema.properties : {};
  for (const [name, property] of Object.entries(properties)) {
    if (!isRecord(property)) continue;
    const field = path === '' ? name : `${path}.${name}`;
    visit(field, property, schema, name);
    visitProperties(property, field, visit);
    if (isRecord(property.items)) visitProperties(property.items, `${field}[]`, visit);
  }
}

function isNumeric(schema: Schema): boolean {
  const types = Array.isArray(schema.type) ? schema.type : [schema.type];
  return types.includes('number') || types.includes('integer');
}

function hasText(value: unknown): boolean {
  return typeof value === 'string' && value.trim() !== '';
}

function isRecord(value: unknown): value is Schema {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
