import { RouteDefinitionError, UnencodableMessageError } from '../core/errors.ts';
import { withBody, type Message } from '../core/message.ts';
import { PayloadParseError, PayloadTooLargeError } from '../schema/errors.ts';
import { parseJsonSafely } from '../schema/safe-json.ts';
import { MalformedEnvelopeError } from './envelope-errors.ts';
import { DEFAULT_MAX_ENVELOPE_BYTES, ENVELOPE_CONTENT_TYPE, envelopeContext, open, seal, type Envelope, type EncryptionKey, type SealedKind } from './envelope.ts';
import { Keyring } from './keyring.ts';

/** A keyring, or a function giving the current one (read per message: rotation without a restart). */
export type KeySource = Keyring<EncryptionKey> | (() => Keyring<EncryptionKey>);

export interface EnvelopeOptions {
  /** The KEKs: the active one encrypts, active and retiring ones decrypt (by the envelope's `kid`). */
  readonly keys: KeySource;
  /**
   * JSON pointers (RFC 6901) of the fields to encrypt, each value replaced by its envelope, e.g.
   * `['/patient/name', '/card']`; default: the whole body. An absent field is left absent.
   */
  readonly fields?: readonly string[];
  /**
   * Bind each envelope to the message id (default `true`): it then decrypts only in the message it was
   * made for. Turn off on both sides only where the id does not survive the way (a producer whose
   * transport drops ids, a splitter between encryption and decryption); envelopes stay bound to their field.
   */
  readonly bindMessageId?: boolean;
}

export interface DecryptOptions extends EnvelopeOptions {
  /** Largest envelope accepted from outside, in characters of its members (default 16 MiB). */
  readonly maxEnvelopeBytes?: number;
}

/** A JSON pointer parsed into its reference tokens, checked at build time. */
type Pointer = readonly string[];

/** Parses and checks the pointers of `fields`: syntax, no whole-document pointer, no overlaps, no prototype keys. */
export function parsePointers(fields: readonly string[], what: string): readonly Pointer[] {
  const parsed = fields.map((field) => {
    if (typeof field !== 'string' || !field.startsWith('/')) throw new RouteDefinitionError(`${what}: field '${String(field)}' is not a JSON pointer (RFC 6901: '/a/b'); the whole body is the default`);
    if (/~[^01]|~$/.test(field)) throw new RouteDefinitionError(`${what}: field '${field}' has an invalid ~ escape`);
    const tokens = field.slice(1).split('/').map((token) => token.replace(/~1/g, '/').replace(/~0/g, '~'));
    if (tokens.some((token) => token === '__proto__' || token === 'constructor' || token === 'prototype')) throw new RouteDefinitionError(`${what}: field '${field}' names a prototype key`);
    return tokens;
  });
  fields.forEach((field, index) => {
    fields.forEach((other, otherIndex) => {
      if (index !== otherIndex && (other === field || other.startsWith(`${field}/`))) throw new RouteDefinitionError(`${what}: fields '${field}' and '${other}' overlap`);
    });
  });
  return parsed;
}

/** Checks at build time that every key of a static keyring is a 32-byte AES-256 key. */
export function checkKeys(keys: KeySource, what: string): void {
  if (typeof keys === 'function') return;
  if (!(keys instanceof Keyring)) throw new RouteDefinitionError(`${what}: keys must be a Keyring of 32-byte keys, or a function returning one`);
  for (const id of keys.ids) {
    const key = keys.get(id);
    const length = key instanceof Uint8Array ? key.byteLength : key?.symmetricKeySize;
    if (length !== 32) throw new RouteDefinitionError(`${what}: key '${id}' is not a 32-byte AES-256 key`);
  }
}

const keyringOf = (keys: KeySource): Keyring<EncryptionKey> => (typeof keys === 'function' ? keys() : keys);

