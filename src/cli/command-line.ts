/** What the command line asked for. */
export type Command =
  | { readonly name: 'help' }
  | { readonly name: 'run'; readonly file: string; readonly drainTimeoutMs: number; readonly quiet: boolean };

/** The command line is wrong: the CLI prints the message and the usage, and exits with code 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

export const DEFAULT_DRAIN_TIMEOUT_MS = 10_000;

export const usage = `Usage:
  interchange run <routes.ts> [--drain-timeout <ms>] [--quiet]
  interchange --help

Commands:
  run <routes.ts>       Load a route file, start its routes and show their counters every second
                        until SIGINT/SIGTERM; then stop intake, drain in-flight messages and exit.
                        A route file exports \`routes\` (an array of from(...) builders), optionally
                        \`modules\` and \`onStart(integration)\`, or a default export of that shape
                        (see defineIntegration).

Options:
  --drain-timeout <ms>  How long in-flight messages may take to settle on stop (default ${DEFAULT_DRAIN_TIMEOUT_MS}).
  --quiet               No live counters; only the final counts.
  -h, --help            Show this help.

Exit codes: 0 stopped cleanly, 1 the routes failed to load or start, 2 bad command line.`;

/**
 * Parses the arguments after `node interchange` (no interpreter or script path).
 * Throws `UsageError` for an unknown command or option, a missing file or a bad number.
 * @example parseCommandLine(['run', 'routes.ts', '--drain-timeout', '5000'])
 */
export function parseCommandLine(args: readonly string[]): Command {
  const [name, ...rest] = args;
  if (name === undefined) throw new UsageError('no command given');
  if (name === '--help' || name === '-h' || name === 'help') return { name: 'help' };
  if (name !== 'run') throw new UsageError(`unknown command '${name}'`);

  let file: string | undefined;
  let drainTimeoutMs = DEFAULT_DRAIN_TIMEOUT_MS;
  let quiet = false;
  for (let index = 0; index < rest.length; index += 1) {
    const arg = rest[index] as string;
    const [option, inline] = arg.startsWith('--') && arg.includes('=') ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)] : [arg, undefined];
    if (option === '--help' || option === '-h') return { name: 'help' };
    if (option === '--quiet') {
      quiet = true;
    } else if (option === '--drain-timeout') {
      const value = inline ?? rest[(index += 1)];
      drainTimeoutMs = milliseconds(value);
    } else if (option.startsWith('-')) {
      throw new UsageError(`unknown option '${option}'`);
    } else if (file === undefined) {
      file = arg;
    } else {
      throw new UsageError(`one route file only (got '${file}' and '${arg}')`);
    }
  }
  if (file === undefined) throw new UsageError('run needs a route file');
  return { name: 'run', file, drainTimeoutMs, quiet };
}

function milliseconds(value: string | undefined): number {
  const ms = value === undefined || value.trim() === '' ? Number.NaN : Number(value);
  if (!Number.isInteger(ms) || ms < 0) throw new UsageError(`--drain-timeout needs a whole number of milliseconds, got '${value ?? ''}'`);
  return ms;
}
