/** What the command line asked for. */
export type Command =
  | { readonly name: 'help' }
  | { readonly name: 'version' }
  | RunCommand
  | SchemasCommand;

/** `interchange run <file>`. */
export interface RunCommand {
  readonly name: 'run';
  readonly file: string;
  readonly drainTimeoutMs: number;
  readonly quiet: boolean;
  /** `--http [host:]port`: serve the console (metrics, health, graph, dead letters) there. */
  readonly http?: { readonly host: string; readonly port: number };
}

/** `interchange schemas check|docs|types [dir]`. */
export interface SchemasCommand {
  readonly name: 'schemas';
  readonly action: 'check' | 'docs' | 'types';
  /** The contracts folder (default `schemas`). */
  readonly directory: string;
  /** docs/types: write here instead of stdout (docs) or `<dir>/types.generated.ts` (types). */
  readonly out?: string;
  /** types: only verify the file is up to date (exit 1 if not). */
  readonly check: boolean;
}

/** The command line is wrong: the CLI prints the message and the usage, and exits with code 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

export const DEFAULT_DRAIN_TIMEOUT_MS = 10_000;

export const usage = `Usage:
  interchange run <routes.ts> [--drain-timeout <ms>] [--quiet] [--http [host:]port]
  interchange schemas check [dir]
  interchange schemas docs [dir] [--out <file.md>]
  interchange schemas types [dir] [--out <file.ts>] [--check]
  interchange --version
  interchange --help

Commands:
  run <routes.ts>       Load a route file, start its routes and show their counters every second
                        until SIGINT/SIGTERM; then stop intake, drain in-flight messages and exit.
                        A route file exports \`routes\` (an array of from(...) builders), optionally
                        \`modules\` and \`onStart(integration)\`, or a default export of that shape
                        (see defineIntegration). It is an ES module (.mjs/.mts, or .js/.ts in a
                        "type": "module" package); .ts/.mts files run through tsx (npm i -D tsx)
                        or Node's own type stripping where Node has it.
  schemas check [dir]   Check the contracts in dir (default schemas/): each version against its
                        predecessor under the subject's compatibility mode, and that every property
                        has a description (and numeric ones a unit). Exit 1 with the reasons if not.
  schemas docs [dir]    Print a Markdown catalogue of subjects, versions and fields.
  schemas types [dir]   Write the contracts' TypeScript types to dir/types.generated.ts
                        (--check: exit 1 if that file is out of date instead of writing it).

Options:
  --drain-timeout <ms>  How long in-flight messages may take to settle on stop (default ${DEFAULT_DRAIN_TIMEOUT_MS}).
  --quiet               No live counters; only the final counts.
  --http [host:]port    Serve the console: /metrics (Prometheus), /health/live, /health/ready, /graph
                        and a web page with the live graph and the dead letters (127.0.0.1 unless a
                        host is given; any other host needs INTERCHANGE_CONSOLE_TOKEN). Replaying a
                        dead letter and stopping or starting a route need that token too.

Environment:
  LOG_LEVEL             trace, debug, info (default), warn, error, fatal or silent. Logs are JSON
                        lines on stderr, pretty on a terminal; secrets are never written.
  INTERCHANGE_CONSOLE_TOKEN  The console's token (--http): what writes, and any non-loopback host, need.
  -v, --version         Print Interchange's version.
  -h, --help            Show this help.

Exit codes: 0 stopped cleanly (or the schemas are fine), 1 the routes failed to load or start, a
route failed while running, the drain deadline passed with messages unsettled (or the schemas check
failed), 2 bad command line.`;

/**
 * Parses the arguments after `node interchange` (no interpreter or script path).
 * Throws `UsageError` for an unknown command or option, a missing file or a bad number.
 * @example parseCommandLine(['run', 'routes.ts', '--drain-timeout', '5000'])
 */