/** A value as bytes to seal, and what it was. Throws `UnencodableMessageError` (permanent) for what is neither bytes, text nor JSON. */
function encodeValue(value: unknown, where: string): { bytes: Uint8Array; kind: SealedKind } {
  if (value instanceof Uint8Array) return { bytes: value, kind: 'bytes' };
  if (typeof value === 'string') return { bytes: Buffer.from(value, 'utf8'), kind: 'text' };
  let json: string | undefined;
  try {
    json = JSON.stringify(value);
  } catch {
    json = undefined;
  }
  if (json === undefined) throw new UnencodableMessageError('ENCRYPT_UNENCODABLE', `${where}: cannot be encrypted (${typeof value}): bytes, text or a JSON value only`);
  return { bytes: Buffer.from(json, 'utf8'), kind: 'json' };
}

function decodeValue(plaintext: Buffer, kind: SealedKind, where: string): unknown {
  if (kind === 'bytes') return plaintext;
  if (kind === 'text') return plaintext.toString('utf8');
  try {
    // authenticated, but as untrusted as its sender: no prototype keys, nesting bounded (64)
    return parseJsonSafely(plaintext, { maxBytes: plaintext.length });
  } catch (error) {
    throw new MalformedEnvelopeError(where, `decrypted content is not acceptable JSON (${jsonProblem(error)})`);
  }
}

/** Why `parseJsonSafely` refused: its own words for a forbidden key or a depth; never the text itself. */
function jsonProblem(error: unknown): string {
  if (error instanceof PayloadParseError && error.cause !== undefined) return 'not JSON';
  return error instanceof Error ? error.message.slice(0, 200) : 'not JSON';
}

/** The value at `pointer`, or `undefined` when absent (own properties only). */
function valueAt(body: unknown, pointer: Pointer): unknown {
  let node = body;
  for (const token of pointer) {
    if (typeof node !== 'object' || node === null || !Object.hasOwn(node, token)) return undefined;
    node = (node as Record<string, unknown>)[token];
  }
  return node;
}

/** A copy of `body` with `value` at `pointer` (copy on write along the path; the input is never mutated). */
function replaceAt(body: unknown, pointer: Pointer, depth: number, value: unknown): unknown {
  const token = pointer[depth] as string;
  const child = depth === pointer.length - 1 ? value : replaceAt((body as Record<string, unknown>)[token], pointer, depth + 1, value);
  if (Array.isArray(body)) {
    const copy = [...(body as unknown[])];
    copy[Number(token)] = child;
    return copy;
  }
  return { ...(body as Record<string, unknown>), [token]: child };
}

const describe = (field: string | undefined): string => (field === undefined ? 'body' : `field ${field}`);

/**
 * Encrypts a message's body, or the `fields` given, with the active key of `keys`: what the
 * `.encrypt()` step does, for producers outside routes. The whole body becomes an `Envelope` (its
 * `contentType` header then `application/jose+json`, the original kept inside); each field's value
 * becomes its envelope. Same id and headers (`schema` dropped). Throws `UnencodableMessageError` for a
 * body that is neither bytes, text nor JSON.
 * @example const sealed = encryptBody(createMessage({ card: '4111…' }), { keys, fields: ['/card'] })
 */
export function encryptBody<T>(message: Message<T>, options: EnvelopeOptions): Message<unknown> {
  const pointers = options.fields === undefined ? undefined : parsePointers(options.fields, 'encryptBody');
  return encryptWith(message, keyringOf(options.keys), options.fields, pointers, options.bindMessageId ?? true);
}

/** `encryptBody` with the pointers already parsed (the step parses them once). */
export function encryptWith(message: Message<unknown>, keys: Keyring<EncryptionKey>, fields: readonly string[] | undefined, pointers: readonly Pointer[] | undefined, bindMessageId: boolean): Message<unknown> {
  const { id, key } = keys.active;
  const messageId = bindMessageId ? message.id : undefined;
  if (fields === undefined || pointers === undefined) {
    const { bytes, kind } = encodeValue(message.body, 'body');
    const envelope = seal(bytes, kind, id, key, envelopeContext(messageId, ''), message.headers.contentType);
    return withBody(message, envelope, { contentType: ENVELOPE_CONTENT_TYPE });
  }
  let body: unknown = message.body;
  pointers.forEach((pointer, index) => {
    const field = fields[index] as string;
    const value = valueAt(body, pointer);
    if (value === undefined) return;
    const { bytes, kind } = encodeValue(value, describe(field));
    body = replaceAt(body, pointer, 0, seal(bytes, kind, id, key, envelopeContext(messageId, field)));
  });
  return withBody(message, body);
}

