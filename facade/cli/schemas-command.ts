import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { checkRegistry, classificationLines, contractsMarkdown, generateContractTypes, JsonSchemaRegistry } from '../../src/schema/index.ts';
import type { SchemasCommand } from './command-line.ts';

export interface SchemasIo {
  readonly stdout: { write(text: string): unknown };
  readonly stderr: { write(text: string): unknown };
}

/**
 * `interchange schemas check|docs|types [dir]`. Loading the folder compiles every contract, so a
 * contract that is not valid draft 2020-12, has a remote `$ref` or an unsupported pattern fails
 * here (thrown `SchemaDefinitionError`, exit 1 via the caller). Returns the exit code: 0 fine,
 * 1 incompatible or undocumented contracts (check) or a stale types file (types --check).
 */
export function schemasCommand(command: SchemasCommand, io: SchemasIo): number {
  const registry = JsonSchemaRegistry.fromDirectory(command.directory, { precompile: true });
  switch (command.action) {
    case 'check': {
      const report = checkRegistry(registry);
      const subjects = registry.subjects().length;
      const contracts = registry.contracts().length;
      // classified fields are reported, never a failure: where they may flow is the routes' business (trustZoneFlows)
      for (const line of classificationLines(report)) io.stdout.write(`${line}\n`);
      if (report.ok) {
        io.stdout.write(`schemas check: ${contracts} contracts in ${subjects} subjects are compatible with their predecessors and documented\n`);
        return 0;
      }
      for (const incompatibility of report.incompatibilities) io.stderr.write(`incompatible: ${incompatibility.explanation}\n`);
      for (const problem of report.lint) io.stderr.write(`undocumented: ${problem.contract}: ${problem.problem}\n`);
      io.stderr.write(`schemas check failed: ${report.incompatibilities.length} incompatible change(s), ${report.lint.length} documentation problem(s) in ${command.directory}\n`);
      return 1;
    }
    case 'docs': {
      const markdown = contractsMarkdown(registry);
      if (command.out === undefined) io.stdout.write(markdown);
      else {
        writeFileSync(command.out, markdown);
        io.stdout.write(`schemas docs: wrote ${command.out}\n`);
      }
      return 0;
    }
    case 'types': {
      const file = command.out ?? join(command.directory, 'types.generated.ts');
      const source = generateContractTypes(registry);
      const current = existsSync(file) ? readFileSync(file, 'utf8') : undefined;
      if (command.check) {
        if (current === source) {
          io.stdout.write(`schemas types: ${file} is up to date\n`);
          return 0;
        }
        io.stderr.write(`schemas types: ${file} is out of date; run \`npx interchange schemas types${command.directory === 'schemas' ? '' : ` ${command.directory}`}\`\n`);
        return 1;
      }
      if (current !== source) writeFileSync(file, source);
      io.stdout.write(`schemas types: ${current === source ? 'unchanged' : 'wrote'} ${file} (${registry.contracts().length} contracts)\n`);
      return 0;
    }
  }
}
