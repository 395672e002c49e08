import { describe, expect, it } from 'vitest';
import { isBacktrackingLinear, JsonSchemaRegistry, re2Engine, SchemaDefinitionError, SchemaValidationError } from '../../../src/schema/index.ts';
import { contract, objectSchema } from './fixtures.ts';

const evil = '^(a+)+$';
const attack = `${'a'.repeat(50_000)}!`;

describe('regular expressions in contracts', () => {
  it('match in linear time: a catastrophic-backtracking pattern answers at once', () => {
    const started = performance.now();
    expect(re2Engine(evil, 'u').test(attack)).toBe(false);
    expect(performance.now() - started).toBeLessThan(500);
    // The same pattern with JavaScript's backtracking engine would take ~2^n steps: 30 characters is already seconds.
  });

  it('validating against a contract with such a pattern (pattern and patternProperties) stays fast', () => {
    const schema = objectSchema('urn:evil:1', { name: { type: 'string', pattern: evil, description: 'name' } }, ['name'], {
      additionalProperties: true,
      patternProperties: { '^(x+x+)+y$': { type: 'number' } },
    });
    const registry = new JsonSchemaRegistry({ contracts: [contract('evil', 1, schema)] });
    const started = performance.now();
    expect(() => registry.validate('evil@1', { name: attack })).toThrow(SchemaValidationError);
    expect(registry.validate('evil@1', { name: 'aaaa', ['x'.repeat(20_000)]: 'not checked: key does not match' })).toBeDefined();
    expect(performance.now() - started).toBeLessThan(1_000);
  });

  it('a pattern RE2 cannot run in linear time (look-around, back-reference) is refused when the contract compiles', () => {
    for (const pattern of ['^(?=a)a$', '^(a)\\1$']) {
      const registry = new JsonSchemaRegistry({ contracts: [contract('p', 1, objectSchema('urn:p:1', { s: { type: 'string', pattern, description: 's' } }))] });
      expect(() => registry.validator('p@1')).toThrow(SchemaDefinitionError);
    }
  });
});

describe('choice of regular-expression engine', () => {
  it('runs only shapes that are linear by construction on the backtracking engine', () => {
    for (const pattern of ['^[A-Za-z0-9._-]+$', '^[a-z0-9-]+$', '^\\d{4}-\\d{2}$', '^abc', '^[\\]a]*$', '^\\p{L}+$', '^x{2,5}$']) expect(isBacktrackingLinear(pattern), pattern).toBe(true);
    for (const pattern of ['^(a+)+$', '^(a|aa)+$', '^a?a?a?aaa$', '^a*a*$', '[a-z]+x', '^a+$b', '^(?=a)', '^(a)\\1$', '^\\d+\\d{1,3}$', '^[abc']) expect(isBacktrackingLinear(pattern), pattern).toBe(false);
  });

  it('answers the same on both engines', () => {
    for (const [pattern, input, expected] of [['^[a-z]+$', 'abc', true], ['^[a-z]+$', 'ab1', false], ['^(a+)+$', 'aaaa', true], ['^(a+)+$', 'aab', false], ['^\\p{Lu}', 'Éa', true]] as const) {
      expect(re2Engine(pattern, 'u').test(input), `${pattern} on ${input}`).toBe(expected);
    }
  });
});

describe('re2-wasm is loaded only when a contract pattern needs it', () => {
  it('a fresh process importing the package and the schema registry does not load it; compiling a registry does (the JSON Schema meta-schema has such patterns)', async () => {
    const { execFile } = await import('node:child_process');
    const { promisify } = await import('node:util');
    const { fileURLToPath } = await import('node:url');
    // a clean module cache: loading re2-wasm instantiates 16 MiB of WebAssembly memory, which a process
    // without contracts (a bare bridge) should not carry
    const script = `
      import { createRequire } from 'node:module';
      const loaded = () => Object.keys(createRequire(import.meta.url).cache).some((path) => path.includes('/node_modules/re2-wasm/'));
      await import('./facade/index.ts');
      const { JsonSchemaRegistry } = await import('./src/schema/index.ts');
      const { contract, objectSchema } = await import('./test/unit/schema/fixtures.ts');
      const before = loaded();
      const registry = new JsonSchemaRegistry({ contracts: [contract('n', 1, objectSchema('urn:n:1', { n: { type: 'string', pattern: '^(ab)+$', description: 'n' } }, ['n']))] });
      registry.validate('n@1', { n: 'abab' });
      process.stdout.write(JSON.stringify({ before, after: loaded() }));
    `;
    const root = fileURLToPath(new URL('../../..', import.meta.url));
    const { stdout } = await promisify(execFile)(process.execPath, ['--conditions=interchange-source', '--import', 'tsx', '--input-type=module', '-e', script], { cwd: root, env: { PATH: process.env.PATH } });
    expect(JSON.parse(stdout)).toEqual({ before: false, after: true });
  }, 20_000);
});
