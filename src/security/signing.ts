import { createHmac, timingSafeEqual, type KeyObject } from 'node:crypto';
import { FlattenedSign, flattenedVerify, type JWSHeaderParameters } from 'jose';
import { RouteDefinitionError } from '../core/errors.ts';
import { withBody, withHeaders, type Headers, type Message } from '../core/message.ts';
import { PayloadParseError } from '../schema/errors.ts';
import { parseJsonSafely, type PayloadLimits } from '../schema/safe-json.ts';
import { canonicalJson, isWellFormedText } from './canonical-json.ts';
import type { Keyring } from './keyring.ts';
import type { SignatureAlgorithm, SignatureKey } from './signing-keys.ts';
import {
  AlgorithmNotAllowedError,
  ReplayedMessageError,
  SignatureExpiredError,
  SignatureFutureDatedError,
  SignatureInvalidError,
  SignatureMissingError,
  SignerMismatchError,
  SigningError,
  UnknownKeyError,
} from './signing-errors.ts';

/**
 * The header carrying the signature by default: a plain name, so that a device's signature passes
 * the MQTT inbound allow-list (`?userProperties=signature`) — `x-interchange-*` headers never come
 * from untrusted sources.
 */
export const DEFAULT_SIGNATURE_HEADER = 'signature';
/** Set by `verify` on a verified message: the id of the key that signed it. */
export const SIGNER_HEADER = 'x-interchange-signer';
/** Carried by a message `verify` refused, to the dead letter: the `SignatureRejection` word. */
export const SIGNATURE_REJECTED_HEADER = 'x-interchange-signature-rejected';

/** The verifier's defaults: a signature is accepted up to 5 minutes old, with 30 s of clock skew either way. */
export const DEFAULT_MAX_AGE_MS = 300_000;
export const DEFAULT_TOLERANCE_MS = 30_000;

/**
 * How long a replay memory must remember a signature id for the verifier with these settings: a
 * signature is accepted until `maxAgeMs + toleranceMs` after its `ts`, and may be claimed as early as
 * `toleranceMs` before it (future-dated within the skew) — so `maxAgeMs + 2 × toleranceMs`, plus the
 * last millisecond (an age equal to the bound is still accepted; a memory entry expires at its bound).
 * A claim's lease must last as long: a verified message still in flight must keep its claim.
 */
export function replayWindowMs(maxAgeMs: number, toleranceMs: number): number {
  return maxAgeMs + 2 * toleranceMs + 1;
}

const ALGORITHMS: ReadonlySet<string> = new Set<SignatureAlgorithm>(['HS256', 'EdDSA', 'ES256']);
/** What a key id may be (as `Keyring` says): `#` is not among it, so `<kid>#<jti>` is an unambiguous replay key. */
const KEY_ID = /^[\w.:@/+-]{1,128}$/;
const BASE64URL = /^[A-Za-z0-9_-]+$/;
/** A signature header longer than this is refused unread. */
const MAX_SIGNATURE_HEADER_CHARS = 8_192;
const MAX_SIGNATURE_ID_CHARS = 128;
const MAX_SIGNED_HEADERS = 32;
/** An HS256 signature: 32 bytes, 43 base64url characters. */
const HS256_SIGNATURE_CHARS = 43;

/** Where signing keys come from: a keyring (its active key signs), or a function returning the current one (rotation while running). */
export type SigningKeys = Keyring<SignatureKey> | (() => Keyring<SignatureKey>);
/** Where verifying keys come from: a keyring (active and retiring keys verify), or a lookup by key id (per-device keys). */
export type VerifyingKeys = Keyring<SignatureKey> | ((keyId: string) => SignatureKey | undefined);

