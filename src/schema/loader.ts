import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import type { AnySchemaObject } from 'ajv';
import { COMPATIBILITY_MODES, type CompatibilityMode, type ContractSource, type SubjectInfo } from './contract.ts';
import { PayloadParseError, SchemaDefinitionError } from './errors.ts';
import { jsonSyntaxProblem } from './json-syntax.ts';
import { parseJsonSafely } from './safe-json.ts';

/** What a contracts folder holds. */
export interface LoadedContracts {
  readonly contracts: readonly ContractSource[];
  readonly subjects: readonly SubjectInfo[];
}

export const DEFAULT_COMPATIBILITY: CompatibilityMode = 'BACKWARD';

const DRAFT_2020_12 = 'https://json-schema.org/draft/2020-12/schema';

/**
 * Reads a contracts folder: `<dir>/<subject>/<version>.json` (version a positive integer) and an
 * optional `<dir>/<subject>/subject.json` (`{ "compatibility": "BACKWARD", "description": "…" }`,
 * default BACKWARD). Other files are ignored. Synchronous: it runs once, at start.
 * Throws `SchemaDefinitionError` naming the file (relative to the working directory, as
 * `ContractSource.file`) for a missing `$id`, another draft than 2020-12, an unknown compatibility
 * mode, or JSON that does not parse — then with line and column: `schemas/a/1.json:3:14: expected
 * ',' or '}' after a property value`.
 * @example loadContracts('schemas')
 */
export function loadContracts(directory: string): LoadedContracts {
  if (!existsSync(directory) || !statSync(directory).isDirectory()) throw new SchemaDefinitionError(`no contracts folder at ${directory}`);
  const contracts: ContractSource[] = [];
  const subjects: SubjectInfo[] = [];
  for (const subject of readdirSync(directory).sort()) {
    const folder = join(directory, subject);
    if (!statSync(folder).isDirectory()) continue;
    const versions = readdirSync(folder)
      .map((name) => /^([1-9]\d*)\.json$/.exec(name))
      .filter((match) => match !== null)
      .map((match) => Number(match[1]))
      .sort((a, b) => a - b);
    if (versions.length === 0) continue;
    subjects.push(subjectInfo(subject, join(folder, 'subject.json')));
    for (const version of versions) {
      const file = join(folder, `${version}.json`);
      contracts.push({ subject, version, schema: contractSchema(file), file: shown(file) });
    }
  }
  return { contracts, subjects };
}

/** How errors name a file: relative to the working directory, so that `schemas/a/1.json:3:14` opens in an editor. */
function shown(file: string): string {
  return relative(process.cwd(), file) || file;
}

function readJson(file: string): unknown {
  const text = readFileSync(file, 'utf8');
  try {
    return parseJsonSafely(text);
  } catch (error) {
    if (!(error instanceof PayloadParseError && error.cause instanceof SyntaxError)) throw new SchemaDefinitionError((error as Error).message, shown(file), { cause: error });
    // Our scanner names line, column and what is wrong the same way on every Node version; should it
    // ever accept what JSON.parse refused, the engine's own words are the fallback.
    const syntax = jsonSyntaxProblem(text);
    if (syntax === undefined) throw new SchemaDefinitionError(`not JSON: ${error.cause.message}`, shown(file), { cause: error });
    throw new SchemaDefinitionError(syntax.message, shown(file), { cause: error, line: syntax.line, column: syntax.column });
  }
}

function contractSchema(file: string): AnySchemaObject {
  const schema = readJson(file);
  const where = shown(file);
  if (typeof schema !== 'object' || schema === null || Array.isArray(schema)) throw new SchemaDefinitionError('a contract must be a JSON object', where);
  const { $id, $schema } = schema as Record<string, unknown>;
  if (typeof $id !== 'string' || $id === '') throw new SchemaDefinitionError('a contract needs a "$id"', where);
  if ($schema !== undefined && $schema !== DRAFT_2020_12) throw new SchemaDefinitionError(`"$schema" must be ${DRAFT_2020_12} (got ${String($schema)})`, where);
  return schema as AnySchemaObject;
}

function subjectInfo(subject: string, file: string): SubjectInfo {
  if (!existsSync(file)) return { subject, compatibility: DEFAULT_COMPATIBILITY };
  const raw = readJson(file) as { compatibility?: unknown; description?: unknown } | null;
  const compatibility = raw?.compatibility ?? DEFAULT_COMPATIBILITY;
  if (!COMPATIBILITY_MODES.includes(compatibility as CompatibilityMode)) {
    throw new SchemaDefinitionError(`"compatibility" must be one of ${COMPATIBILITY_MODES.join(', ')} (got ${JSON.stringify(compatibility)})`, shown(file));
  }
  return { subject, compatibility: compatibility as CompatibilityMode, ...(typeof raw?.description === 'string' ? { description: raw.description } : {}) };
}
