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
 * then parsed with `__proto__` and `constructor` keys removed at every level, so a body merged or
 * spread later can never reach `Object.prototype`. Invalid JSON → `PayloadParseError`. Never throws
 * anything else.
 * @example parseJsonSafely(buffer, { maxBytes: 64 * 1024 })
 */
export function parseJsonSafely(payload: string | Uint8Array, { maxBytes = DEFAULT_PAYLOAD_LIMITS.maxBytes, maxDepth = DEFAULT_PAYLOAD_LIMITS.maxDepth }: PayloadLimits = {}): unknown {
  const size = typeof payload === 'string' ? Buffer.byteLength(payload, 'utf8') : payload.byteLength;
  if (size > maxBytes) throw new PayloadTooLargeError(size, maxBytes);
  const text = typeof payload === 'string' ? payload : Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength).toString('utf8');
  if (textDepth(text) > maxDepth) throw new PayloadTooDeepError(maxDepth);
  try {
    return JSON.parse(text, dropDangerousKeys);
  } catch (cause) {
    throw new PayloadParseError(`payload is not JSON: ${(cause as Error).message}`, { cause });
  }
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

function dropDangerousKeys(this: unknown, key: string, value: unknown): unknown {
  return key === '__proto__' || key === 'constructor' ? undefined : value;
}
