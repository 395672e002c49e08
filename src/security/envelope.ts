import { createCipheriv, createDecipheriv, randomFillSync, type KeyObject } from 'node:crypto';
import type { Keyring } from './keyring.ts';
import { DecryptionFailedError, EncryptionKeyInvalidError, MalformedEnvelopeError, UnknownEncryptionKeyError, UnsupportedEnvelopeError } from './envelope-errors.ts';

/**
 * A key-encryption key (KEK): 32 bytes (AES-256), as bytes or a secret `KeyObject`. Kept in a
 * `Keyring<EncryptionKey>`: the active key wraps new data keys, retiring ones still unwrap.
 */
export type EncryptionKey = Uint8Array | KeyObject;

/**
 * One encrypted value: a JWE in flattened JSON serialization (RFC 7516 §7.2.2), every member
 * base64url. `alg` `A256GCMKW` (the per-message data key wrapped with AES-256-GCM under the KEK named
 * by `kid`; the wrap's nonce and tag in the protected header) and `enc` `A256GCM` (the content under
 * the data key, a 96-bit random nonce, a 128-bit tag). The AAD — the protected header plus the
 * message id and JSON pointer the value was sealed for — is never sent: the receiver recomputes it from
 * where it found the envelope, so an envelope moved to another message or field fails authentication.
 * `jose` decrypts it (`flattenedDecrypt({ ...envelope, aad }, kek)`, `aad` = `envelopeContext(...)`).
 */
export interface Envelope {
  readonly protected: string;
  readonly encrypted_key: string;
  readonly iv: string;
  readonly ciphertext: string;
  readonly tag: string;
}

/** What the sealed bytes were: a JSON value, a string (UTF-8), or bytes — restored as such. */
export type SealedKind = 'json' | 'text' | 'bytes';

/** The protected header, as this version writes and accepts it (any other member is refused). */
interface ProtectedHeader {
  readonly alg: 'A256GCMKW';
  readonly enc: 'A256GCM';
  readonly kid: string;
  /** The key wrap's nonce and tag (RFC 7518 §4.7). */
  readonly iv: string;
  readonly tag: string;
  /** Envelope version: 1. */
  readonly v: 1;
  readonly kind: SealedKind;
  /** The message's `contentType` header before encryption (whole bodies only). */
  readonly cty?: string;
}

export const ENVELOPE_VERSION = 1;
/** The content type of a message whose whole body is an envelope. */
export const ENVELOPE_CONTENT_TYPE = 'application/jose+json';
/** Default bound on an envelope from outside: the sum of its members' lengths (base64url characters). */
export const DEFAULT_MAX_ENVELOPE_BYTES = 16 * 1024 * 1024;
const MAX_PROTECTED_CHARS = 2_048;
const MEMBERS = ['protected', 'encrypted_key', 'iv', 'ciphertext', 'tag'] as const;
const HEADER_MEMBERS = new Set(['alg', 'enc', 'kid', 'iv', 'tag', 'v', 'kind', 'cty']);
const KINDS = new Set<string>(['json', 'text', 'bytes']);
const BASE64URL = /^[A-Za-z0-9_-]*$/;
const BASE64URL_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

// Random bytes from a pool refilled from the CSPRNG (node's randomUUID does the same): one
// randomFillSync per 128 messages instead of three randomBytes calls per message (~4 µs each,
// measured). Every byte is used once; seal uses its slices synchronously, before any refill.
const POOL_BYTES = 56 * 128;
const pool = Buffer.alloc(POOL_BYTES);
let poolOffset = POOL_BYTES;
function randomSlice(length: number): Buffer {
  if (poolOffset + length > POOL_BYTES) {
    randomFillSync(pool);
    poolOffset = 0;
  }
  const slice = pool.subarray(poolOffset, poolOffset + length);
  poolOffset += length;
  return slice;
}

/**
 * The AAD context of an envelope: the message id (unless `bindMessageId` is off) and the JSON pointer
 * of the value ('' for a whole body), base64url — the JWE `aad` member a third-party decryptor needs.
 */
export function envelopeContext(messageId: string | undefined, pointer: string): string {
  return Buffer.from(`${messageId ?? ''}\u0000${pointer}`, 'utf8').toString('base64url');
}

/**
 * Seals `plaintext` for `context` (see `envelopeContext`) under the KEK `key` named `kid`: a fresh
 * 256-bit data key and nonces per call, so no (key, nonce) pair ever repeats for the content. The wrap
 * uses a random 96-bit nonce under the KEK: rotate a KEK before 2^32 messages (NIST SP 800-38D §8.3).
 */
