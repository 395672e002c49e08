import { hostname } from 'node:os';
import { pino, type Bindings, type ChildLoggerOptions, type DestinationStream, type Logger as Pino } from 'pino';
import { prettyFactory } from 'pino-pretty';
import type { Logger } from '../../src/core/logger.ts';
import { redactUrl } from '../../src/core/redact.ts';
import { parseLogLevel, type LogLevel } from './log-level.ts';

type Fields = Readonly<Record<string, unknown>>;

/** Where log lines go: a file descriptor (2 is stderr) or any stream with `write`. */
export type LogDestination = number | { write(chunk: string): unknown };

export interface PinoLoggerOptions {
  /** The lowest level written (default `LOG_LEVEL`, else `info`); an invalid `LOG_LEVEL` throws `RangeError`. */
  readonly level?: LogLevel;
  /** Human-readable lines instead of JSON (default: when stderr is a terminal). */
  readonly pretty?: boolean;
  /** Colours in pretty lines (default: when writing to stderr and it is a terminal). */
  readonly colorize?: boolean;
  /** Where lines go (default 2, stderr: stdout is the CLI's live display). Written synchronously. */
  readonly destination?: LogDestination;
  /** Fields on every line, besides `pid` and `hostname` (e.g. `{ service: 'orders' }`); redacted like the others. */
  readonly base?: Fields;
}

/** The `Logger` seam over pino, with `debug` and the pino instance itself (for `child` loggers). */
export interface PinoLogger extends Logger {
  debug(message: string, fields?: Fields): void;
  readonly pino: Pino;
}

/**
 * Structured logs through pino: one JSON object a line (`level`, `time`, `msg`, `pid`, `hostname`
 * and the fields — `route`, `step`, `messageId` as the runtime passes them), or pino-pretty's
 * human lines on a terminal. Lines are written synchronously, so none is lost when the process exits.
 *
 * Secrets are never written, whatever the caller passes (the message, fields, `base`, bindings of
 * `pino.child`): a field named like a secret (`password`, `passphrase`, `secret`, `token`,
 * `authorization`, `cookie`, `apiKey`, `privateKey`…, any case, at any depth up to 8) becomes
 * `[redacted]`, and in every string holding `://` each URL's password and secret query parameters
 * become `***` (the `redactUrl` policy, line by line). An `Error` anywhere in the fields is written
 * as pino's `{ type, message, stack, …own properties }`, redacted the same way.
 * Throws `RangeError` if `level` is unset and `LOG_LEVEL` is not a level.
 * @example
 * const logger = createPinoLogger(); // JSON on stderr, pretty on a terminal, level from LOG_LEVEL
 * const app = createIntegration({ routes, logger });
 */
