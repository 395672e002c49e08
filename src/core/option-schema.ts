import { createRequire } from 'node:module';
import type { Ajv2020, ErrorObject, ValidateFunction } from 'ajv/dist/2020.js';
import { EndpointError, InterchangeError } from './errors.ts';
import { redactText, redactUrl } from './redact.ts';

/** A JSON Schema (draft 2020-12) of options: an object whose `properties` are the options. */
export type OptionsSchema = Readonly<Record<string, unknown>>;

/** What is validated: an endpoint (its URI is named, secrets masked) or a description (`'MQTT options'`). */
export type OptionsSubject = string | { readonly uri: string };

/** Transport or adapter options that break their schema, when the adapter names no error of its own. */
export class InvalidOptionsError extends InterchangeError {
  override readonly name = 'InvalidOptionsError';
  constructor(message: string) {
    super('INVALID_OPTIONS', message, { permanent: true });
  }
}

export interface DefineOptionsSettings {
  /**
   * Option names whose values never appear in an error text, at any depth (`password` matches
   * `password` and `auth.password`). Their values are shown as `***`, and any of their string values
   * quoted elsewhere is cut out too.
   */
  readonly secrets?: readonly string[];
  /**
   * The error to throw with the full text. Default: `EndpointError` for an endpoint,
   * `InvalidOptionsError` for anything else.
   */
  readonly error?: (message: string, subject: OptionsSubject) => Error;
}

export interface OptionValidator<T> {
  /** The schema the options are declared by: the one source of validation and docs. */
  readonly schema: OptionsSchema;
  /**
   * Returns `value` typed, or throws the settings' error naming `subject` and every problem:
   * `invalid options in 'memory:orders?tpye=pubsub': unknown option 'tpye' (did you mean 'type'?)`,
   * `invalid MQTT options: tls.rejectUnauthorized must be boolean, got 'no'`. Secrets are
   * masked, in the URI too. Properties set to `undefined` count as absent. The value is not changed
   * (no defaults applied). A frozen value that passed once (an endpoint's options) is not checked again.
   */
  validate(value: unknown, subject: OptionsSubject): T;
  /** The problems, one text each (without the subject); empty when the value is valid. */
  problems(value: unknown): string[];
}

const require = createRequire(import.meta.url);
let ajv: Ajv2020 | undefined;

/** One ajv for every option schema, loaded on first use (so that a CLI's `--help` does not pay for it). */
function compile(schema: OptionsSchema): ValidateFunction {
  if (ajv === undefined) {
    const { Ajv2020: Ajv } = require('ajv/dist/2020.js') as { Ajv2020: typeof Ajv2020 };
    // strict about the schemas (unknown keywords are mistakes), lenient about type annotations they leave implicit
    ajv = new Ajv({ allErrors: true, verbose: true, strict: true, strictTypes: false, strictTuples: false, strictRequired: false, useDefaults: false });
  }
  return ajv.compile(schema);
}

/**
 * Declares options by their JSON Schema (draft 2020-12) and gives the one validator every adapter and
 * the in-process channel use: compiled once, on first use; error texts that name the option (dotted
 * path), what was expected, what was given (masked when secret), and the endpoint URI redacted.
 * @example
 * const fileOptions = defineOptions<{ readonly dir: string; readonly token?: string }>(
 *   { type: 'object', additionalProperties: false, required: ['dir'], properties: { dir: { type: 'string' }, token: { type: 'string' } } },
 *   { secrets: ['token'] },
 * );
 * fileOptions.validate(endpoint.options, endpoint); // EndpointError: invalid options in 'file:x?dri=a': unknown option 'dri' (did you mean 'dir'?)
 */
export function defineOptions<T = Readonly<Record<string, string>>>(schema: OptionsSchema, { secrets = [], error = defaultError }: DefineOptionsSettings = {}): OptionValidator<T> {
  let validator: ValidateFunction | undefined;
  const passed = new WeakSet<object>();
  const secretNames = new Set(secrets);

  const problems = (value: unknown): string[] => {
    validator ??= compile(schema);
    if (validator(withoutUndefined(value))) return [];
    return describeErrors(validator.errors ?? [], secretNames);
  };

  return {
    schema,
    problems,
    validate(value: unknown, subject: OptionsSubject): T {
      const frozen = typeof value === 'object' && value !== null && Object.isFrozen(value);
      if (frozen && passed.has(value)) return value as T;
      const found = problems(value);
      if (found.length > 0) {
        const text = `${subjectText(subject)}: ${found.join('; ')}`;
        throw error(redactText(text, secretValues(value, secretNames)), subject);
      }
      if (frozen) passed.add(value);
      return value as T;
    },
  };
}

/**
 * An endpoint option holding a positive integer (query options are strings): at most `digits` digits.
 * Its error reads `must be a positive integer`.
 * @example properties: { capacity: positiveIntegerOption('messages a queue holds (default 1000)') }
 */
export function positiveIntegerOption(description: string, digits?: number): { readonly type: 'string'; readonly pattern: string; readonly description: string } {
  return { type: 'string', pattern: digits === undefined ? POSITIVE_INTEGER : `^[1-9][0-9]{0,${digits - 1}}$`, description };
}

const POSITIVE_INTEGER = '^[1-9][0-9]*$';
const BOUNDED_POSITIVE_INTEGER = /^\^\[1-9\]\[0-9\]\{0,(\d+)\}\$$/;

function defaultError(message: string, subject: OptionsSubject): Error {
  return typeof subject === 'string' ? new InvalidOptionsError(message) : new EndpointError(message);
}

function subjectText(subject: OptionsSubject): string {
  return typeof subject === 'string' ? `invalid ${subject}` : `invalid options in '${redactUrl(subject.uri)}'`;
}