export function seal(plaintext: Uint8Array, kind: SealedKind, kid: string, key: EncryptionKey, context: string, contentType?: string): Envelope {
  const dataKey = randomSlice(32);
  const wrapIv = randomSlice(12);
  const iv = randomSlice(12);
  const wrap = createCipheriv('aes-256-gcm', key, wrapIv, { authTagLength: 16 });
  // GCM is a stream mode: `final()` returns no bytes (it computes the tag), so `update`'s output is all of it
  const wrappedKey = wrap.update(dataKey);
  wrap.final();
  // the members in `ProtectedHeader`'s order, as JSON.stringify of that object would write them
  const header = `{"alg":"A256GCMKW","enc":"A256GCM","kid":${JSON.stringify(kid)},"iv":"${wrapIv.toString('base64url')}","tag":"${wrap.getAuthTag().toString('base64url')}","v":${ENVELOPE_VERSION},"kind":"${kind}"${contentType === undefined ? '' : `,"cty":${JSON.stringify(contentType)}`}}`;
  const protectedHeader = Buffer.from(header, 'utf8').toString('base64url');
  const cipher = createCipheriv('aes-256-gcm', dataKey, iv, { authTagLength: 16 });
  dataKey.fill(0);
  cipher.setAAD(Buffer.from(`${protectedHeader}.${context}`, 'latin1'));
  const ciphertext = cipher.update(plaintext);
  cipher.final();
  return { protected: protectedHeader, encrypted_key: wrappedKey.toString('base64url'), iv: iv.toString('base64url'), ciphertext: ciphertext.toString('base64url'), tag: cipher.getAuthTag().toString('base64url') };
}

/** What `open` gives back: the plaintext bytes, what they were, and the body's content type if it was recorded. */
export interface Opened {
  readonly plaintext: Buffer;
  readonly kind: SealedKind;
  readonly contentType: string | undefined;
  readonly keyId: string;
}

/** Whether `value` has an envelope's shape (the five members, strings): not whether it is valid. */
export function isEnvelope(value: unknown): value is Envelope {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  return MEMBERS.every((member) => typeof (value as Record<string, unknown>)[member] === 'string');
}

/**
 * Opens an envelope found at `where` (a JSON pointer, for errors) of untrusted input: checks shape,
 * sizes, strict base64url, version and algorithms, then unwraps the data key with the KEK its `kid`
 * names (active or retiring) and decrypts, authenticating header, ciphertext and `context`.
 * Throws `MalformedEnvelopeError`, `UnsupportedEnvelopeError`, `UnknownEncryptionKeyError` or
 * `DecryptionFailedError` — all permanent; nothing of the plaintext is returned unless every check passed.
 */
export function open(value: unknown, keys: Keyring<EncryptionKey>, context: string, where: string, maxBytes: number = DEFAULT_MAX_ENVELOPE_BYTES): Opened {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new MalformedEnvelopeError(where, 'not an encrypted envelope (a plain value where ciphertext is expected)');
  const envelope = value as Record<string, unknown>;
  let size = 0;
  for (const name of Object.keys(envelope)) {
    const member = envelope[name];
    // `aad` is JWE's optional member (a jose-made envelope carries it): accepted only as the context expected here
    if (name === 'aad') {
      if (member !== context) throw new DecryptionFailedError(where, 'content');
      continue;
    }
    if (!(MEMBERS as readonly string[]).includes(name)) throw new MalformedEnvelopeError(where, `unexpected envelope member '${name.slice(0, 40)}'`);
    if (typeof member !== 'string') throw new MalformedEnvelopeError(where, `envelope member '${name}' is not a string`);
    size += member.length;
  }
  for (const name of MEMBERS) if (typeof envelope[name] !== 'string') throw new MalformedEnvelopeError(where, `not an encrypted envelope (member '${name}' missing)`);
  if (size > maxBytes) throw new MalformedEnvelopeError(where, `envelope of ${size} characters exceeds the bound of ${maxBytes}`);
  const { protected: protectedHeader, encrypted_key: wrapped, iv, ciphertext, tag } = envelope as unknown as Envelope;
  if (protectedHeader.length > MAX_PROTECTED_CHARS) throw new MalformedEnvelopeError(where, `protected header over ${MAX_PROTECTED_CHARS} characters`);
  const header = parseHeader(where, decode(where, 'protected', protectedHeader));
  const wrapIv = decode(where, 'header iv', header.iv, 12);
  const wrapTag = decode(where, 'header tag', header.tag, 16);
  const wrappedKey = decode(where, 'encrypted_key', wrapped, 32);
  const contentIv = decode(where, 'iv', iv, 12);
  const contentTag = decode(where, 'tag', tag, 16);
  const content = decode(where, 'ciphertext', ciphertext);
  const key = keys.get(header.kid);
  if (key === undefined) throw new UnknownEncryptionKeyError(header.kid, where);
  const keySize = key instanceof Uint8Array ? key.byteLength : key.symmetricKeySize;
  if (keySize !== 32) throw new EncryptionKeyInvalidError(header.kid, keySize);
  const dataKey = unwrapDataKey(key, wrapIv, wrapTag, wrappedKey, where);
  try {
    const decipher = createDecipheriv('aes-256-gcm', dataKey, contentIv, { authTagLength: 16 });
    decipher.setAAD(Buffer.from(`${protectedHeader}.${context}`, 'latin1'));
    decipher.setAuthTag(contentTag);
    const plaintext = decipher.update(content);
    decipher.final(); // throws unless authentic: nothing of the plaintext leaves before
    return { plaintext, kind: header.kind, contentType: header.cty, keyId: header.kid };
  } catch {
    throw new DecryptionFailedError(where, 'content');
  } finally {
    dataKey.fill(0);
  }
}

