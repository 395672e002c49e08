import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { jsonSyntaxProblem } from '../../../src/schema/json-syntax.ts';
import { contractsMarkdown, generateContractTypes, JsonSchemaRegistry, loadContracts, PayloadParseError, SchemaDefinitionError } from '../../../src/schema/index.ts';
import { contractsFolder, root, shippedRegistry } from './fixtures.ts';

/** A contract with a missing comma at the end of line 3: the parser stops at line 4, column 3. */
const missingComma = ['{', '  "$id": "urn:order.priced:1",', '  "type": "object"', '  "properties": {}', '}', ''].join('\n');

function thrown(action: () => unknown): unknown {
  try {
    action();
  } catch (error) {
    return error;
  }
  throw new Error('expected a throw');
}

describe('a contract file that is not JSON', () => {
  it('is reported by `interchange schemas check` as schemas/<subject>/<version>.json:LINE:COL: what (the real bin, exit 1)', () => {
    const project = mkdtempSync(join(tmpdir(), 'interchange-project-'));
    mkdirSync(join(project, 'schemas', 'order.priced'), { recursive: true });
    writeFileSync(join(project, 'schemas', 'order.priced', '1.json'), missingComma);
    const result = spawnSync(process.execPath, ['--conditions=interchange-source', join(root, 'bin/interchange.js'), 'schemas', 'check'], { cwd: project, encoding: 'utf8' });
    expect(result.stderr).toBe(`interchange: SchemaDefinitionError: schemas/order.priced/1.json:4:3: expected ',' or '}' after a property value, found '"' (a comma missing?)\n`);
    expect(result.stdout).toBe('');
    expect(result.status).toBe(1);
  }, 20_000);

  it('throws a SchemaDefinitionError with file, line and column, the parse error as its cause, never a payload error', () => {
    const dir = contractsFolder({ 'order.priced/1.json': missingComma });
    const error = thrown(() => loadContracts(dir));
    expect(error).toBeInstanceOf(SchemaDefinitionError);
    expect(error).not.toBeInstanceOf(PayloadParseError);
    const file = relative(process.cwd(), join(dir, 'order.priced/1.json'));
    expect(error).toMatchObject({ code: 'SCHEMA_DEFINITION', permanent: true, file, line: 4, column: 3 });
    expect((error as Error).message).toBe(`${file}:4:3: expected ',' or '}' after a property value, found '"' (a comma missing?)`);
    expect((error as Error).cause).toBeInstanceOf(PayloadParseError);
    // JsonSchemaRegistry.fromDirectory loads through the same path
    expect(() => JsonSchemaRegistry.fromDirectory(dir)).toThrow(`${file}:4:3: `);
  });

  it('locates errors in subject.json the same way', () => {
    const dir = contractsFolder({ 'a/1.json': { $id: 'urn:a:1' }, 'a/subject.json': '{\n  "compatibility": \'FULL\'\n}\n' });
    expect(thrown(() => loadContracts(dir))).toMatchObject({
      line: 2,
      column: 20,
      message: `${relative(process.cwd(), join(dir, 'a/subject.json'))}:2:20: strings need double quotes, not single quotes`,
    });
  });

  it('names line, column and what is wrong for the usual slips, the same on every Node version', () => {
    const cases: [string, string][] = [
      ['{"a": 1,}', "1:8 a trailing comma before '}' is not JSON"],
      ['{\n  "a": 1,\n  "b": 2\n', '4:1 unexpected end of file: an object is not closed'],
      ['{\r\n  "a": "x\n"}', '2:10 line break inside a string (a closing quote missing, or write it as \\n)'],
      ['{"a": tru}', "1:7 unexpected 'tru': strings need double quotes; the only bare words are true, false and null"],
      ['{"a": 01}', '1:7 a number cannot have a leading zero'],
      ['{"a": 1} // done', "1:10 '/' after the JSON value (only one value per file)"],
      ['{"é😀": [1 2]}', "1:11 expected ',' or ']' after an array element, found '2' (a comma missing?)"],
      ['\ufeff{}', '1:1 the file starts with a byte order mark (U+FEFF): save it as UTF-8 without BOM'],
      ['', '1:1 unexpected end of file: a value is missing'],
    ];
    for (const [text, expected] of cases) {
      expect(() => JSON.parse(text)).toThrow(SyntaxError);
      const problem = jsonSyntaxProblem(text);
      expect(problem && `${problem.line}:${problem.column} ${problem.message}`, JSON.stringify(text)).toBe(expected);
    }
    for (const valid of ['{}', ' [1, -2.5e3, "\\u00e9\\n", true, false, null, {"a": {}}] ', '"x"']) expect(jsonSyntaxProblem(valid)).toBeUndefined();
  });
});

describe('schemas docs: required fields', () => {
  it('marks a required field of array items and of nested objects as required (dotted names too)', () => {
    const dir = contractsFolder({
      'a/1.json': {
        $id: 'urn:a:1',
        description: 'a',
        type: 'object',
        properties: {
          lines: {
            type: 'array',
            description: 'lines',
            items: { type: 'object', properties: { sku: { type: 'string', description: 'sku' }, note: { type: 'string', description: 'note' } }, required: ['sku'] },
          },
          'x.y': { type: 'object', description: 'dotted', properties: { z: { type: 'string', description: 'z' } }, required: ['z'] },
        },
      },
    });
    const markdown = contractsMarkdown(JsonSchemaRegistry.fromDirectory(dir));
    expect(markdown).toContain('| `lines` | object[] | no |');
    expect(markdown).toContain('| `lines[].sku` | string | yes |');
    expect(markdown).toContain('| `lines[].note` | string | no |');
    expect(markdown).toContain('| `x.y.z` | string | yes |');
  });

  it('says so in the shipped catalogue: every field of an order.placed@1 line is required', () => {
    const markdown = contractsMarkdown(shippedRegistry());
    for (const field of ['sku', 'quantity', 'unitPrice']) expect(markdown).toMatch(new RegExp(`\\| \`lines\\[\\]\\.${field}\` \\| \\w+ \\| yes \\|`));
  });
});

describe('schemas types: which objects admit other fields', () => {
  it('gives an index signature unless additionalProperties is false and no patternProperties admit more (the compile-time check of extra fields relies on it)', () => {
    const schema = {
      $id: 'urn:p:1',
      type: 'object',
      properties: {
        closed: { type: 'object', properties: { a: { type: 'string' } }, additionalProperties: false },
        patterned: { type: 'object', properties: { a: { type: 'string' } }, patternProperties: { '^x-': { type: 'string' } }, additionalProperties: false },
      },
      additionalProperties: false,
    };
    expect(generateContractTypes(new JsonSchemaRegistry({ contracts: [{ subject: 'p', version: 1, schema }] }))).toContain(`export interface PV1 {
  readonly closed?: {
    readonly a?: string;
  };
  readonly patterned?: {
    readonly a?: string;
    readonly [field: string]: unknown;
  };
}`);
  });
});