export function createPinoLogger({ level = parseLogLevel(process.env.LOG_LEVEL), pretty = process.stderr.isTTY === true, colorize, destination = 2, base = {} }: PinoLoggerOptions = {}): PinoLogger {
  const sink = toStream(destination);
  const stream = pretty ? prettyStream(sink, colorize ?? (destination === 2 && process.stderr.isTTY === true)) : sink;
  const instance = pino(
    {
      level,
      base: { pid: process.pid, hostname: hostname(), ...base },
      errorKey: 'error',
      // `formatters.log` below has already turned every Error into pino's serialised form
      serializers: { err: keep, error: keep, msg: (message: unknown) => (typeof message === 'string' ? redactText(message) : message) },
      formatters: { log: redactFields, bindings: redactFields },
    },
    stream,
  );
  redactBindingsOf(instance);
  const at =
    (method: 'debug' | 'info' | 'warn' | 'error') =>
    (message: string, fields?: Fields): void => {
      if (fields === undefined) instance[method](message);
      else instance[method](fields, message);
    };
  return { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error'), pino: instance };
}

const CENSOR = '[redacted]';
const MAX_DEPTH = 8;

/** Field names whose value is a secret, lower case without `-` and `_`. */
const SECRET_NAMES: ReadonlySet<string> = new Set([
  'password',
  'passwd',
  'pwd',
  'passphrase',
  'secret',
  'clientsecret',
  'token',
  'accesstoken',
  'refreshtoken',
  'idtoken',
  'authorization',
  'proxyauthorization',
  'cookie',
  'setcookie',
  'apikey',
  'xapikey',
  'privatekey',
  'credentials',
]);

function isSecretName(name: string): boolean {
  return SECRET_NAMES.has(name.toLowerCase().replace(/[-_]/g, ''));
}

const keep = (value: unknown): unknown => value;

const SCHEME = /[a-z][a-z0-9+.-]*:\/\//i;

/**
 * `text` with each URL's password and secret parameters hidden: from the first `scheme://` of a
 * line to its end goes through `redactUrl`. Line by line, because a stack trace's later frames
 * (`file:///…/node_modules/@scope/…`) would otherwise count as one URL's user info; a URL's user
 * info cannot hold a line break. Texts without `://` are returned as they are, unscanned.
 */
function redactText(text: string): string {
  if (!text.includes('://')) return text;
  return text.includes('\n') ? text.split('\n').map(redactLine).join('\n') : redactLine(text);
}

function redactLine(line: string): string {
  const scheme = SCHEME.exec(line);
  return scheme === null ? line : line.slice(0, scheme.index) + redactUrl(line.slice(scheme.index));
}

function redactFields(fields: Record<string, unknown>): Record<string, unknown> {
  return redactObject(fields, 0);
}

function redactObject(object: object, depth: number): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(object)) out[key] = value !== undefined && isSecretName(key) ? CENSOR : redactValue(value, depth + 1);
  return out;
}

/** A copy of `value` with secrets hidden; the caller's objects are never changed. */
function redactValue(value: unknown, depth: number): unknown {
  if (typeof value === 'string') return redactText(value);
  if (typeof value !== 'object' || value === null || ArrayBuffer.isView(value) || value instanceof Map || value instanceof Set) return value;
  if (depth >= MAX_DEPTH) return '[too deep]';
  if (value instanceof Error) return redactObject(pino.stdSerializers.err(value), depth);
  if (Array.isArray(value)) return value.map((item: unknown) => redactValue(item, depth + 1));
  // what JSON would write instead (a URL's href, a Date's ISO text), redacted like any value
  if (typeof (value as { toJSON?: unknown }).toJSON === 'function') return redactValue((value as { toJSON(): unknown }).toJSON(), depth + 1);
  return redactObject(value, depth);
}

/**
 * pino passes a child's bindings through the parent's serializers but not its `formatters.bindings`:
 * `child` and `setBindings` redact them on the way in (children inherit these, so grandchildren too).
 */
function redactBindingsOf(instance: Pino): void {
  const { child, setBindings } = instance;
  Object.defineProperties(instance, {
    child: {
      configurable: true,
      writable: true,
      value: function (this: Pino, bindings: Bindings, options?: ChildLoggerOptions<never>): Pino {
        return Reflect.apply(child, this, [redactFields(bindings), options]) as Pino;
      },
    },
    setBindings: {
      configurable: true,
      writable: true,
      value: function (this: Pino, bindings: Bindings): void {
        Reflect.apply(setBindings, this, [redactFields(bindings)]);
      },
    },
  });
}

function toStream(destination: LogDestination): DestinationStream {
  if (typeof destination === 'number') return pino.destination({ dest: destination, sync: true });
  return { write: (chunk: string) => void destination.write(chunk) };
}

/**
 * pino-pretty's formatter called in the same tick as the log call (not its stream or worker
 * transport, which buffer): a line is on `sink` when the log method returns.
 */
function prettyStream(sink: DestinationStream, colorize: boolean): DestinationStream {
  const format = prettyFactory({ colorize, ignore: 'pid,hostname', translateTime: 'SYS:HH:MM:ss.l', errorLikeObjectKeys: ['error', 'err'] });
  return {
    write: (line: string) => {
      const text = format(line);
      if (text !== undefined) sink.write(text);
    },
  };
}