/**
 * Decrypts what `encryptBody` (or the `.encrypt()` step) made: the whole body — an envelope object, or
 * its JSON as text or bytes from a transport — or each of `fields`, each of which must hold an envelope
 * if present (a plain value there is refused: no silent downgrade to plaintext). Throws the permanent
 * `MalformedEnvelopeError`, `UnsupportedEnvelopeError`, `UnknownKeyError`, `DecryptionFailedError`;
 * nothing is decrypted unless every envelope of the message is.
 * @example const clear = decryptBody<Order>(received, { keys })
 */
export function decryptBody<T = unknown>(message: Message<unknown>, options: DecryptOptions): Message<T> {
  const pointers = options.fields === undefined ? undefined : parsePointers(options.fields, 'decryptBody');
  return decryptWith(message, keyringOf(options.keys), options.fields, pointers, options.bindMessageId ?? true, options.maxEnvelopeBytes ?? DEFAULT_MAX_ENVELOPE_BYTES) as Message<T>;
}

/** `decryptBody` with the pointers already parsed. */
export function decryptWith(message: Message<unknown>, keys: Keyring<EncryptionKey>, fields: readonly string[] | undefined, pointers: readonly Pointer[] | undefined, bindMessageId: boolean, maxBytes: number): Message<unknown> {
  const messageId = bindMessageId ? message.id : undefined;
  if (fields === undefined || pointers === undefined) {
    const opened = open(envelopeFromBody(message.body, maxBytes), keys, envelopeContext(messageId, ''), 'body', maxBytes);
    return withBody(message, decodeValue(opened.plaintext, opened.kind, 'body'), { contentType: opened.contentType });
  }
  let body: unknown = message.body;
  if (typeof body === 'string' || body instanceof Uint8Array) body = parseBounded(body, 'body', maxBytes);
  pointers.forEach((pointer, index) => {
    const field = fields[index] as string;
    const value = valueAt(body, pointer);
    if (value === undefined) return;
    const where = describe(field);
    const opened = open(value, keys, envelopeContext(messageId, field), where, maxBytes);
    body = replaceAt(body, pointer, 0, decodeValue(opened.plaintext, opened.kind, where));
  });
  return withBody(message, body);
}

/** A whole-body envelope: the object, or parsed from the text or bytes a transport delivered (bounded first). */
function envelopeFromBody(body: unknown, maxBytes: number): unknown {
  return typeof body === 'string' || body instanceof Uint8Array ? parseBounded(body, 'body', maxBytes) : body;
}

function parseBounded(body: string | Uint8Array, where: string, maxBytes: number): unknown {
  // the bound on the raw text, plus room for JSON's punctuation and member names
  if (body.length > maxBytes + 1_024) throw new MalformedEnvelopeError(where, `${body.length} bytes exceed the envelope bound of ${maxBytes}`);
  try {
    // unauthenticated input (in fields mode, all but the envelopes): parsed safely — no `__proto__`/`constructor` keys, nesting ≤ 64
    return parseJsonSafely(body, { maxBytes: maxBytes + 1_024 });
  } catch (error) {
    if (error instanceof PayloadTooLargeError) throw new MalformedEnvelopeError(where, `${error.message.slice(0, 200)} (the envelope bound is ${maxBytes})`);
    throw new MalformedEnvelopeError(where, `not an encrypted envelope, or not acceptable JSON (${jsonProblem(error)})`);
  }
}

export type { Envelope };