export interface SignOptions<T = unknown> {
  /** The keyring whose active key signs (its id travels as `kid`). A function is asked per message: swap keyrings to rotate. */
  readonly keys: SigningKeys;
  /** Headers covered by the signature besides the body (e.g. `deviceId`, `contentType`); their names travel in the signature. */
  readonly headers?: readonly string[];
  /** The header the signature is written to (default `signature`). */
  readonly header?: string;
  /** The signature's unique id (`jti`), the replay memory's key: default the message id. At most 128 characters. */
  readonly signatureId?: (message: Message<T>) => string;
  /** The signing time (epoch ms; default `Date.now`; the steps use their scheduler's clock). */
  readonly now?: () => number;
}

export interface VerifyOptions<T = unknown> {
  /** The keys accepted: a keyring (active and retiring keys), or a lookup by key id. Each key is bound to its one algorithm. */
  readonly keys: VerifyingKeys;
  /** Headers that must be among the signed ones (e.g. `deviceId`); a signature not covering one is refused (`header-not-signed`). */
  readonly headers?: readonly string[];
  /** The header the signature is read from (default `signature`). */
  readonly header?: string;
  /** Oldest signature accepted, in ms (default 300,000). */
  readonly maxAgeMs?: number;
  /** Clock skew tolerated either way, in ms (default 30,000). */
  readonly toleranceMs?: number;
  /**
   * Whether the key `keyId` may sign this message, e.g. `(m, kid) => kid === \`device-${m.headers.deviceId}\``
   * (list the header in `headers` so that it is signed too). `false` → `SignerMismatchError`.
   */
  readonly bindTo?: (message: Message<T>, keyId: string) => boolean;
  /** Limits for a JSON-signed body that arrives as text or bytes and is parsed to be checked (default 1 MiB, depth 64). */
  readonly payloadLimits?: PayloadLimits;
  /** The clock (epoch ms; default `Date.now`; the step uses its scheduler's clock). */
  readonly now?: () => number;
}

/** What a valid signature said. */
export interface SignatureInfo {
  readonly keyId: string;
  readonly alg: SignatureAlgorithm;
  /** The signature's unique id (`jti`). */
  readonly signatureId: string;
  /** When it was signed (epoch ms, the signer's clock). */
  readonly signedAt: number;
  readonly signedHeaders: readonly string[];
}

export interface VerifiedMessage<T> {
  /** The message with header `x-interchange-signer` (the key id); a JSON-signed body that arrived as text or bytes is the parsed value that was checked. */
  readonly message: Message<T>;
  readonly signature: SignatureInfo;
}

/** The protected header of our detached JWS (RFC 7515 + RFC 7797 unencoded payload). */
interface ProtectedHeader {
  readonly alg: SignatureAlgorithm;
  readonly kid: string;
  readonly ts: number;
  readonly jti: string;
  readonly hdrs: readonly string[];
  readonly body: BodyForm;
}

/** How the body was signed: `json` — its RFC 8785 canonical form; `bytes` — its bytes (a string: UTF-8). */
type BodyForm = 'json' | 'bytes';

/**
 * Signs messages: a detached JWS (RFC 7515 App. F, unencoded payload per RFC 7797) in one header,
 * `<protected>..<signature>`. The protected header holds `alg`, `kid`, `b64: false`, `crit: ["b64"]`,
 * `ts` (signing time, epoch ms), `jti` (unique id), `hdrs` (signed header names) and `body` (`json`
 * or `bytes`). The payload — never sent, rebuilt by the verifier from the message — is
 * `JSON.stringify([value of each hdrs header as a string, or null])` + `\n` + the body: a JSON value
 * as its RFC 8785 canonical form (so a hop that re-serialises it does not break the signature), bytes
 * and strings as their bytes. Unambiguous: the first part is a JSON array with no raw newline in it.
 * HS256 is computed with `node:crypto` (synchronous: no promise per message), EdDSA/ES256 by `jose`;
 * both produce standard JWS, so any JWS library can make or check them.
 * Returns a function; HS256 signs synchronously, the others return a promise. Throws
 * `RouteDefinitionError` for wrong options; the function throws/rejects `SigningError`.
 * @example const sign = createSigner({ keys, headers: ['deviceId'] }); const signed = await sign(message);
 */
