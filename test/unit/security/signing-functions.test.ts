import { createHmac, generateKeyPairSync } from 'node:crypto';
import fc from 'fast-check';
import { FlattenedSign, flattenedVerify } from 'jose';
import { describe, expect, it } from 'vitest';
import { createMessage, type Message } from '../../../src/core/index.ts';
import { MemoryIdempotencyStore } from '../../../src/stores/idempotency-store.ts';
import {
  canonicalJson,
  CanonicalJsonError,
  checkReplay,
  ed25519Key,
  es256Key,
  generateSignatureKey,
  hmacKey,
  Keyring,
  KeyringError,
  ReplayedMessageError,
  SignatureExpiredError,
  SignatureFutureDatedError,
  SignatureInvalidError,
  SignatureMissingError,
  SignerMismatchError,
  SigningError,
  signMessage,
  verifyMessage,
  type SignatureAlgorithm,
  type SignatureKey,
} from '../../../facade/security/index.ts';

const ring = (key: SignatureKey, id = 'k1'): Keyring<SignatureKey> => new Keyring([{ id, key }]);
const protectedOf = (message: Message): Record<string, unknown> => JSON.parse(Buffer.from(String(message.headers.signature).split('.')[0] ?? '', 'base64url').toString('utf8')) as Record<string, unknown>;

describe('canonicalJson (RFC 8785)', () => {
  it('sorts members by UTF-16 code units, writes no whitespace, numbers and strings as ECMAScript does', () => {
    expect(canonicalJson({ b: [1, 'x', null, true], a: { d: 1e21, c: -0 }, '\u20ac': 1, '\r': 2 })).toBe('{"\\r":2,"a":{"c":0,"d":1e+21},"b":[1,"x",null,true],"€":1}');
    // RFC 8785 §3.2.3's example of key order: by UTF-16 code units, not code points
    expect(canonicalJson({ '\u{1F600}': 1, '\uFB33': 2 })).toBe('{"\u{1F600}":1,"\uFB33":2}');
    expect(canonicalJson({ at: new Date(0), skip: undefined, list: [undefined] })).toBe('{"at":"1970-01-01T00:00:00.000Z","list":[null]}');
  });

  it('is the same for a value and its re-serialisation with other key order and spacing', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        const reordered = JSON.parse(JSON.stringify(value, null, 2)) as unknown;
        expect(canonicalJson(reordered)).toBe(canonicalJson(value));
        expect(JSON.parse(canonicalJson(value))).toEqual(JSON.parse(JSON.stringify(value)));
      }),
    );
  });

  it('refuses what has no JSON form: non-finite numbers, BigInt, cycles, bytes', () => {
    const cycle: Record<string, unknown> = {};
    cycle.self = cycle;
    for (const value of [{ n: Number.NaN }, [Number.POSITIVE_INFINITY], { n: 1n }, cycle, { b: new Uint8Array(2) }]) expect(() => canonicalJson(value)).toThrow(CanonicalJsonError);
  });
});

describe('signature keys', () => {
  it('refuse a short HMAC secret and a key of another type than the algorithm', () => {
    expect(() => hmacKey('too short')).toThrow(KeyringError);
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    expect(() => ed25519Key({ privateKey: ec.privateKey })).toThrow(/Ed25519/);
    expect(() => es256Key({ publicKey: generateKeyPairSync('ed25519').publicKey })).toThrow(/P-256/);
    expect(() => es256Key({ publicKey: generateKeyPairSync('ec', { namedCurve: 'P-384' }).publicKey })).toThrow(/P-256/);
  });

  it('never show their material', () => {
    const key = hmacKey('s'.repeat(40));
    expect(`${String(key)} ${JSON.stringify(key)}`).not.toContain('sss');
    expect(generateSignatureKey('EdDSA').publicOnly().canSign).toBe(false);
  });
});

describe.each<SignatureAlgorithm>(['HS256', 'EdDSA', 'ES256'])('signMessage / verifyMessage with %s', (alg) => {
  const key = generateSignatureKey(alg);
  const signing = ring(key);
  const verifying = ring(key.publicOnly());

  it('round-trips: the verified message carries the signer, and what the signature said', async () => {
    const message = createMessage({ deviceId: 'd1', temperature: 21.5 }, { headers: { deviceId: 'd1', seq: 7 } });
    const signed = await signMessage(message, { keys: signing, headers: ['seq', 'deviceId'] });
    expect(protectedOf(signed)).toMatchObject({ alg, kid: 'k1', b64: false, crit: ['b64'], jti: message.id, hdrs: ['deviceId', 'seq'], body: 'json' });
    const { message: verified, signature } = await verifyMessage(signed, { keys: verifying, headers: ['deviceId'] });
    expect(verified.body).toEqual(message.body);
    expect(verified.headers['x-interchange-signer']).toBe('k1');
    expect(signature).toMatchObject({ keyId: 'k1', alg, signatureId: message.id, signedHeaders: ['deviceId', 'seq'] });
  });

  it('verifies a JSON body re-serialised by a hop (other key order, as text or bytes, header values as strings)', async () => {
    const signed = await signMessage(createMessage({ b: 2, a: [1, { y: 'é', x: null }] }, { headers: { seq: 7, flag: true } }), { keys: signing, headers: ['seq', 'flag'] });
    const text = '{ "a": [1, {"x": null, "y": "é"}],\n "b": 2 }';
    for (const body of [text, Buffer.from(text)]) {
      const hop: Message = { id: 'fresh-id-from-the-broker', headers: { ...signed.headers, seq: '7', flag: 'true' }, body };
      const { message } = await verifyMessage(hop, { keys: verifying });
      expect(message.body).toEqual({ a: [1, { x: null, y: 'é' }], b: 2 }); // passed on parsed, as checked
    }
  });

  it('signs bytes and text as their bytes', async () => {
    const signed = await signMessage(createMessage(Buffer.from([0, 1, 2, 255])), { keys: signing });
    expect(protectedOf(signed).body).toBe('bytes');
    await expect(verifyMessage(signed, { keys: verifying })).resolves.toBeDefined();
    const text = await signMessage(createMessage('héllo'), { keys: signing });
    await expect(verifyMessage({ ...text, body: Buffer.from('héllo') }, { keys: verifying })).resolves.toBeDefined();
    await expect(verifyMessage({ ...text, body: 'hallo' }, { keys: verifying })).rejects.toThrow(SignatureInvalidError);
  });
});

