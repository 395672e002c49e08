import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { InterchangeError } from '../../src/core/errors.ts';
import { parseCommandLine, usage, UsageError, type Command } from './command-line.ts';
import type { RunIo } from './run-command.ts';

/**
 * The `interchange` command. `args` are the arguments after the script (`process.argv.slice(2)`).
 * Resolves with the exit code: 0 done; 1 the routes failed to load or start, a route failed while
 * running, or the drain left messages unsettled; 2 bad command line. `--help` and `--version` load
 * nothing else: the run and schemas commands (and through them the adapters) are imported when used.
 * @example process.exit(await main(process.argv.slice(2)));
 */
export async function main(args: readonly string[], io: RunIo = { stdout: process.stdout, stderr: process.stderr, exit: (code) => process.exit(code) }): Promise<number> {
  let command: Command;
  try {
    command = parseCommandLine(args);
    if (command.name === 'help') {
      io.stdout.write(`${usage}\n`);
      return 0;
    }
    if (command.name === 'version') {
      io.stdout.write(`${packageVersion()}\n`);
      return 0;
    }
    if (command.name === 'schemas') {
      const { schemasCommand } = await import('./schemas-command.ts');
      return schemasCommand(command, io);
    }
    const { runCommand } = await import('./run-command.ts');
    return await runCommand(command, io);
  } catch (error) {
    return reportFailure(error, io);
  }
}

/** The version in Interchange's package.json: the nearest one above this file (sources or dist/). */
function packageVersion(): string {
  for (let directory = dirname(fileURLToPath(import.meta.url)); ; directory = dirname(directory)) {
    const file = join(directory, 'package.json');
    if (existsSync(file)) return String((JSON.parse(readFileSync(file, 'utf8')) as { version?: unknown }).version);
    if (dirname(directory) === directory) return 'unknown';
  }
}

/** Prints why the CLI gives up and returns the exit code for it. */
function reportFailure(error: unknown, io: RunIo): number {
  if (error instanceof UsageError) {
    io.stderr.write(`interchange: ${error.message}\n\n${usage}\n`);
    return 2;
  }
  if (isInterchangeError(error)) {
    io.stderr.write(`interchange: ${error.name}: ${error.message}\n`);
    return 1;
  }
  io.stderr.write(`interchange: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  return 1;
}

/** By class, or by `code` for errors from another copy of the package (a route file may load its own). */
function isInterchangeError(error: unknown): error is Error & { code: string } {
  if (error instanceof InterchangeError) return true;
  return error instanceof Error && 'code' in error && (error.code === 'ROUTE_DEFINITION' || error.code === 'ROUTE_FILE');
}
