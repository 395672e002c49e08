import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AnySchemaObject } from 'ajv';
import { JsonSchemaRegistry, type ContractSource, type SchemaRegistryOptions } from '../../../src/schema/index.ts';

export const root = fileURLToPath(new URL('../../../', import.meta.url));
export const shippedSchemas = join(root, 'schemas');

export function shippedRegistry(options: SchemaRegistryOptions = {}): JsonSchemaRegistry {
  return JsonSchemaRegistry.fromDirectory(shippedSchemas, options);
}

/** A documented object contract with the given properties. */
export function objectSchema(id: string, properties: Record<string, AnySchemaObject>, required: string[] = [], extra: AnySchemaObject = {}): AnySchemaObject {
  return { $id: id, description: `contract ${id}`, type: 'object', properties, required, additionalProperties: false, ...extra };
}

export function contract(subject: string, version: number, schema: AnySchemaObject): ContractSource {
  return { subject, version, schema };
}

/** A temporary contracts folder: `{ 'a.b/1.json': schema, 'a.b/subject.json': {…} }`. */
export function contractsFolder(files: Record<string, unknown>): string {
  const dir = mkdtempSync(join(tmpdir(), 'interchange-schemas-'));
  for (const [name, content] of Object.entries(files)) {
    const path = join(dir, name);
    mkdirSync(join(path, '..'), { recursive: true });
    writeFileSync(path, typeof content === 'string' ? content : JSON.stringify(content, null, 2));
  }
  return dir;
}

export const validTelemetry = { deviceId: 'dev-1', ts: '2026-11-23T09:00:00Z', temperature: 21.5, humidity: 40 };
