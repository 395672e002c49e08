import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { main } from '../../../facade/cli/main.ts';
import { generateContractTypes, JsonSchemaRegistry } from '../../../src/schema/index.ts';
import { contractsFolder, objectSchema, root } from './fixtures.ts';

/**
 * A project's own contracts reach the typed DSL through the file `interchange schemas types` writes:
 * its module augmentation adds them to `ContractTypes`, which the library ships empty. Compiled as a
 * user's project would be: a route file beside the generated file, `interchange-eip` resolving to the
 * package (here its sources, via `paths`).
 */
describe('the module augmentation of `interchange schemas types`', () => {
  const io = {
    stdout: { write: () => true, isTTY: false, columns: 80 },
    stderr: { write: () => true },
    exit: (code: number): never => {
      throw new Error(`exit ${code}`);
    },
  } as unknown as Parameters<typeof main>[1];

  it('types the DSL with the project\'s contracts, and only with them', async () => {
    const dir = contractsFolder({
      'shop.order/1.json': objectSchema('urn:shop:order:1', { orderId: { type: 'string', description: 'the order' }, total: { type: 'number', description: 'the sum' } }, ['orderId', 'total']),
    });
    expect(await main(['schemas', 'types', dir], io)).toBe(0);
    expect(readFileSync(join(dir, 'types.generated.ts'), 'utf8')).toContain("declare module 'interchange-eip' {\n  /** The contracts of this folder, by `subject@version`: the DSL types their bodies. */\n  interface ContractTypes {\n    'shop.order@1': ShopOrderV1;\n  }\n}\n");
    const lines = [
      "import { from, type ContractName } from 'interchange-eip';",
      "import './types.generated.ts';",
      "export const names: ContractName[] = ['shop.order@1'];",
      "export const route = from('memory:orders', { contract: 'shop.order@1' }).transform((m) => m.body.total * 2).to('memory:doubled');",
      "export const sends = from('memory:a').transform(() => ({ orderId: 'o-1', total: 3 })).to('memory:b', { contract: 'shop.order@1' });",
      "export const missing = from('memory:orders', { contract: 'shop.order@1' }).transform((m) => m.body.customer);", // 5: not a field
      "export const foreign = from('memory:a').validate('order.placed@1');", // 6: the library knows no contract of its own
    ];
    writeFileSync(join(dir, 'route.mts'), `${lines.join('\n')}\n`);
    expect(diagnostics(join(dir, 'route.mts'))).toEqual({
      'route.mts:5': expect.stringContaining("Property 'customer' does not exist on type 'ShopOrderV1'"),
      'route.mts:6': expect.stringContaining('"order.placed@1"'),
    });
  }, 60_000);

  it('still writes a module when the folder has no contracts (an augmentation, not an ambient module)', () => {
    const source = generateContractTypes(new JsonSchemaRegistry({ contracts: [] }));
    expect(source).toContain('export {};');
    expect(source).toContain("declare module 'interchange-eip' {");
  });
});

/** The compiler's errors in a program rooted at `file`, by `file:line` (0-based), wherever they are. */
function diagnostics(file: string): Record<string, string> {
  const program = ts.createProgram([file], {
    target: ts.ScriptTarget.ES2023,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    strict: true,
    allowImportingTsExtensions: true,
    verbatimModuleSyntax: true,
    skipLibCheck: true,
    noEmit: true,
    types: ['node'],
    typeRoots: [join(root, 'node_modules/@types')],
    paths: { 'interchange-eip': [join(root, 'facade/index.ts')] },
  });
  const found: Record<string, string> = {};
  for (const diagnostic of ts.getPreEmitDiagnostics(program)) {
    const where = diagnostic.file === undefined ? 'options' : `${relative(dirname(file), diagnostic.file.fileName)}:${diagnostic.file.getLineAndCharacterOfPosition(diagnostic.start ?? 0).line}`;
    found[where] = `${found[where] ?? ''}${ts.flattenDiagnosticMessageText(diagnostic.messageText, '\n')}`;
  }
  return found;
}