/** The data key unwrapped by the KEK; `DecryptionFailedError` unless authentic (unauthenticated bytes are zeroed). */
function unwrapDataKey(key: EncryptionKey, wrapIv: Buffer, wrapTag: Buffer, wrappedKey: Buffer, where: string): Buffer {
  let dataKey: Buffer | undefined;
  try {
    const unwrap = createDecipheriv('aes-256-gcm', key, wrapIv, { authTagLength: 16 });
    unwrap.setAuthTag(wrapTag);
    dataKey = unwrap.update(wrappedKey);
    unwrap.final(); // throws unless authentic (GCM's final() returns no bytes)
    return dataKey;
  } catch {
    dataKey?.fill(0);
    throw new DecryptionFailedError(where, 'data key');
  }
}

/**
 * Strict base64url: only the alphabet, no padding, and canonical (re-encoding gives the same text),
 * so that no two texts decode to the same bytes — a flipped unused low bit of the last character is
 * refused, never silently accepted.
 */
function decode(where: string, member: string, text: string, length?: number): Buffer {
  if (!BASE64URL.test(text) || text.length % 4 === 1) throw new MalformedEnvelopeError(where, `envelope ${member} is not base64url`);
  if (!canonicalTail(text)) throw new MalformedEnvelopeError(where, `envelope ${member} is not canonical base64url`);
  const bytes = Buffer.from(text, 'base64url');
  if (length !== undefined && bytes.length !== length) throw new MalformedEnvelopeError(where, `envelope ${member} has ${bytes.length} bytes, not ${length}`);
  return bytes;
}

/**
 * Whether the last character of base64url `text` (alphabet checked, length not 1 mod 4) has its unused
 * low bits zero — what re-encoding the decoded bytes would show, without encoding them: 2 characters
 * left over carry 8 bits in 12 (4 unused), 3 carry 16 in 18 (2 unused).
 */
function canonicalTail(text: string): boolean {
  const rest = text.length % 4;
  if (rest === 0) return true;
  const value = BASE64URL_ALPHABET.indexOf(text.charAt(text.length - 1));
  return (value & (rest === 2 ? 0x0f : 0x03)) === 0;
}

function parseHeader(where: string, bytes: Buffer): ProtectedHeader {
  let header: unknown;
  try {
    header = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw new MalformedEnvelopeError(where, 'protected header is not JSON');
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) throw new MalformedEnvelopeError(where, 'protected header is not an object');
  const fields = header as Record<string, unknown>;
  for (const name of Object.keys(fields)) if (!HEADER_MEMBERS.has(name)) throw new UnsupportedEnvelopeError(where, `protected header member '${name.slice(0, 40)}' is not supported`);
  if (fields.v !== ENVELOPE_VERSION) throw new UnsupportedEnvelopeError(where, `envelope version ${JSON.stringify(fields.v)?.slice(0, 20)} is not supported (only ${ENVELOPE_VERSION})`);
  if (fields.alg !== 'A256GCMKW' || fields.enc !== 'A256GCM') throw new UnsupportedEnvelopeError(where, `algorithms ${String(fields.alg).slice(0, 20)}/${String(fields.enc).slice(0, 20)} are not supported (only A256GCMKW/A256GCM)`);
  if (typeof fields.kid !== 'string' || fields.kid === '') throw new MalformedEnvelopeError(where, 'protected header has no key id');
  if (typeof fields.iv !== 'string' || typeof fields.tag !== 'string') throw new MalformedEnvelopeError(where, 'protected header has no key-wrap iv or tag');
  if (typeof fields.kind !== 'string' || !KINDS.has(fields.kind)) throw new MalformedEnvelopeError(where, 'protected header has no valid kind');
  if (fields.cty !== undefined && typeof fields.cty !== 'string') throw new MalformedEnvelopeError(where, 'protected header cty is not a string');
  return fields as unknown as ProtectedHeader;
}