export function createSigner<T>({ keys, headers = [], header = DEFAULT_SIGNATURE_HEADER, signatureId = (message) => message.id, now = Date.now }: SignOptions<T>): (message: Message<T>) => Message<T> | Promise<Message<T>> {
  const signed = checkHeaderNames('sign', headers, header);
  const keyring = typeof keys === 'function' ? undefined : keys;
  if (keyring !== undefined && !keyring.active.key.canSign) throw new RouteDefinitionError(`sign: the active key '${keyring.active.id}' cannot sign (a public key alone)`);
  const hdrsJson = JSON.stringify(signed);
  return (message) => {
    const { id: kid, key } = (keyring ?? (keys as () => Keyring<SignatureKey>)()).active;
    const material = key.signingMaterial;
    if (material === undefined) throw new SigningError(`the active key '${kid}' cannot sign (a public key alone)`, { permanent: false });
    const jti = signatureId(message);
    if (typeof jti !== 'string' || jti.length === 0 || jti.length > MAX_SIGNATURE_ID_CHARS) throw new SigningError(`the signature id must be 1–${MAX_SIGNATURE_ID_CHARS} characters`, { permanent: true });
    const form = bodyFormOf(message.body);
    let body: string | Uint8Array;
    if (typeof message.body === 'string' && !isWellFormedText(message.body)) throw new SigningError('the body is a string with a lone surrogate: it has no UTF-8 form', { permanent: true });
    try {
      body = form === 'json' ? canonicalJson(message.body) : (message.body as string | Uint8Array);
    } catch (cause) {
      throw new SigningError(`the body has no canonical JSON form: ${(cause as Error).message}`, { cause, permanent: true });
    }
    const head = `{"alg":"${key.alg}","b64":false,"crit":["b64"],"kid":"${kid}","ts":${Math.floor(now())},"jti":${JSON.stringify(jti)},"hdrs":${hdrsJson},"body":"${form}"}`;
    const values = headerValues(message.headers, signed);
    const done = (head64: string, signature: string): Message<T> => withHeaders(message, { [header]: `${head64}..${signature}` });
    if (key.alg === 'HS256') {
      const protectedB64 = Buffer.from(head, 'utf8').toString('base64url');
      return done(protectedB64, hs256(material, protectedB64, values, body));
    }
    return new FlattenedSign(payloadBytes(values, body))
      .setProtectedHeader(JSON.parse(head) as JWSHeaderParameters)
      .sign(material)
      .then((jws) => done(jws.protected ?? Buffer.from(head, 'utf8').toString('base64url'), jws.signature));
  };
}

/**
 * Verifies signed messages (`createSigner`'s format). In order: the header is present and a detached
 * JWS of ours (`SignatureMissingError`, `SignatureInvalidError` `malformed`); `alg` is one we know,
 * never `none` (`AlgorithmNotAllowedError`); `kid` names a key held (`UnknownKeyError`) bound to
 * that very `alg` (`AlgorithmNotAllowedError`: HS256 over a public key's bytes is refused here); the
 * signature matches the message as it arrived (`SignatureInvalidError` `mismatch`; HS256 compared in
 * constant time); only then, of an authentic signature: its age (`SignatureExpiredError`,
 * `SignatureFutureDatedError`), the required signed headers (`header-not-signed`) and `bindTo`
 * (`SignerMismatchError`). Every one is a permanent `SignatureError` with a `reason`.
 * Replay memory is the step's (`verify`): this function alone does not remember signature ids.
 * Returns a function: synchronous for HS256, a promise for EdDSA/ES256; it throws/rejects the errors above.
 * @example const check = createVerifier({ keys: deviceKeys, headers: ['deviceId'] }); const { message, signature } = await check(incoming);
 */
