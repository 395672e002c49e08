import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { root } from './fixtures.ts';

/**
 * What a developer reads when a body does not match its contract: the compiler's own diagnostic text,
 * from one program over a small file that uses the DSL (the type tests check the types; this checks
 * that the message, not a type alias's name, reaches the diagnostic).
 */
describe('the compiler diagnostic of .to(uri, { contract }) with a wrong body', () => {
  it('names the offending field and the contract', () => {
    const dir = mkdtempSync(join(tmpdir(), 'interchange-diagnostics-'));
    const file = join(dir, 'routes.mts'); // .mts: an ES module wherever it lies
    const cases = [
      "from('memory:a').transform(() => ({ deviceId: 'd', timestamp: 0, temperatureC: 1 })).to('memory:b', { contract: 'backend.reading@1' });",
      "from('memory:a').transform(() => ({ ...order, lines: [{ sku: 'a', quantity: 1, unitPrice: 2, discount: 1 }] })).to('memory:b', { contract: 'order.placed@1' });",
      "from('memory:a').transform(() => ({ ...order, total: '12', note: 'x' })).to('memory:b', { contract: 'order.placed@1', id: 'send' });",
      "from('memory:a').transform(() => order).to('memory:b', { contract: 'order.placed@1' });",
    ];
    writeFileSync(file, [
      `import { from } from ${JSON.stringify(join(root, 'facade/index.ts'))};`,
      `import ${JSON.stringify(join(root, 'schemas/types.generated.ts'))};`, // the contracts, by its module augmentation
      "const order = { orderId: 'o', customerId: 'c', lines: [{ sku: 'a', quantity: 1, unitPrice: 2 }], total: 2, currency: 'EUR', placedAt: '2026-01-01T00:00:00Z' };",
      ...cases,
      '',
    ].join('\n'));
    const program = ts.createProgram([file], {
      target: ts.ScriptTarget.ES2023,
      module: ts.ModuleKind.NodeNext,
      moduleResolution: ts.ModuleResolutionKind.NodeNext,
      strict: true,
      noUncheckedIndexedAccess: true,
      allowImportingTsExtensions: true,
      verbatimModuleSyntax: true,
      skipLibCheck: true,
      noEmit: true,
      types: ['node'],
      typeRoots: [join(root, 'node_modules/@types')],
      customConditions: ['interchange-source'], // the augmented module 'interchange-eip' is the repo's own sources
    });
    const byLine = new Map<number, string>();
    for (const diagnostic of program.getSemanticDiagnostics(program.getSourceFile(file))) {
      const line = diagnostic.file!.getLineAndCharacterOfPosition(diagnostic.start!).line;
      byLine.set(line, `${byLine.get(line) ?? ''}${ts.flattenDiagnosticMessageText(diagnostic.messageText, '\n')}`);
    }
    expect([...byLine.keys()].sort()).toEqual([3, 4, 5]); // the first lines are the imports and the order; the last case compiles
    expect(byLine.get(3)).toContain('"`temperatureF` is missing for backend.reading@1"');
    expect(byLine.get(4)).toContain('"`lines[].discount` is not a field of order.placed@1"');
    expect(byLine.get(5)).toContain('"`total` must be a number for order.placed@1"');
    expect(byLine.get(5)).toContain('"`note` is not a field of order.placed@1"');
    expect(byLine.get(5)).not.toMatch(/Mismatches</); // the messages themselves, not a type alias's name
  }, 60_000);
});
