// Signing against the reviewer's findings: what the signer refuses (prototype keys, lone surrogates, non-plain
// objects), how the verifier names those refusals, and the header and encoding checks signed with the real key.
import { createHmac, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createMessage, type Message } from '../../../src/core/index.ts';
import { canonicalJson, CanonicalJsonError, generateSignatureKey, hmacKey, Keyring, signMessage, verifyMessage, type SignatureKey } from '../../../facade/security/index.ts';
import { SignatureError, SigningError } from '../../../src/security/signing-errors.ts';

const secret = randomBytes(32);
const keys = new Keyring<SignatureKey>([{ id: 'k1', key: hmacKey(secret) }]);

/** The rejection reason of `message`, or 'accepted'. */
async function verdict(message: Message): Promise<string> {
  try {
    await verifyMessage(message, { keys });
    return 'accepted';
  } catch (error) {
    if (!(error instanceof SignatureError)) throw error;
    return `${error.reason}: ${error.message}`;
  }
}

/** A message whose signature, over the same payload form as ours, is made with the real key under `header`. */
function signedWithHeader(header: Record<string, unknown>, body: unknown): Message {
  const protectedB64 = Buffer.from(JSON.stringify(header)).toString('base64url');
  const mac = createHmac('sha256', secret).update(protectedB64).update('.').update('[]').update('\n').update(canonicalJson(body)).digest('base64url');
  return createMessage(body, { headers: { signature: `${protectedB64}..${mac}` } });
}
const goodHeader = { alg: 'HS256', b64: false, crit: ['b64'], kid: 'k1', ts: Date.now(), jti: 'j-1', hdrs: [], body: 'json' };

describe('signing: findings', () => {
  it.each(['constructor', '__proto__'])('a body with a %s key is refused when signed (permanent SigningError), and named malformed by the verifier when it arrives as text', async (name) => {
    const body = JSON.parse(`{"${name}":"Bob","n":1}`) as unknown;
    const signing = signMessage(createMessage(body), { keys });
    await expect(signing).rejects.toBeInstanceOf(SigningError);
    await expect(signing).rejects.toMatchObject({ permanent: true });
    const signed = await signMessage(createMessage({ n: 1 }), { keys });
    expect(await verdict({ ...signed, body: `{"${name}":"Bob","n":1}` })).toMatch(new RegExp(`^malformed: .*${name}.*not allowed`));
  });

  it('a body signed as JSON arriving as text that is not JSON is still a mismatch', async () => {
    const signed = await signMessage(createMessage({ n: 1 }), { keys });
    expect(await verdict({ ...signed, body: '{"n":' })).toMatch(/^mismatch/);
  });

  it('a lone surrogate is refused on both sides: not signed, and not taken for the U+FFFD that was signed', async () => {
    await expect(signMessage(createMessage('pay \uD800'), { keys })).rejects.toBeInstanceOf(SigningError);
    await expect(signMessage(createMessage({ to: 'pay \uDC00' }), { keys })).rejects.toBeInstanceOf(SigningError);
    const signed = await signMessage(createMessage('pay \uFFFD'), { keys });
    expect(await verdict(signed)).toBe('accepted');
    expect(await verdict({ ...signed, body: 'pay \uD800' })).toMatch(/^malformed/);
    expect(() => canonicalJson({ ['\uD800']: 1 })).toThrow(CanonicalJsonError);
  });

  it.each([
    ['an ArrayBuffer', new ArrayBuffer(4)],
    ['a Map', new Map([['a', 1]])],
    ['a Set', new Set([1])],
    ['a class instance', new (class Point { x = 1; })()],
  ])('%s has no canonical JSON form (it would sign as {})', async (_what, value) => {
    expect(() => canonicalJson({ value })).toThrow(CanonicalJsonError);
    await expect(signMessage(createMessage(value), { keys })).rejects.toBeInstanceOf(SigningError);
  });

  it('plain objects, null-prototype objects and Dates still canonicalise', () => {
    const bare = Object.assign(Object.create(null) as Record<string, unknown>, { b: 1, a: 2 });
    expect(canonicalJson({ bare, at: new Date(0) })).toBe('{"at":"1970-01-01T00:00:00.000Z","bare":{"a":2,"b":1}}');
  });

  it('a header the verifier cannot honour, signed with the real key, is refused as malformed: b64 true, or an extension in crit', async () => {
    const body = { n: 1 };
    expect(await verdict(signedWithHeader(goodHeader, body))).toBe('accepted'); // the forging helper is right
    expect(await verdict(signedWithHeader({ ...goodHeader, b64: true }, body))).toMatch(/^malformed/);
    expect(await verdict(signedWithHeader({ ...goodHeader, crit: ['b64', 'exp'], exp: 1 }, body))).toMatch(/^malformed/);
  });

  it('a signature whose last character differs only in unused bits (same bytes) is refused as a mismatch', async () => {
    const ed = generateSignatureKey('EdDSA');
    const edKeys = new Keyring<SignatureKey>([{ id: 'e1', key: ed }]);
    const signed = await signMessage(createMessage({ n: 1 }), { keys: edKeys });
    const [head, , sig] = String(signed.headers.signature).split('.') as [string, string, string];
    const B64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    const last = B64URL.indexOf(sig.at(-1) as string);
    const twin = `${sig.slice(0, -1)}${B64URL[last ^ 1] as string}`; // an EdDSA signature's last character carries 4 unused bits
    expect(Buffer.from(twin, 'base64url').equals(Buffer.from(sig, 'base64url'))).toBe(true);
    await expect(verifyMessage({ ...signed, headers: { ...signed.headers, signature: `${head}..${twin}` } }, { keys: edKeys })).rejects.toMatchObject({ reason: 'mismatch' });
  });
});
