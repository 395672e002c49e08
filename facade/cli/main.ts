import { InterchangeError } from '../../src/core/index.ts';
import { parseCommandLine, usage, UsageError, type Command } from './command-line.ts';
import { runCommand, type RunIo } from './run-command.ts';
import { schemasCommand } from './schemas-command.ts';

/**
 * The `interchange` command. `args` are the arguments after the script (`process.argv.slice(2)`).
 * Resolves with the exit code: 0 done; 1 the routes failed to load or start, a route failed while
 * running, or the drain left messages unsettled; 2 bad command line.
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
    if (command.name === 'schemas') return schemasCommand(command, io);
    return await runCommand(command, io);
  } catch (error) {
    return reportFailure(error, io);
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
