import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import type { AnySchemaObject } from 'ajv';
import { COMPATIBILITY_MODES, type CompatibilityMode, type ContractSource, type SubjectInfo } from './contract.ts';
import { SchemaDefinitionError } from './errors.ts';
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
 * Throws `SchemaDefinitionError` naming the file for unreadable JSON, a missing `$id`, another
 * draft than 2020-12, or an unknown compatibility mode.
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
    subjects.push(subjectInfo(subject, join(folder, 'subject.json'), directory));
    for (const version of versions) {
      const file = join(folder, `${version}.json`);
      contracts.push({ subject, version, schema: contractSchema(file, directory), file: relative(process.cwd(), file) });
    }
  }
  return { contracts, subjects };
}

function readJson(file: string, directory: string): unknown {
  try {
    return parseJsonSafely(readFileSync(file));
  } catch (error) {
    throw new SchemaDefinitionError((error as Error).message, relative(directory, file), { cause: error });
  }
}

function contractSchema(file: string, directory: string): AnySchemaObject {
  const schema = readJson(file, directory);
  const where = relative(directory, file);
  if (typeof schema !== 'object' || schema === null || Array.isArray(schema)) throw new SchemaDefinitionError('a contract must be a JSON object', where);
  const { $id, $schema } = schema as Record<string, unknown>;
  if (typeof $id !== 'string' || $id === '') throw new SchemaDefinitionError('a contract needs a "$id"', where);
  if ($schema !== undefined && $schema !== DRAFT_2020_12) throw new SchemaDefinitionError(`"$schema" must be ${DRAFT_2020_12} (got ${String($schema)})`, where);
  return schema as AnySchemaObject;
}

function subjectInfo(subject: string, file: string, directory: string): SubjectInfo {
  if (!existsSync(file)) return { subject, compatibility: DEFAULT_COMPATIBILITY };
  const raw = readJson(file, directory) as { compatibility?: unknown; description?: unknown } | null;
  const compatibility = raw?.compatibility ?? DEFAULT_COMPATIBILITY;
  if (!COMPATIBILITY_MODES.includes(compatibility as CompatibilityMode)) {
    throw new SchemaDefinitionError(`"compatibility" must be one of ${COMPATIBILITY_MODES.join(', ')} (got ${JSON.stringify(compatibility)})`, relative(directory, file));
  }
  return { subject, compatibility: compatibility as CompatibilityMode, ...(typeof raw?.description === 'string' ? { description: raw.description } : {}) };
}