/** Keywords of a branch not taken: said only when nothing deeper says more. */
const BRANCH_KEYWORDS = new Set(['oneOf', 'anyOf', 'if', 'not', 'const', 'type', 'enum']);

function describeErrors(errors: readonly ErrorObject[], secrets: ReadonlySet<string>): string[] {
  const kept = errors.filter((error) => !(BRANCH_KEYWORDS.has(error.keyword) && errors.some((other) => other.instancePath.startsWith(`${error.instancePath}/`))));
  return [...new Set(kept.map((error) => describeError(error, secrets)))];
}

function describeError(error: ErrorObject, secrets: ReadonlySet<string>): string {
  const segments = pointerSegments(error.instancePath);
  const at = segments.length === 0 ? '' : `${dotted(segments)} `;
  const params = error.params as Record<string, unknown>;
  switch (error.keyword) {
    case 'additionalProperties': {
      const name = String(params.additionalProperty);
      const known = Object.keys((error.parentSchema as { properties?: object } | undefined)?.properties ?? {});
      return `unknown option '${dotted([...segments, name])}' (${hint(name, known)})`;
    }
    case 'required':
      return `${at}must have option '${String(params.missingProperty)}'`.trimStart();
    case 'enum':
      return `${at}must be one of ${(params.allowedValues as unknown[]).map(String).join(', ')}${given(error.data, segments, secrets)}`;
    case 'pattern': {
      const pattern = String(params.pattern);
      const bounded = BOUNDED_POSITIVE_INTEGER.exec(pattern);
      const expected = pattern === POSITIVE_INTEGER ? 'must be a positive integer' : bounded !== null ? `must be a positive integer of at most ${Number(bounded[1]) + 1} digits` : (error.message ?? 'is invalid');
      return `${at}${expected}${given(error.data, segments, secrets)}`;
    }
    default:
      return `${at}${error.message ?? 'is invalid'}${given(error.data, segments, secrets)}`;
  }
}

/** `, got 'x'` for a scalar value (a secret as `***`, a URL's password redacted, long text cut). */
function given(data: unknown, segments: readonly string[], secrets: ReadonlySet<string>): string {
  if (data === null || (typeof data !== 'string' && typeof data !== 'number' && typeof data !== 'boolean')) return '';
  if (segments.some((segment) => secrets.has(segment))) return ', got ***';
  if (typeof data !== 'string') return `, got ${String(data)}`;
  // eslint-disable-next-line no-control-regex
  const shown = redactUrl(data).replace(/[\u0000-\u001f\u007f]/g, ' ');
  return `, got '${shown.length > 64 ? `${shown.slice(0, 64)}…` : shown}'`;
}

/** `did you mean 'type'?` for a near miss, else the known options. */
function hint(name: string, known: readonly string[]): string {
  const near = known.find((candidate) => editDistance(name.toLowerCase(), candidate.toLowerCase()) <= Math.min(2, Math.floor(candidate.length / 3)));
  if (near !== undefined) return `did you mean '${near}'?`;
  return known.length === 0 ? 'none are accepted here' : `known: ${[...known].sort().join(', ')}`;
}

function editDistance(a: string, b: string): number {
  if (Math.abs(a.length - b.length) > 2) return 3;
  let previous = Array.from({ length: b.length + 1 }, (_, index) => index);
  for (let i = 1; i <= a.length; i += 1) {
    const current = [i];
    for (let j = 1; j <= b.length; j += 1) {
      const substitution = (previous[j - 1] as number) + (a[i - 1] === b[j - 1] ? 0 : 1);
      // a swap of two neighbours (tpye → type) counts as one edit
      const swapped = i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1] ? (previous[j - 2] as number) : Infinity;
      current.push(Math.min((previous[j] as number) + 1, (current[j - 1] as number) + 1, substitution, swapped));
    }
    previous = current;
  }
  return previous[b.length] as number;
}

function pointerSegments(pointer: string): string[] {
  return pointer === '' ? [] : pointer.slice(1).split('/').map((segment) => segment.replaceAll('~1', '/').replaceAll('~0', '~'));
}

/** `tls.rejectUnauthorized`, `topology.queues[0].name`. */
function dotted(segments: readonly string[]): string {
  return segments.reduce((path, segment) => (/^\d+$/.test(segment) ? `${path}[${segment}]` : path === '' ? segment : `${path}.${segment}`), '');
}

/** A copy of plain objects and arrays without `undefined` properties (absent, as in JSON); other values as they are. */
function withoutUndefined(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withoutUndefined);
  if (!isPlainObject(value)) return value;
  const copy: Record<string, unknown> = {};
  for (const [name, inner] of Object.entries(value)) if (inner !== undefined) copy[name] = withoutUndefined(inner);
  return copy;
}

/** The string values held under secret names, at any depth (cut out of the final text as well). */
function secretValues(value: unknown, secrets: ReadonlySet<string>, found: string[] = []): string[] {
  if (secrets.size === 0) return found;
  if (Array.isArray(value)) for (const inner of value) secretValues(inner, secrets, found);
  else if (isPlainObject(value)) {
    for (const [name, inner] of Object.entries(value)) {
      if (secrets.has(name)) found.push(...stringsIn(inner));
      else secretValues(inner, secrets, found);
    }
  }
  return found;
}

function stringsIn(value: unknown): string[] {
  if (typeof value === 'string') return [value];
  if (Array.isArray(value)) return value.flatMap(stringsIn);
  return isPlainObject(value) ? Object.values(value).flatMap(stringsIn) : [];
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null) return false;
  const prototype = Object.getPrototypeOf(value) as unknown;
  return prototype === Object.prototype || prototype === null;
}
