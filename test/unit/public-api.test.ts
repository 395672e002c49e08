import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import * as facade from '../../facade/index.ts';

const root = fileURLToPath(new URL('../../', import.meta.url));

/** Every name a module exports, values and types alike, as the compiler sees it. */
function exportedNames(file: string): { values: string[]; types: string[] } {
  const program = ts.createProgram([file], {
    target: ts.ScriptTarget.ES2023,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    allowImportingTsExtensions: true,
    noEmit: true,
    skipLibCheck: true,
    types: ['node'],
    customConditions: ['interchange-source'],
  });
  const checker = program.getTypeChecker();
  const module = checker.getSymbolAtLocation(program.getSourceFile(file)!)!;
  const values: string[] = [];
  const types: string[] = [];
  for (const symbol of checker.getExportsOfModule(module)) {
    const target = symbol.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(symbol) : symbol;
    (target.flags & ts.SymbolFlags.Value ? values : types).push(symbol.name);
  }
  return { values: values.sort(), types: types.sort() };
}

/** The user facade (`interchange-eip`) stays user-sized, and the README lists exactly what it exports. */
describe('the public API', () => {
  const { values, types } = exportedNames(`${root}facade/index.ts`);
  const names = [...values, ...types].sort();

  it('exports at most 60 names, values and types counted alike', () => {
    expect(names.length).toBeLessThanOrEqual(60);
  });

  it('is the list in the README\'s "Public API" section, name for name', () => {
    const section = /## Public API\n([\s\S]*?)\n## /.exec(readFileSync(`${root}README.md`, 'utf8'))?.[1] ?? '';
    const rows = section.split('\n').filter((line) => /^\| [a-z]/.test(line) && !line.startsWith('| for |'));
    const listed = rows.flatMap((row) => [...(row.split('|')[2] ?? '').matchAll(/`([A-Za-z]+)`/g)].map((match) => match[1]!)).sort();
    expect(listed).toEqual(names);
    expect(section).toContain(`these ${names.length} names`);
  }, 30_000);

  it('exports at run time every value the compiler sees', () => {
    expect(Object.keys(facade).sort()).toEqual(values);
  });
});
