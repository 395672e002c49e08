import { indexedClassification } from './classification-index.ts';
import { REDACTED_CLASSES, type Classification, type ClassifiedField } from './classification.ts';

/** The marker a redacted value becomes: `[personal]`, `[secret]`, `[internal]`. */
export const redactionMarker = (classification: Classification): string => `[${classification}]`;

/** Text and byte bodies larger than this are not parsed for redaction (they are shown as they are only where the body itself is shown: never in headers or logs). */
const MAX_PARSED_BYTES = 4 * 1024 * 1024;

/** One place a pointer matched in a body: the reference tokens to it, and the value there. */
export interface PointerMatch {
  readonly tokens: readonly string[];
  readonly value: unknown;
}

/**
 * Every place `pointer` (with `*` for any array item or object member) matches in `body`, own
 * properties only. `''` matches the body itself.
 * @example matches({ lines: [{ iban: 'DE…' }] }, '/lines/*\/iban') // [{ tokens: ['lines', '0', 'iban'], value: 'DE…' }]
 */
export function matches(body: unknown, pointer: string): PointerMatch[] {
  const tokens = pointer === '' ? [] : pointer.slice(1).split('/').map((token) => token.replace(/~1/g, '/').replace(/~0/g, '~'));
  const out: PointerMatch[] = [];
  const visit = (node: unknown, depth: number, path: string[]): void => {
    if (depth === tokens.length) {
      out.push({ tokens: path, value: node });
      return;
    }
    if (typeof node !== 'object' || node === null || node instanceof Uint8Array) return;
    const token = tokens[depth] as string;
    if (token === '*') {
      for (const key of Object.keys(node)) visit((node as Record<string, unknown>)[key], depth + 1, [...path, key]);
    } else if (Object.hasOwn(node, token)) {
      visit((node as Record<string, unknown>)[token], depth + 1, [...path, token]);
    }
  };
  visit(body, 0, []);
  return out;
}

/** The concrete JSON pointers (no `*`) a classified pointer matches in `body`: what `encryptBody`'s `fields` take. */
export function concretePointers(body: unknown, pointer: string): string[] {
  return matches(body, pointer).map(({ tokens }) => (tokens.length === 0 ? '' : `/${tokens.map((token) => token.replace(/~/g, '~0').replace(/\//g, '~1')).join('/')}`));
}

/**
 * A copy of `body` with the value of every field of `fields` whose class is in `classes` (default:
 * `personal` and `secret`) replaced by its marker (`"[personal]"`); the input is never mutated
 * (copy on write along each path), and the same body comes back when there is nothing to redact.
 * A JSON text or JSON bytes body is parsed and returned as the same kind (text, or a `Buffer`);
 * a body that is not JSON comes back as it is.
 * @example redactClassified({ name: 'Ada', email: 'ada@example.org' }, [{ pointer: '/email', classification: 'personal' }]) // { name: 'Ada', email: '[personal]' }
 */
export function redactClassified<T>(body: T, fields: readonly ClassifiedField[], classes: readonly Classification[] = REDACTED_CLASSES): T {
  const chosen = fields.filter((field) => classes.includes(field.classification));
  if (chosen.length === 0) return body;
  if (typeof body === 'string' || body instanceof Uint8Array) {
    const parsed = parseJson(body);
    if (parsed === undefined) return body;
    const redacted = redactValue(parsed.value, chosen);
    if (redacted === parsed.value) return body;
    const text = JSON.stringify(redacted);
    return (typeof body === 'string' ? text : Buffer.from(text, 'utf8')) as T;
  }
  return redactValue(body, chosen) as T;
}

function redactValue(body: unknown, fields: readonly ClassifiedField[]): unknown {
  let out = body;
  for (const field of fields) {
    for (const { tokens, value } of matches(out, field.pointer)) {
      if (value === undefined) continue;
      out = replaceAt(out, tokens, 0, redactionMarker(field.classification));
    }
  }
  return out;
}

function replaceAt(node: unknown, tokens: readonly string[], depth: number, value: unknown): unknown {
  if (depth === tokens.length) return value;
  const token = tokens[depth] as string;
  const child = replaceAt((node as Record<string, unknown>)[token], tokens, depth + 1, value);
  if (Array.isArray(node)) {
    const copy = [...(node as unknown[])];
    copy[Number(token)] = child;
    return copy;
  }
  return { ...(node as Record<string, unknown>), [token]: child };
}

