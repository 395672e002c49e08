import type { AnySchemaObject } from 'ajv';
import { describe, expect, it } from 'vitest';
import type { InterchangeError } from '../../../src/core/index.ts';
import { JsonSchemaRegistry, SchemaDefinitionError } from '../../../src/schema/index.ts';
import { inPlaceRefCycle } from '../../../src/schema/ref-cycles.ts';
import { main } from '../../../facade/cli/main.ts';
import { contractsFolder } from './fixtures.ts';

function load(...schemas: AnySchemaObject[]): JsonSchemaRegistry {
  return new JsonSchemaRegistry({ contracts: schemas.map((schema, index) => ({ subject: `s${index}`, version: 1, schema, file: `s${index}/1.json` })) });
}

function loadError(...schemas: AnySchemaObject[]): SchemaDefinitionError {
  try {
    load(...schemas);
  } catch (error) {
    if (error instanceof SchemaDefinitionError) return error;
    throw error;
  }
  throw new Error('expected the registry to refuse the contracts');
}

describe('reference cycles that consume no input, refused when contracts load', () => {
  it('refuses a root that $refs itself, naming the file and the path', () => {
    expect(loadError({ $id: 'urn:a:1', $ref: '#' }).message).toBe(
      's0/1.json: reference cycle that reaches no property or item, so validation would never end: # → # (put the recursion under "properties" or "items")',
    );
  });

  it('refuses a cycle through $defs, with the pointers it runs through', () => {
    const error = loadError({ $id: 'urn:a:1', $ref: '#/$defs/a', $defs: { a: { $ref: '#/$defs/b' }, b: { $ref: '#/$defs/a' } } });
    expect(error.message).toContain(': #/$defs/a → #/$defs/b → #/$defs/a (');
    expect(error.file).toBe('s0/1.json');
  });

  it.each<[string, AnySchemaObject, string]>([
    ['allOf', { $id: 'urn:a:1', type: 'object', allOf: [{ $ref: '#' }] }, '# → #/allOf/0 → #'],
    ['anyOf', { $id: 'urn:a:1', anyOf: [{ type: 'string' }, { $ref: '#' }] }, '# → #/anyOf/1 → #'],
    ['not and an $anchor', { $id: 'urn:a:1', $defs: { x: { $anchor: 'x', not: { $ref: '#x' } } }, $ref: '#x' }, '#/$defs/x → #/$defs/x/not → #/$defs/x'],
    ['if/then', { $id: 'urn:a:1', if: { type: 'object' }, then: { $ref: '#' } }, '# → #/then → #'],
    ['dependentSchemas', { $id: 'urn:a:1', type: 'object', dependentSchemas: { a: { $ref: '#' } } }, '# → #/dependentSchemas/a → #'],
  ])('refuses a cycle through %s (applies to the same value)', (_, schema, path) => {
    expect(loadError(schema).message).toContain(`: ${path} (`);
  });

  it('refuses a cycle across contracts, naming the other file in the path', () => {
    expect(loadError({ $id: 'urn:a:1', $ref: 'urn:b:1' }, { $id: 'urn:b:1', $ref: 'urn:a:1' }).message).toMatch(/^s0\/1\.json: .*: # → s1\/1\.json# → # \(/);
  });

  it('accepts recursion that goes through a property or an item (a tree)', () => {
    const tree = { $id: 'urn:tree:1', type: 'object', properties: { name: { type: 'string' }, children: { type: 'array', items: { $ref: '#' } }, parent: { $ref: '#/$defs/node' } }, $defs: { node: { anyOf: [{ type: 'null' }, { $ref: '#' }] } } };
    const registry = load(tree);
    registry.compileAll();
    expect(registry.validate('s0@1', { name: 'root', children: [{ name: 'leaf', children: [] }], parent: { parent: null } })).toBeDefined();
    expect(inPlaceRefCycle([{ name: 'tree', schema: tree }])).toBeUndefined();
  });

  it('is checked by `interchange schemas check`: exit 1, naming the file', async () => {
    const dir = contractsFolder({ 'loop/1.json': { $id: 'urn:loop:1', description: 'refers to itself', $ref: '#' } });
    let stderr = '';
    const io = { stdout: { write: () => true }, stderr: { write: (text: string) => (stderr += text) }, exit: (code: number): never => { throw new Error(`exit ${code}`); } };
    expect(await main(['schemas', 'check', dir], io as unknown as Parameters<typeof main>[1])).toBe(1);
    expect(stderr).toMatch(/^interchange: SchemaDefinitionError: .*loop\/1\.json: reference cycle that reaches no property or item.*: # → # \(/);
  });
});

describe('a validator that throws while validating', () => {
  it('is a permanent SchemaDefinitionError, not an untyped RangeError a route would retry', () => {
    // A recursive contract and a body nested deeper than the validator can recurse (the depth limit raised to let it in).
    const registry = new JsonSchemaRegistry(
      { contracts: [{ subject: 'tree', version: 1, schema: { $id: 'urn:tree:1', type: 'object', properties: { children: { type: 'array', items: { $ref: '#' } } } } }] },
      { limits: { maxDepth: 1_000_000, maxBytes: 10_000_000 } },
    );
    const depth = 200_000;
    let thrown: unknown;
    try {
      registry.validate('tree@1', `${'{"children":['.repeat(depth)}${']}'.repeat(depth)}`);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(SchemaDefinitionError);
    expect(thrown).toMatchObject({ code: 'SCHEMA_DEFINITION', permanent: true });
    expect((thrown as InterchangeError).message).toMatch(/^tree@1: the validator of tree@1 threw RangeError: /);
    expect((thrown as InterchangeError).cause).toBeInstanceOf(RangeError);
  });
});