describe('verifyMessage checks', () => {
  const key = generateSignatureKey('HS256');
  const keys = ring(key);

  it('refuses unsigned, expired, future-dated messages, unsigned required headers and a signer bindTo refuses', async () => {
    const now = 1_700_000_000_000;
    const message = createMessage({ n: 1 }, { headers: { deviceId: 'd1' } });
    await expect(verifyMessage(message, { keys })).rejects.toThrow(SignatureMissingError);
    const old = await signMessage(message, { keys, now: () => now - 331_000 });
    await expect(verifyMessage(old, { keys, now: () => now })).rejects.toThrow(SignatureExpiredError);
    await expect(verifyMessage(old, { keys, now: () => now, maxAgeMs: 301_000 })).resolves.toBeDefined(); // 301 s + 30 s of skew
    const ahead = await signMessage(message, { keys, now: () => now + 31_000 });
    await expect(verifyMessage(ahead, { keys, now: () => now })).rejects.toThrow(SignatureFutureDatedError);
    const signed = await signMessage(message, { keys });
    await expect(verifyMessage(signed, { keys, headers: ['deviceId'] })).rejects.toMatchObject({ reason: 'header-not-signed' });
    const bound = await signMessage(message, { keys, headers: ['deviceId'] });
    await expect(verifyMessage(bound, { keys, bindTo: (m, kid) => m.headers.deviceId === kid })).rejects.toThrow(SignerMismatchError);
    await expect(verifyMessage(bound, { keys, bindTo: (m, kid) => m.headers.deviceId === 'd1' && kid === 'k1' })).resolves.toBeDefined();
  });

  it('checkReplay accepts a signature id once', async () => {
    const store = new MemoryIdempotencyStore();
    const signed = await signMessage(createMessage({ n: 1 }), { keys });
    await checkReplay(await verifyMessage(signed, { keys }), store);
    await expect(checkReplay(await verifyMessage(signed, { keys }), store)).rejects.toThrow(ReplayedMessageError);
  });

  it('signing fails permanently for a body with no canonical form, transiently for a key that cannot sign', async () => {
    await expect(signMessage(createMessage({ n: Number.NaN }), { keys })).rejects.toMatchObject({ name: 'SigningError', permanent: true });
    const publicOnly = generateSignatureKey('EdDSA').publicOnly();
    await expect(signMessage(createMessage({ n: 1 }), { keys: () => ring(publicOnly) })).rejects.toThrow(SigningError);
  });
});

describe('standard JWS (interoperability)', () => {
  it('jose verifies our HS256 and EdDSA signatures as detached unencoded-payload JWS, and we verify jose-made ones', async () => {
    for (const alg of ['HS256', 'EdDSA'] as const) {
      const key = generateSignatureKey(alg);
      const message = createMessage({ b: 1, a: 'x' }, { headers: { deviceId: 'd9' } });
      const signed = await signMessage(message, { keys: ring(key), headers: ['deviceId'] });
      const [head = '', , signature = ''] = String(signed.headers.signature).split('.');
      const payload = `["d9"]\n{"a":"x","b":1}`; // the documented payload: signed header values, newline, canonical body
      const material = key.verifyingMaterial;
      if (material === undefined) throw new Error('no key');
      await expect(flattenedVerify({ protected: head, payload, signature }, material, { algorithms: [alg] })).resolves.toBeDefined();
      // and the other way: a device using plain jose
      const made = await new FlattenedSign(new TextEncoder().encode(payload))
        .setProtectedHeader({ alg, b64: false, crit: ['b64'], kid: 'k1', ts: Date.now(), jti: 'device-1', hdrs: ['deviceId'], body: 'json' })
        .sign(key.signingMaterial as NonNullable<typeof material>);
      await expect(verifyMessage({ ...message, headers: { ...message.headers, signature: `${made.protected}..${made.signature}` } }, { keys: ring(key) })).resolves.toBeDefined();
    }
  });

  it('a constrained device can sign HS256 with nothing but an HMAC', async () => {
    const secret = Buffer.alloc(32, 7);
    const head = Buffer.from(JSON.stringify({ alg: 'HS256', b64: false, crit: ['b64'], kid: 'dev-7', ts: Date.now(), jti: 'r-1', hdrs: [], body: 'json' })).toString('base64url');
    const mac = createHmac('sha256', secret).update(`${head}.[]\n{"t":20}`).digest('base64url');
    const message: Message = { id: 'x', headers: { signature: `${head}..${mac}` }, body: { t: 20 } };
    await expect(verifyMessage(message, { keys: new Keyring([{ id: 'dev-7', key: hmacKey(secret) }]) })).resolves.toBeDefined();
  });
});