export function createVerifier<T>({
  keys,
  headers: required = [],
  header = DEFAULT_SIGNATURE_HEADER,
  maxAgeMs = DEFAULT_MAX_AGE_MS,
  toleranceMs = DEFAULT_TOLERANCE_MS,
  bindTo,
  payloadLimits,
  now = Date.now,
}: VerifyOptions<T>): (message: Message<unknown>) => VerifiedMessage<T> | Promise<VerifiedMessage<T>> {
  checkHeaderNames('verify', required, header);
  for (const [name, value] of [['maxAgeMs', maxAgeMs], ['toleranceMs', toleranceMs]] as const) {
    if (!Number.isSafeInteger(value) || value < 0) throw new RouteDefinitionError(`verify: ${name} must be a non-negative integer, got ${String(value)}`);
  }
  const lookup = typeof keys === 'function' ? keys : (kid: string) => keys.get(kid);

  const accept = (message: Message<unknown>, claims: ProtectedHeader, body: unknown): VerifiedMessage<T> => {
    const at = now();
    const age = at - claims.ts;
    if (age > maxAgeMs + toleranceMs) throw new SignatureExpiredError(age, maxAgeMs);
    if (-age > toleranceMs) throw new SignatureFutureDatedError(-age, toleranceMs);
    for (const name of required) if (!claims.hdrs.includes(name)) throw new SignatureInvalidError('header-not-signed', `header '${name}' is not signed`);
    const verified: Message<T> = body === message.body ? withHeaders(message as Message<T>, { [SIGNER_HEADER]: claims.kid }) : withBody(message, body as T, { [SIGNER_HEADER]: claims.kid });
    if (bindTo !== undefined && !bindTo(verified, claims.kid)) throw new SignerMismatchError(claims.kid);
    return { message: verified, signature: { keyId: claims.kid, alg: claims.alg, signatureId: claims.jti, signedAt: claims.ts, signedHeaders: claims.hdrs } };
  };

  return (message) => {
    const value = message.headers[header];
    if (value === undefined || value === '') throw new SignatureMissingError(header);
    if (typeof value !== 'string' || value.length > MAX_SIGNATURE_HEADER_CHARS) throw malformed('not a detached JWS');
    const dot = value.indexOf('.');
    if (dot < 1 || value.charCodeAt(dot + 1) !== 0x2e) throw malformed('not a detached JWS (<protected>..<signature>)');
    const protectedB64 = value.slice(0, dot);
    const signature = value.slice(dot + 2);
    if (!BASE64URL.test(protectedB64)) throw malformed('the protected header is not base64url');
    const claims = readProtectedHeader(protectedB64);
    const key = lookup(claims.kid);
    if (key === undefined) throw new UnknownKeyError(claims.kid);
    if (key.alg !== claims.alg) throw new AlgorithmNotAllowedError(claims.alg, claims.kid, key.alg);
    const material = key.verifyingMaterial;
    if (material === undefined) throw new UnknownKeyError(claims.kid);
    if (!BASE64URL.test(signature)) throw malformed('the signature is not base64url');
    const values = headerValues(message.headers, claims.hdrs);
    const { signed, checked } = bodyToCheck(message.body, claims.body, payloadLimits);
    if (claims.alg === 'HS256') {
      if (signature.length !== HS256_SIGNATURE_CHARS) throw mismatch();
      const expected = hs256(material, protectedB64, values, signed);
      if (!timingSafeEqual(Buffer.from(expected, 'latin1'), Buffer.from(signature, 'latin1'))) throw mismatch();
      return accept(message, claims, checked);
    }
    // one encoding per signature: a last character differing only in unused bits decodes the same, and is refused
    if (Buffer.from(signature, 'base64url').toString('base64url') !== signature) throw mismatch();
    return flattenedVerify({ protected: protectedB64, payload: payloadBytes(values, signed), signature }, material, { algorithms: [claims.alg] }).then(
      () => accept(message, claims, checked),
      () => {
        throw mismatch();
      },
    );
  };
}

