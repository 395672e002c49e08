import { InterchangeError } from '../core/errors.ts';

/**
 * A value has no canonical JSON form: a cycle, a `BigInt`, a non-finite number, a function or symbol
 * where a value is expected, nesting deeper than the limit. Permanent: the same value fails the same way.
 */
export class CanonicalJsonError extends InterchangeError {
  override readonly name = 'CanonicalJsonError';
  constructor(message: string) {
    super('CANONICAL_JSON', message, { permanent: true });
  }
}

/** Deepest nesting `canonicalJson` accepts (the same default as the payload parser's). */
const MAX_DEPTH = 64;
/** Member names a safe JSON parser refuses (`parseJsonSafely`'s `FORBIDDEN_KEYS`): signing one would make a message no verifier reading text accepts. */
const FORBIDDEN_NAMES: ReadonlySet<string> = new Set(['__proto__', 'constructor']);

/**
 * Whether `text` is well-formed UTF-16 (no lone surrogate): a lone surrogate has no UTF-8 form — it
 * is written as U+FFFD, so two different strings would give one signing input. Node 20's
 * `String.prototype.isWellFormed` (ES2024, past this project's `lib`).
 */
export function isWellFormedText(text: string): boolean {
  return (text as unknown as { isWellFormed(): boolean }).isWellFormed();
}

/**
 * The JSON Canonicalization Scheme (RFC 8785) form of a JSON value: no whitespace, object members
 * sorted by their names' UTF-16 code units, numbers and strings as ECMAScript's `JSON.stringify`
 * writes them (RFC 8785 §3.2.2 defines them so). So a body parsed and re-serialised by a broker hop,
 * with other key order or spacing, has the same canonical form as the one signed.
 *
 * Values are taken as `JSON.stringify` (and so every transport) would send them: `toJSON` is called
 * (a `Date` becomes its ISO string), an `undefined`/function member of an object is left out and one
 * in an array is `null`. Refused (`CanonicalJsonError`): non-finite numbers (JSON has none; a
 * transport would send `null`, which is not what was signed), `BigInt`, cycles, nesting beyond 64,
 * strings and names with a lone surrogate (they have no UTF-8 form: U+FFFD would be signed for them),
 * a member named `__proto__` or `constructor` (a safe parser refuses them: the message could never be
 * verified as text), and objects that are not plain — a `Map`, `Set`, `ArrayBuffer` or class instance
 * (`JSON.stringify` would send `{}` or lose what its prototype holds: data silently not signed nor sent);
 * give them a `toJSON` to sign them.
 * No library is used: the npm JCS packages are unmaintained, and the scheme is this page of code over
 * `JSON.stringify`'s own string and number forms.
 * @example canonicalJson({ b: 1, a: [true, null] }) // '{"a":[true,null],"b":1}'
 */
export function canonicalJson(value: unknown): string {
  const text = write(value, 0, []);
  if (text === undefined) throw new CanonicalJsonError(`a ${typeof value} has no JSON form`);
  return text;
}

/** The canonical text of `value`, or `undefined` where `JSON.stringify` would leave it out. */
function write(value: unknown, depth: number, path: object[]): string | undefined {
  switch (typeof value) {
    case 'string':
      if (!isWellFormedText(value)) throw new CanonicalJsonError('a string with a lone surrogate has no UTF-8 form');
      return JSON.stringify(value);
    case 'number':
      if (!Number.isFinite(value)) throw new CanonicalJsonError(`the number ${String(value)} has no JSON form`);
      return JSON.stringify(value); // -0 → "0", as RFC 8785 says
    case 'boolean':
      return value ? 'true' : 'false';
    case 'bigint':
      throw new CanonicalJsonError('a BigInt has no JSON form');
    case 'undefined':
    case 'function':
    case 'symbol':
      return undefined;
    default:
      break;
  }
  if (value === null) return 'null';
  const object = value as { toJSON?: unknown };
  if (typeof object.toJSON === 'function') return write((object.toJSON as () => unknown)(), depth, path);
  if (depth >= MAX_DEPTH) throw new CanonicalJsonError(`nesting deeper than ${MAX_DEPTH}`);
  if (path.includes(object)) throw new CanonicalJsonError('a cycle has no JSON form');
  path.push(object);
  let text: string;
  if (Array.isArray(object)) {
    text = '[';
    for (let index = 0; index < object.length; index += 1) text += `${index === 0 ? '' : ','}${write(object[index], depth + 1, path) ?? 'null'}`;
    text += ']';
  } else if (ArrayBuffer.isView(object)) {
    path.pop();
    throw new CanonicalJsonError('bytes inside a JSON body have no canonical JSON form');
  } else {
    const prototype: unknown = Object.getPrototypeOf(object);
    if (prototype !== Object.prototype && prototype !== null) {
      path.pop();
      throw new CanonicalJsonError(`a ${(object as object).constructor?.name ?? 'non-plain object'} is not a plain object: it has no faithful JSON form (give it a toJSON)`);
    }
    // Array.prototype.sort without a comparator orders by UTF-16 code units: RFC 8785 §3.2.3
    const names = Object.keys(object).sort();
    text = '{';
    for (const name of names) {
      if (FORBIDDEN_NAMES.has(name) || !isWellFormedText(name)) {
        path.pop();
        throw new CanonicalJsonError(FORBIDDEN_NAMES.has(name) ? `a member named '${name}' is not allowed (safe JSON parsers refuse it)` : 'a member name with a lone surrogate has no UTF-8 form');
      }
      const member = write((object as Record<string, unknown>)[name], depth + 1, path);
      if (member !== undefined) text += `${text.length === 1 ? '' : ','}${JSON.stringify(name)}:${member}`;
    }
    text += '}';
  }
  path.pop();
  return text;
}
