import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseCommandLine, UsageError } from '../../../facade/cli/command-line.ts';
import { main } from '../../../facade/cli/main.ts';
import { contractsMarkdown, generateContractTypes } from '../../../src/schema/index.ts';
import { contractsFolder, objectSchema, root, shippedRegistry, shippedSchemas } from './fixtures.ts';

async function run(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const io = {
    stdout: { write: (text: string) => (stdout += text), isTTY: false, columns: 80 },
    stderr: { write: (text: string) => (stderr += text) },
    exit: (code: number): never => {
      throw new Error(`exit ${code}`);
    },
  };
  const code = await main(args, io as unknown as Parameters<typeof main>[1]);
  return { code, stdout, stderr };
}

const documented = (id: string, properties: Record<string, object>, required: string[] = []) =>
  objectSchema(id, Object.fromEntries(Object.entries(properties).map(([name, schema]) => [name, { description: name, ...schema }])), required);

describe('interchange schemas', () => {
  it('types: the checked-in schemas/types.generated.ts is up to date with schemas/', () => {
    const checkedIn = readFileSync(join(shippedSchemas, 'types.generated.ts'), 'utf8');
    expect(checkedIn, 'stale: run `npx interchange schemas types`').toBe(generateContractTypes(shippedRegistry()));
  });

  it('check passes on the shipped schemas/ folder (the real bin, as CI runs it)', () => {
    const result = spawnSync(process.execPath, ['--conditions=interchange-source', 'bin/interchange.js', 'schemas', 'check'], { cwd: root, encoding: 'utf8' });
    expect(result.stderr).toBe('');
    expect(result.stdout).toBe('schemas check: 5 contracts in 4 subjects are compatible with their predecessors and documented\n');
    expect(result.status).toBe(0);
  }, 20_000);

  it('check lists the classified fields of each contract on stdout, and still passes', async () => {
    const dir = contractsFolder({
      'customer.signup/1.json': documented('urn:c:1', { name: { type: 'string' }, email: { type: 'string', 'x-classification': 'personal' }, card: { type: 'string', 'x-classification': 'secret' } }, ['name']),
    });
    const result = await run('schemas', 'check', dir);
    expect(result.code).toBe(0);
    expect(result.stdout.split('\n')).toEqual([
      'classified: customer.signup@1 /card secret, /email personal',
      'schemas check: 1 contracts in 1 subjects are compatible with their predecessors and documented',
      '',
    ]);
  });

  it('check fails with exit 1 and a precise explanation for an incompatible version and for missing descriptions', async () => {
    const dir = contractsFolder({
      'device.telemetry/1.json': documented('urn:t:1', { deviceId: { type: 'string' } }, ['deviceId']),
      'device.telemetry/2.json': documented('urn:t:2', { deviceId: { type: 'string' }, unit: { type: 'string' } }, ['deviceId', 'unit']),
      'device.telemetry/subject.json': { compatibility: 'BACKWARD' },
      'other/1.json': objectSchema('urn:o:1', { level: { type: 'number' } }),
    });
    const result = await run('schemas', 'check', dir);
    expect(result.code).toBe(1);
    expect(result.stderr.split('\n')).toEqual([
      'incompatible: device.telemetry v2 adds required field `unit` without a default: BACKWARD-incompatible (mode BACKWARD; readers of the new version cannot read data written with the previous one)',
      'undocumented: other@1: property `level` has no description',
      'undocumented: other@1: numeric property `level` has no unit (add "unit": "…")',
      `schemas check failed: 1 incompatible change(s), 2 documentation problem(s) in ${dir}`,
      '',
    ]);
  });

  it('check exits 1 naming the file when a contract cannot load (remote $ref)', async () => {
    const dir = contractsFolder({ 'a/1.json': documented('urn:a:1', { x: { $ref: 'https://evil.example/x.json' } }) });
    const result = await run('schemas', 'check', dir);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^interchange: SchemaDefinitionError: .*a\/1\.json: remote \$ref refused .*https:\/\/evil\.example\/x\.json/);
  });

  it('docs prints a Markdown catalogue of subjects, versions and fields', async () => {
    const result = await run('schemas', 'docs');
    expect(result.code).toBe(0);
    expect(result.stdout).toBe(contractsMarkdown(shippedRegistry()));
    expect(result.stdout).toContain('| [device.telemetry](#devicetelemetry) | 1, 2 | BACKWARD |');
    expect(result.stdout).toContain('### device.telemetry@2 — Device telemetry v2');
    expect(result.stdout).toContain('| `temperature` | number | yes | °C | minimum -273.15, maximum 1000 | Air temperature in degrees Celsius, from absolute zero to 1,000 °C (beyond is no sensor reading: refused). |');
    expect(result.stdout).toContain('| `humidity` | number | no | % | minimum 0, maximum 100 | Relative humidity in percent (0–100). |');
    expect(result.stdout).toContain('| `unit` | enum | yes |  | one of "C", "F", default "C" |');
  });

  it('types --check exits 1 for a stale file; types writes it', async () => {
    const dir = contractsFolder({ 'a.b/1.json': documented('urn:a:1', { n: { type: 'integer', unit: '1' } }, ['n']), 'types.generated.ts': 'stale' });
    const stale = await run('schemas', 'types', dir, '--check');
    expect(stale.code).toBe(1);
    expect(stale.stderr).toContain('types.generated.ts is out of date; run `npx interchange schemas types');
    expect((await run('schemas', 'types', dir)).code).toBe(0);
    const written = readFileSync(join(dir, 'types.generated.ts'), 'utf8');
    expect(written).toContain("export interface ABV1 {\n  /** n Unit: 1. */\n  readonly n: number;\n}");
    expect(written).toContain("  'a.b@1': ABV1;");
    expect((await run('schemas', 'types', dir, '--check')).code).toBe(0);
  });

  it('parses the schemas command line', () => {
    expect(parseCommandLine(['schemas', 'check'])).toEqual({ name: 'schemas', action: 'check', directory: 'schemas', check: false });
    expect(parseCommandLine(['schemas', 'types', 'contracts', '--out=x.ts', '--check'])).toEqual({ name: 'schemas', action: 'types', directory: 'contracts', out: 'x.ts', check: true });
    expect(() => parseCommandLine(['schemas'])).toThrow(UsageError);
    expect(() => parseCommandLine(['schemas', 'lint'])).toThrow(/schemas needs check, docs or types \(got 'lint'\)/);
    expect(() => parseCommandLine(['schemas', 'check', '--check'])).toThrow(/unknown option '--check' for schemas check/);
    expect(() => parseCommandLine(['schemas', 'check', 'a', 'b'])).toThrow(/one contracts folder only/);
  });
});