export function parseCommandLine(args: readonly string[]): Command {
  const [name, ...rest] = args;
  if (name === undefined) throw new UsageError('no command given');
  if (name === '--help' || name === '-h' || name === 'help') return { name: 'help' };
  if (name === '--version' || name === '-v' || name === 'version') return { name: 'version' };
  if (name === 'schemas') return parseSchemasCommand(rest);
  if (name !== 'run') throw new UsageError(`unknown command '${name}'`);

  let file: string | undefined;
  let drainTimeoutMs = DEFAULT_DRAIN_TIMEOUT_MS;
  let quiet = false;
  let http: { host: string; port: number } | undefined;
  for (let index = 0; index < rest.length; index += 1) {
    const arg = rest[index] as string;
    const [option, inline] = arg.startsWith('--') && arg.includes('=') ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)] : [arg, undefined];
    if (option === '--help' || option === '-h') return { name: 'help' };
    if (option === '--quiet') {
      quiet = true;
    } else if (option === '--drain-timeout') {
      const value = inline ?? rest[(index += 1)];
      drainTimeoutMs = milliseconds(value);
    } else if (option === '--http') {
      http = httpAddress(inline ?? rest[(index += 1)]);
    } else if (option.startsWith('-')) {
      throw new UsageError(`unknown option '${option}'`);
    } else if (file === undefined) {
      file = arg;
    } else {
      throw new UsageError(`one route file only (got '${file}' and '${arg}')`);
    }
  }
  if (file === undefined) throw new UsageError('run needs a route file');
  return { name: 'run', file, drainTimeoutMs, quiet, ...(http === undefined ? {} : { http }) };
}

/** `8080`, `:8080`, `0.0.0.0:8080`, `[::1]:8080` → host and port (host 127.0.0.1 unless given). */
function httpAddress(value: string | undefined): { host: string; port: number } {
  const text = value?.trim() ?? '';
  const match = /^(?:(\[[0-9a-fA-F:.]+\]|[^:[\]]+)?:)?(\d{1,5})$/.exec(text);
  const port = match === null ? Number.NaN : Number(match[2]);
  if (match === null || !Number.isInteger(port) || port > 65_535) throw new UsageError(`--http needs [host:]port, e.g. 9090 or 0.0.0.0:9090, got '${value ?? ''}'`);
  const host = match[1] === undefined || match[1] === '' ? '127.0.0.1' : match[1].replace(/^\[|\]$/g, '');
  return { host, port };
}

function milliseconds(value: string | undefined): number {
  const ms = value === undefined || value.trim() === '' ? Number.NaN : Number(value);
  if (!Number.isInteger(ms) || ms < 0) throw new UsageError(`--drain-timeout needs a whole number of milliseconds, got '${value ?? ''}'`);
  return ms;
}

function parseSchemasCommand(args: readonly string[]): Command {
  const [action, ...rest] = args;
  if (action === '--help' || action === '-h') return { name: 'help' };
  if (action !== 'check' && action !== 'docs' && action !== 'types') throw new UsageError(`schemas needs check, docs or types (got '${action ?? ''}')`);
  let directory: string | undefined;
  let out: string | undefined;
  let check = false;
  for (let index = 0; index < rest.length; index += 1) {
    const arg = rest[index] as string;
    const [option, inline] = arg.startsWith('--') && arg.includes('=') ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)] : [arg, undefined];
    if (option === '--help' || option === '-h') return { name: 'help' };
    if (option === '--out' && action !== 'check') {
      out = inline ?? rest[(index += 1)];
      if (out === undefined || out === '') throw new UsageError('--out needs a file');
    } else if (option === '--check' && action === 'types') {
      check = true;
    } else if (option.startsWith('-')) {
      throw new UsageError(`unknown option '${option}' for schemas ${action}`);
    } else if (directory === undefined) {
      directory = arg;
    } else {
      throw new UsageError(`one contracts folder only (got '${directory}' and '${arg}')`);
    }
  }
  return { name: 'schemas', action, directory: directory ?? 'schemas', ...(out === undefined ? {} : { out }), check };
}
