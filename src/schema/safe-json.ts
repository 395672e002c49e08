import { PayloadParseError, PayloadTooDeepError, PayloadTooLargeError } from './errors.ts';

/** Limits applied to untrusted payloads before (and while) they are parsed. */
export interface PayloadLimits {
  /** Largest payload accepted, in bytes (UTF-8) — checked before parsing. Default 1 MiB. */
  readonly maxBytes?: number;
  /** Deepest nesting of objects and arrays accepted — checked before parsing. Default 64. */
  readonly maxDepth?: number;
}

export const DEFAULT_PAYLOAD_LIMITS: Required<PayloadLimits> = Object.freeze({ maxBytes: 1024 * 1024, maxDepth: 64 });

const OPEN_BRACE = 0x7b;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACE = 0x7d;
const CLOSE_BRACKET = 0x5d;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;

/**
 * Parses untrusted JSON: size checked first (`PayloadTooLargeError`), nesting depth by a linear scan
 * before `JSON.parse` (`PayloadTooDeepError`, so a depth bomb never reaches the parser's recursion),
 * then parsed. Invalid JSON → `PayloadParseError`; so is a `__proto__` or `constructor` key at any
 * level (`FORBIDDEN_KEYS`: a body merged or spread later could reach `Object.prototype`), refused
 * rather than dropped, so that the contract never judges a body other than the one sent. Never
 * throws anything else.
 * @example parseJsonSafely(buffer, { maxBytes: 64 * 1024 })
 */
export function parseJsonSafely(payload: string | Uint8Array, { maxBytes = DEFAULT_PAYLOAD_LIMITS.maxBytes, maxDepth = DEFAULT_PAYLOAD_LIMITS.maxDepth }: PayloadLimits = {}): unknown {
  const size = typeof payload === 'string' ? Buffer.byteLength(payload, 'utf8') : payload.byteLength;
  if (size > maxBytes) throw new PayloadTooLargeError(size, maxBytes);
  const text = typeof payload === 'string' ? payload : Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength).toString('utf8');
  if (textDepth(text) > maxDepth) throw new PayloadTooDeepError(maxDepth);
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (cause) {
    throw new PayloadParseError(`payload is not JSON: ${(cause as Error).message}`, { cause });
  }
  // A key can only spell a forbidden name literally or through \u escapes: most payloads skip the walk.
  if (FORBIDDEN_KEYS.some((key) => text.includes(key)) || text.includes('\\u')) assertAllowedKeys(parsed, maxDepth);
  return parsed;
}

/** Keys no body may carry, at any level: through them a merge or spread reaches a prototype. */
export const FORBIDDEN_KEYS: readonly string[] = Object.freeze(['__proto__', 'constructor']);

/**
 * Whether a value nests no deeper than `maxDepth` and holds none of `FORBIDDEN_KEYS`: one walk, no
 * allocation — the per-message check of a body that is already an object. `true` guarantees that
 * neither `assertDepth` nor `assertAllowedKeys` throws; `false` means one of them may (an inherited
 * forbidden key counts here too): run them for the precise error.
 * @example if (!withinLimits(body, maxDepth)) { assertDepth(body, maxDepth); assertAllowedKeys(body, maxDepth); }
 */
export function withinLimits(value: unknown, maxDepth: number = DEFAULT_PAYLOAD_LIMITS.maxDepth): boolean {
  if (value === null || typeof value !== 'object') return true;
  if (maxDepth === 0) return false;
  if (Array.isArray(value)) {
    for (let index = 0; index < value.length; index += 1) if (!withinLimits(value[index], maxDepth - 1)) return false;
    return true;
  }
  const record = value as Record<string, unknown>;
  for (const key in record) {
    if (key === '__proto__' || key === 'constructor') return false; // FORBIDDEN_KEYS, spelled out: no lookup per key
    const child = record[key];
    if (child !== null && typeof child === 'object' && !withinLimits(child, maxDepth - 1)) return false;
  }
  return true;
}

/**
 * Throws `PayloadParseError` ("key '__proto__' at /a/b is not allowed", the pointer of the object
 * holding it) if a value holds one of `FORBIDDEN_KEYS` as an own key. Looks no deeper than
 * `maxDepth` levels (depth is `assertDepth`'s to refuse), so it cannot overflow the stack.
 */
export function assertAllowedKeys(value: unknown, maxDepth: number = DEFAULT_PAYLOAD_LIMITS.maxDepth): void {
  const found = forbiddenKeyPath(value, maxDepth);
  if (found === undefined) return;
  const [key, ...holder] = found;
  const pointer = holder.reverse().map((segment) => `/${segment.replaceAll('~', '~0').replaceAll('/', '~1')}`).join('');
  throw new PayloadParseError(`key '${key ?? ''}' at ${pointer || '/'} is not allowed`);
}

/** The forbidden key found, then the keys leading to it, innermost first; undefined if none. */
function forbiddenKeyPath(value: unknown, remaining: number): string[] | undefined {
  if (value === null || typeof value !== 'object' || remaining === 0 || ArrayBuffer.isView(value)) return undefined;
  if (Array.isArray(value)) {
    for (let index = 0; index < value.length; index += 1) {
      const found = forbiddenKeyPath(value[index], remaining - 1);
      if (found !== undefined) return [...found, String(index)];
    }
    return undefined;
  }
  const keys = Object.keys(value);
  const forbidden = keys.find((key) => FORBIDDEN_KEYS.includes(key));
  if (forbidden !== undefined) return [forbidden];
  const record = value as Record<string, unknown>;
  for (const key of keys) {
    const found = forbiddenKeyPath(record[key], remaining - 1);
    if (found !== undefined) return [...found, key];
  }
  return undefined;
}

/** The deepest nesting of `{`/`[` in JSON text, strings skipped. Linear, no allocation. */
export function textDepth(text: string): number {
  let depth = 0;
  let deepest = 0;
  let inString = false;
  for (let index = 0; index < text.length; index += 1) {
    const code = text.charCodeAt(index);
    if (inString) {
      if (code === BACKSLASH) index += 1;
      else if (code === QUOTE) inString = false;
    } else if (code === QUOTE) inString = true;
    else if (code === OPEN_BRACE || code === OPEN_BRACKET) {
      depth += 1;
      if (depth > deepest) deepest = depth;
    } else if (code === CLOSE_BRACE || code === CLOSE_BRACKET) depth -= 1;
  }
  return deepest;
}

/**
 * Throws `PayloadTooDeepError` if an already-parsed value nests objects/arrays deeper than
 * `maxDepth`. Recursion is bounded by `maxDepth` (no stack to overflow); no allocation.
 */
export function assertDepth(value: unknown, maxDepth: number = DEFAULT_PAYLOAD_LIMITS.maxDepth): void {
  if (exceeds(value, maxDepth)) throw new PayloadTooDeepError(maxDepth);
}

function exceeds(value: unknown, remaining: number): boolean {
  if (value === null || typeof value !== 'object') return false;
  if (remaining === 0) return true;
  if (Array.isArray(value)) {
    for (let index = 0; index < value.length; index += 1) if (exceeds(value[index], remaining - 1)) return true;
    return false;
  }
  // for…in without an own-property check: inherited enumerable keys could only make it stricter.
  const record = value as Record<string, unknown>;
  for (const key in record) {
    const child = record[key];
    if (child !== null && typeof child === 'object' && exceeds(child, remaining - 1)) return true;
  }
  return false;
}