describe('generated contract types', () => {
  it('maps JSON Schema constructs to TypeScript', () => {
    const schema = {
      $id: 'urn:g:1',
      type: 'object',
      properties: {
        tags: { type: 'array', items: { type: 'string' } },
        level: { enum: ['low', 'high'] },
        fixed: { const: 3 },
        maybe: { type: ['string', 'null'] },
        either: { anyOf: [{ type: 'number' }, { type: 'boolean' }] },
        nested: { type: 'object', properties: { a: { type: 'integer' } }, required: ['a'], additionalProperties: false },
        open: { type: 'object' },
        'odd-name': { type: 'string' },
        defined: { $ref: '#/$defs/thing' },
      },
      required: ['tags'],
      additionalProperties: false,
      $defs: { thing: { type: 'string' } },
    };
    const { JsonSchemaRegistry } = shippedRegistryModule;
    const source = generateContractTypes(new JsonSchemaRegistry({ contracts: [{ subject: 'g', version: 1, schema }] }));
    expect(source).toContain(`export interface GV1 {
  readonly tags: readonly string[];
  readonly level?: 'low' | 'high';
  readonly fixed?: 3;
  readonly maybe?: string | null;
  readonly either?: number | boolean;
  readonly nested?: {
    readonly a: number;
  };
  readonly open?: {
    readonly [field: string]: unknown;
  };
  readonly 'odd-name'?: string;
  readonly defined?: string;
}`);
  });
});

const shippedRegistryModule = await import('../../../src/schema/index.ts');