/**
 * Signs one message: the function form of `.sign()`, for a device simulator or a producer outside
 * a route. Resolves with the message carrying its signature header; rejects with `SigningError`.
 * @example const signed = await signMessage(createMessage(reading, { headers: { deviceId } }), { keys: deviceKeyring, headers: ['deviceId'] });
 */
export async function signMessage<T>(message: Message<T>, options: SignOptions<T>): Promise<Message<T>> {
  return createSigner(options)(message);
}

/**
 * Verifies one message: the function form of `.verify()` without replay memory (pass `replay` to
 * `checkReplay` for that). Resolves with the verified message and what its signature said; rejects
 * with a `SignatureError` (its `reason` says why).
 * @example const { message, signature } = await verifyMessage(incoming, { keys: deviceKeys });
 */
export async function verifyMessage<T = unknown>(message: Message<unknown>, options: VerifyOptions<T>): Promise<VerifiedMessage<T>> {
  return createVerifier(options)(message);
}

/** The replay memory's key of a signature: `<prefix><kid>#<jti>` (a key id holds no `#`). */
export function replayKey(signature: SignatureInfo, prefix = 'signature:'): string {
  return `${prefix}${signature.keyId}#${signature.signatureId}`;
}

/**
 * For a non-route consumer: claims the signature id in `store` and confirms it at once — resolves if
 * it was not seen before, rejects with `ReplayedMessageError` if it was (or is being processed).
 * @example await checkReplay(await verifyMessage(m, { keys }), store)
 */
export async function checkReplay(verified: { readonly signature: SignatureInfo }, store: { claim(key: string): Promise<'claimed' | 'duplicate' | 'in-progress'>; confirm(key: string): Promise<void> }): Promise<void> {
  const key = replayKey(verified.signature);
  if ((await store.claim(key)) !== 'claimed') throw new ReplayedMessageError(verified.signature.keyId, verified.signature.signatureId);
  await store.confirm(key);
}

function checkHeaderNames(step: string, names: readonly string[], header: string): readonly string[] {
  if (typeof header !== 'string' || header === '') throw new RouteDefinitionError(`${step}: the signature header needs a name`);
  const unique = [...new Set(names)].sort();
  if (unique.length !== names.length) throw new RouteDefinitionError(`${step}: a signed header is listed twice`);
  if (unique.length > MAX_SIGNED_HEADERS) throw new RouteDefinitionError(`${step}: at most ${MAX_SIGNED_HEADERS} signed headers`);
  for (const name of unique) {
    if (name === '' || name.length > 128) throw new RouteDefinitionError(`${step}: signed header names have 1–128 characters`);
    if (name === header) throw new RouteDefinitionError(`${step}: the signature header '${header}' cannot sign itself`);
  }
  return unique;
}

function bodyFormOf(body: unknown): BodyForm {
  return typeof body === 'string' || body instanceof Uint8Array ? 'bytes' : 'json';
}

/** The signed headers' values: strings (transports turn numbers and booleans into text), `null` when absent. */
function headerValues(headers: Headers, names: readonly string[]): string {
  if (names.length === 0) return '[]';
  const values: (string | null)[] = [];
  for (const name of names) {
    const value = Object.hasOwn(headers, name) ? headers[name] : undefined;
    values.push(value === undefined ? null : String(value));
  }
  return JSON.stringify(values);
}

/**
 * The HS256 signature (base64url) of `<protected>.<values>\n<body>` (RFC 7515 §5.1 with an RFC 7797
 * unencoded payload): one `update` for text — each one is a call into C++ — two for bytes.
 */
function hs256(key: KeyObject, protectedB64: string, values: string, body: string | Uint8Array): string {
  const hmac = createHmac('sha256', key);
  if (typeof body === 'string') return hmac.update(`${protectedB64}.${values}\n${body}`).digest('base64url');
  return hmac.update(`${protectedB64}.${values}\n`).update(body).digest('base64url');
}