/**
 * The clear values of the classified fields of `body` whose class is in `classes` (default `personal`
 * and `secret`), as text: every string, number and boolean at or under each field (a classified
 * object gives all its leaves). A JSON text or bytes body is parsed first. What `redactText` scrubs.
 */
export function classifiedValues(body: unknown, fields: readonly ClassifiedField[], classes: readonly Classification[] = REDACTED_CLASSES): string[] {
  const chosen = fields.filter((field) => classes.includes(field.classification));
  if (chosen.length === 0) return [];
  let value = body;
  if (typeof body === 'string' || body instanceof Uint8Array) {
    const parsed = parseJson(body);
    if (parsed === undefined) return [];
    value = parsed.value;
  }
  const out = new Set<string>();
  const leaves = (node: unknown, depth: number): void => {
    if (typeof node === 'string') {
      if (node !== '') out.add(node);
    } else if (typeof node === 'number' || typeof node === 'boolean' || typeof node === 'bigint') {
      out.add(String(node));
    } else if (typeof node === 'object' && node !== null && depth < 64) {
      for (const child of Object.values(node)) leaves(child, depth + 1);
    }
  };
  for (const field of chosen) for (const match of matches(value, field.pointer)) leaves(match.value, 0);
  // longest first: a value containing another is replaced whole
  return [...out].sort((a, b) => b.length - a.length);
}

/**
 * `text` with every occurrence of `values` replaced by `marker` (default `[redacted]`): values of
 * three characters or more wherever they occur (also JSON-escaped, as an error quoting a JSON
 * fragment shows them), shorter ones (an age, a flag) as whole words only, so that scrubbing `42` does not
 * garble `1420`. Over-redacts rather than under-redacts.
 * @example redactText('no customer ada@example.org', ['ada@example.org']) // 'no customer [redacted]'
 */
export function redactText(text: string, values: readonly string[], marker = '[redacted]'): string {
  let out = text;
  for (const value of values) {
    if (value.length >= 3) {
      if (out.includes(value)) out = out.split(value).join(marker);
      const escaped = JSON.stringify(value).slice(1, -1);
      if (escaped !== value && out.includes(escaped)) out = out.split(escaped).join(marker);
    } else {
      out = out.replace(new RegExp(`(?<![\\p{L}\\p{N}_])${escapeRegExp(value)}(?![\\p{L}\\p{N}_])`, 'gu'), marker);
    }
  }
  return out;
}

/**
 * Scrubs `values` from an error in place — its `message` and `stack`, and those of its `cause`s (four
 * deep): so that every place the error's text goes afterwards (dead-letter headers, the route's log
 * line, trace exception events, the console, a transport's rejection reason) carries no classified
 * value. Returns whether anything was scrubbed. Errors whose properties cannot be written are left as they are.
 */
export function redactFailure(error: unknown, values: readonly string[]): boolean {
  if (values.length === 0) return false;
  let changed = false;
  let current: unknown = error;
  for (let depth = 0; depth < 5 && current instanceof Error; depth += 1) {
    const scrubbed = redactText(current.message, values);
    if (scrubbed !== current.message) {
      changed = trySet(current, 'message', scrubbed) || changed;
    }
    if (typeof current.stack === 'string') {
      const stack = redactText(current.stack, values);
      if (stack !== current.stack) changed = trySet(current, 'stack', stack) || changed;
    }
    current = current.cause;
  }
  return changed;
}

/**
 * The clear `personal`/`secret` values of a message, found by the contract its `schema` header names
 * (among those the registries of this process classified); empty — one `Map` miss — for a message
 * without a classified contract.
 */
export function classifiedValuesOf(message: { readonly headers: { readonly schema?: unknown }; readonly body: unknown }, extraFields: readonly ClassifiedField[] = []): string[] {
  const fields = indexedClassification(message.headers.schema);
  if (fields.length === 0 && extraFields.length === 0) return [];
  return classifiedValues(message.body, extraFields.length === 0 ? fields : [...fields, ...extraFields]);
}

function trySet(error: Error, property: 'message' | 'stack', value: string): boolean {
  try {
    Object.defineProperty(error, property, { value, writable: true, configurable: true, enumerable: false });
    return true;
  } catch {
    return false;
  }
}

function parseJson(body: string | Uint8Array): { value: unknown } | undefined {
  if (body.length > MAX_PARSED_BYTES) return undefined;
  const text = typeof body === 'string' ? body : Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('utf8');
  if (!/^\s*[[{]/.test(text)) return undefined;
  try {
    return { value: JSON.parse(text) as unknown };
  } catch {
    return undefined;
  }
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