function payloadBytes(values: string, body: string | Uint8Array): Uint8Array {
  const head = Buffer.from(`${values}\n`, 'utf8');
  return Buffer.concat([head, typeof body === 'string' ? Buffer.from(body, 'utf8') : body]);
}

/**
 * The body's part of the payload as the signature's `body` form says, and the body passed on: a
 * JSON-signed body that arrives as text or bytes (an MQTT or AMQP hop) is parsed (safely, with
 * limits) and the parsed value is both checked and passed on, so nothing downstream reads the body
 * another way than the one verified.
 */
function bodyToCheck(body: unknown, form: BodyForm, limits: PayloadLimits | undefined): { readonly signed: string | Uint8Array; readonly checked: unknown } {
  const raw = typeof body === 'string' || body instanceof Uint8Array;
  if (form === 'bytes') {
    if (!raw) throw mismatch('the body was signed as bytes but arrived parsed (consume it raw, e.g. MQTT payload=raw)');
    if (typeof body === 'string' && !isWellFormedText(body)) throw malformed('the body is a string with a lone surrogate (no UTF-8 form: never what was signed)');
    return { signed: body, checked: body };
  }
  let value = body;
  if (raw) {
    try {
      value = parseJsonSafely(body, limits);
    } catch (error) {
      // not JSON at all: altered; JSON this verifier will not read (a prototype key, over a limit): say why
      if (error instanceof PayloadParseError && error.cause !== undefined) throw mismatch('the body was signed as JSON but is not JSON');
      throw malformed(`the body cannot be read safely: ${(error as Error).message.slice(0, 200)}`);
    }
  }
  try {
    return { signed: canonicalJson(value), checked: value };
  } catch (error) {
    // the signer refuses such a body (see canonicalJson): this one was altered
    throw mismatch(`the body has no canonical JSON form (${(error as Error).message.slice(0, 200)})`);
  }
}

function readProtectedHeader(protectedB64: string): ProtectedHeader {
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(protectedB64, 'base64url').toString('utf8'));
  } catch {
    throw malformed('the protected header is not JSON');
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw malformed('the protected header is not a JSON object');
  const { alg, kid, ts, jti, hdrs, body, b64, crit } = parsed as Record<string, unknown>;
  if (typeof alg !== 'string' || !ALGORITHMS.has(alg)) throw new AlgorithmNotAllowedError(typeof alg === 'string' ? alg : String(alg), undefined, undefined);
  if (typeof kid !== 'string' || !KEY_ID.test(kid)) throw malformed('no valid key id (kid)');
  // RFC 7797: the payload is unencoded, so b64 is false and understood (crit); we understand no other extension
  if (b64 !== false || !Array.isArray(crit) || crit.length !== 1 || crit[0] !== 'b64') throw malformed('not an unencoded-payload JWS (b64: false, crit: ["b64"])');
  if (typeof ts !== 'number' || !Number.isSafeInteger(ts) || ts < 0) throw malformed('no valid signing time (ts)');
  if (typeof jti !== 'string' || jti.length === 0 || jti.length > MAX_SIGNATURE_ID_CHARS) throw malformed('no valid signature id (jti)');
  if (body !== 'json' && body !== 'bytes') throw malformed('no valid body form');
  if (!Array.isArray(hdrs) || hdrs.length > MAX_SIGNED_HEADERS || !hdrs.every((name) => typeof name === 'string' && name !== '' && name.length <= 128) || new Set(hdrs).size !== hdrs.length) {
    throw malformed('no valid signed header list (hdrs)');
  }
  return { alg: alg as SignatureAlgorithm, kid, ts, jti, hdrs: hdrs as string[], body };
}

function malformed(detail: string): SignatureInvalidError {
  return new SignatureInvalidError('malformed', detail);
}

function mismatch(detail = 'it does not match the message (body, a signed header or the signature altered, or made for another message)'): SignatureInvalidError {
  return new SignatureInvalidError('mismatch', detail);
}
