// Adversarial tests of `.verify()`: every forged, tampered, stale or replayed message goes through a real
// route (memory channels, a dead-letter channel, a counting process step) and must be 100 % dead-lettered
// WITH its reason (`x-interchange-signature-rejected`, `x-interchange-error-code`) and 0 % processed.
import { createHmac, generateKeyPairSync } from 'node:crypto';
import fc from 'fast-check';
import { FlattenedSign } from 'jose';
import { describe, expect, it } from 'vitest';
import { createMessage, DeadLetterHeaders, type Message } from '../../../src/core/index.ts';
import { from } from '../../../facade/route-builder.ts';
import { startTestIntegration } from '../../../facade/testing/index.ts';
import { canonicalJson, generateSignatureKey, Keyring, signMessage, type SignatureKey, type SignatureRejection, type VerifyStepOptions } from '../../../facade/security/index.ts';

const REJECTED = 'x-interchange-signature-rejected';
const ring = (key: SignatureKey, id: string): Keyring<SignatureKey> => new Keyring([{ id, key }]);

const hs = generateSignatureKey('HS256');
const ed = generateSignatureKey('EdDSA');
const es = generateSignatureKey('ES256');
const held = new Map<string, SignatureKey>([
  ['k-hs', hs],
  ['k-ed', ed.publicOnly()],
  ['k-es', es.publicOnly()],
]);
const SIGNED_HEADERS = ['deviceId', 'site'];
const verifierOptions: VerifyStepOptions<unknown> = { keys: (kid) => held.get(kid), headers: ['deviceId'] };

const reading = (n: number): Message => createMessage({ deviceId: `d${n % 7}`, temperature: 20 + (n % 10), seq: n }, { headers: { deviceId: `d${n % 7}`, site: 'plant-1' } });
const signWith = (message: Message, key: SignatureKey, kid: string, now?: () => number): Promise<Message> =>
  signMessage(message, { keys: ring(key, kid), headers: SIGNED_HEADERS, ...(now === undefined ? {} : { now }) });
const signedBatch = (count: number, key: SignatureKey = hs, kid = 'k-hs'): Promise<Message[]> => Promise.all(Array.from({ length: count }, (_, n) => signWith(reading(n), key, kid)));

const signatureOf = (message: Message): string => String(message.headers.signature);
const withSignature = (message: Message, signature: string): Message => ({ ...message, headers: { ...message.headers, signature } });
const withHeader = (message: Message, name: string, value: string | undefined): Message => ({ ...message, headers: { ...message.headers, [name]: value } });
const headerPart = (message: Message): Record<string, unknown> => JSON.parse(Buffer.from(signatureOf(message).split('.')[0] ?? '', 'base64url').toString('utf8')) as Record<string, unknown>;
const encodeHeader = (header: Record<string, unknown>): string => Buffer.from(JSON.stringify(header)).toString('base64url');
const B64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

/** `text` with bit `bit` (0–6: stays a 7-bit character) of the character at `index` flipped. */
const flipChar = (text: string, index: number, bit: number): string => text.slice(0, index) + String.fromCharCode(text.charCodeAt(index) ^ (1 << bit)) + text.slice(index + 1);

interface Outcome {
  readonly processed: readonly Message[];
  readonly dead: readonly Message[];
}

/** Sends `messages` through `from('memory:in').verify(…).process(count).to('memory:out')` with a dead-letter channel; resolves once every one is accounted for. */
async function throughVerifier(messages: readonly Message[], options: VerifyStepOptions<unknown> = verifierOptions): Promise<Outcome> {
  const processed: Message[] = [];
  const { kit, stop } = await startTestIntegration({
    routes: [
      from('memory:in', { id: 'verifier' })
        .verify(options)
        .process((message) => {
          processed.push(message);
        })
        .to('memory:out')
        .deadLetterChannel('memory:dlq'),
    ],
  });
  try {
    const dlq = kit.mock('memory:dlq');
    kit.mock('memory:out');
    for (let index = 0; index < messages.length; index += 500) await kit.sendMessages('memory:in', messages.slice(index, index + 500));
    await expect.poll(() => processed.length + dlq.received.length, { timeout: 60_000 }).toBe(messages.length);
    return { processed, dead: [...dlq.received] };
  } finally {
    await stop();
  }
}

/** 100 % dead-lettered, each with a signature reason among `reasons` and a SIGNATURE_* code; 0 processed. */
function expectAllRejected(outcome: Outcome, count: number, reasons: readonly SignatureRejection[]): void {
  expect(outcome.processed).toHaveLength(0);
  expect(outcome.dead).toHaveLength(count);
  for (const dead of outcome.dead) {
    expect(reasons).toContain(dead.headers[REJECTED]);
    expect(String(dead.headers[DeadLetterHeaders.code])).toMatch(/^SIGNATURE_/);
    const signature = signatureOf(dead).split('.')[2] ?? '';
    if (signature.length >= 8) expect(String(dead.headers[DeadLetterHeaders.error])).not.toContain(signature); // no signature in the reason
  }
}

const ANY: readonly SignatureRejection[] = ['malformed', 'mismatch', 'header-not-signed', 'unknown-key', 'algorithm-not-allowed', 'expired', 'future-dated', 'signer-mismatch'];

describe('signing, adversarial: tampering', () => {
  it('a bit flipped anywhere in a JSON body (fast-check): every message rejected as a mismatch, none processed', async () => {
    const cases = fc.sample(fc.tuple(fc.dictionary(fc.string({ minLength: 1, maxLength: 8 }), fc.jsonValue({ maxDepth: 2 }), { minKeys: 1 }).filter((body) => !/"(__proto__|constructor)"/.test(JSON.stringify(body))), fc.nat(), fc.integer({ min: 0, max: 7 })), { numRuns: 300, seed: 20 }); // the signer refuses prototype keys
    const forged: Message[] = [];
    for (const [body, position, bit] of cases) {
      const signed = await signWith(createMessage(body, { headers: { deviceId: 'd1' } }), hs, 'k-hs');
      const text = Buffer.from(canonicalJson(body));
      text[position % text.length] = (text[position % text.length] as number) ^ (1 << bit);
      let tampered: unknown = text; // unparseable: arrives as the bytes a broker would carry
      try {
        tampered = JSON.parse(text.toString('utf8'));
        if (canonicalJson(tampered) === canonicalJson(body)) continue; // the same JSON value (e.g. 1e+21 → 1E+21): not a change
      } catch {
        // keep the bytes
      }
      forged.push({ ...signed, body: tampered });
    }
    expect(forged.length).toBeGreaterThan(250);
    expectAllRejected(await throughVerifier(forged), forged.length, ['mismatch']);
  });

  it('a bit flipped in a byte body (fast-check): rejected as a mismatch', async () => {
    const cases = fc.sample(fc.tuple(fc.uint8Array({ minLength: 1, maxLength: 64 }), fc.nat(), fc.integer({ min: 0, max: 7 })), { numRuns: 200, seed: 21 });
    const forged = await Promise.all(
      cases.map(async ([bytes, position, bit]) => {
        const signed = await signWith(createMessage(Buffer.from(bytes), { headers: { deviceId: 'd1' } }), hs, 'k-hs');
        const flipped = Buffer.from(bytes);
        flipped[position % flipped.length] = (flipped[position % flipped.length] as number) ^ (1 << bit);
        return { ...signed, body: flipped };
      }),
    );
    expectAllRejected(await throughVerifier(forged), forged.length, ['mismatch']);
  });

  it('a bit flipped in each signed header, or the header removed: rejected as a mismatch', async () => {
    const signed = await signedBatch(100);
    const forged = signed.flatMap((message, n) =>
      SIGNED_HEADERS.flatMap((name) => {
        const value = String(message.headers[name]);
        return [withHeader(message, name, flipChar(value, n % value.length, n % 7)), ...(name === 'site' ? [withHeader(message, name, undefined)] : [])];
      }),
    );
    // a required signed header removed reads as absent (null) in the payload: also a mismatch
    expectAllRejected(await throughVerifier(forged), forged.length, ['mismatch']);
  });

  it('a bit flipped in the signature, in each algorithm: rejected (mismatch, or malformed where no longer base64url)', async () => {
    const signed = [...(await signedBatch(100)), ...(await signedBatch(50, ed, 'k-ed')), ...(await signedBatch(50, es, 'k-es'))];
    const forged = signed.map((message, n) => {
      const [head, , signature = ''] = signatureOf(message).split('.');
      const index = (n * 7) % signature.length;
      const current = B64URL.indexOf(signature.charAt(index));
      const replaced = B64URL.charAt((current + 1 + (n % 63)) % 64);
      return withSignature(message, `${head}..${signature.slice(0, index)}${replaced}${signature.slice(index + 1)}`);
    });
    expectAllRejected(await throughVerifier(forged), forged.length, ['mismatch']);
  });

  it('any bit flipped anywhere in the signature header (fast-check): rejected, whatever the reason', async () => {
    const signed = await signedBatch(50);
    const cases = fc.sample(fc.tuple(fc.nat(), fc.nat(), fc.integer({ min: 0, max: 6 })), { numRuns: 300, seed: 22 });
    const forged = cases.map(([which, position, bit]) => {
      const message = signed[which % signed.length] as Message;
      const value = signatureOf(message);
      return withSignature(message, flipChar(value, position % value.length, bit));
    });
    expectAllRejected(await throughVerifier(forged), forged.length, ANY);
  });

  it('a changed protected header (time, id, key id, signed headers, body form), re-encoded: rejected', async () => {
    const signed = await signedBatch(60);
    const changes: ((header: Record<string, unknown>) => Record<string, unknown>)[] = [
      (header) => ({ ...header, ts: Number(header.ts) + 1 }),
      (header) => ({ ...header, jti: `${String(header.jti)}x` }),
      (header) => ({ ...header, hdrs: ['deviceId'] }),
      (header) => ({ ...header, body: 'bytes' }),
      (header) => ({ ...header, b64: true, crit: undefined }),
      (header) => ({ ...header, crit: ['b64', 'exp'] }),
    ];
    const forged = signed.map((message, n) => {
      const change = changes[n % changes.length] as (header: Record<string, unknown>) => Record<string, unknown>;
      return withSignature(message, `${encodeHeader(change(headerPart(message)))}..${signatureOf(message).split('.')[2] ?? ''}`);
    });
    expectAllRejected(await throughVerifier(forged), forged.length, ['mismatch', 'malformed']);
  });

  it("a signature taken from another message (another body, or another device's headers): rejected as a mismatch", async () => {
    const signed = await signedBatch(101);
    const forged = signed.slice(1).map((message, n) => withSignature(message, signatureOf(signed[n] as Message)));
    expectAllRejected(await throughVerifier(forged), forged.length, ['mismatch']);
  });

  it('a truncated signature header: rejected', async () => {
    const signed = await signedBatch(100);
    const forged = signed.map((message, n) => withSignature(message, signatureOf(message).slice(0, Math.max(1, signatureOf(message).length - 1 - (n % 60)))));
    expectAllRejected(await throughVerifier(forged), forged.length, ['mismatch', 'malformed']);
  });

  it('unsigned messages, and an empty signature header: rejected as missing', async () => {
    const forged = Array.from({ length: 100 }, (_, n) => (n % 2 === 0 ? reading(n) : withSignature(reading(n), '')));
    expectAllRejected(await throughVerifier(forged), forged.length, ['missing']);
  });
});

describe('signing, adversarial: algorithms and keys', () => {
  it('alg: none (any spelling), with or without a signature: rejected as algorithm-not-allowed', async () => {
    const signed = await signedBatch(80);
    const forged = signed.map((message, n) => {
      const header = { ...headerPart(message), alg: ['none', 'None', 'NONE', 'nOnE'][n % 4] };
      return withSignature(message, `${encodeHeader(header)}..${n % 2 === 0 ? '' : 'AAAA'}`);
    });
    expectAllRejected(await throughVerifier(forged), forged.length, ['algorithm-not-allowed']);
  });

  it('algorithm confusion: HS256 keyed with a public key (PEM, DER, JWK bytes) under that key id, RS256 under an HMAC key id, ES256 under an EdDSA key id: rejected as algorithm-not-allowed', async () => {
    const publicKeys: [string, SignatureKey][] = [
      ['k-ed', ed],
      ['k-es', es],
    ];
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const forged: Message[] = [];
    for (let n = 0; n < 30; n += 1) {
      for (const [kid, key] of publicKeys) {
        const publicKey = key.verifyingMaterial;
        if (publicKey === undefined) throw new Error('no public key');
        for (const secret of [publicKey.export({ format: 'pem', type: 'spki' }), publicKey.export({ format: 'der', type: 'spki' }), Buffer.from(JSON.stringify(publicKey.export({ format: 'jwk' })))]) {
          const message = reading(n);
          const head = encodeHeader({ alg: 'HS256', b64: false, crit: ['b64'], kid, ts: Date.now(), jti: message.id, hdrs: SIGNED_HEADERS, body: 'json' });
          const payload = `${JSON.stringify([message.headers.deviceId, message.headers.site])}\n${canonicalJson(message.body)}`;
          forged.push(withSignature(message, `${head}..${createHmac('sha256', secret).update(`${head}.${payload}`).digest('base64url')}`));
        }
      }
      const message = reading(n);
      const payload = new TextEncoder().encode(`${JSON.stringify([message.headers.deviceId, message.headers.site])}\n${canonicalJson(message.body)}`);
      const rs = await new FlattenedSign(payload).setProtectedHeader({ alg: 'RS256', b64: false, crit: ['b64'], kid: 'k-hs', ts: Date.now(), jti: message.id, hdrs: SIGNED_HEADERS, body: 'json' }).sign(rsa.privateKey);
      forged.push(withSignature(message, `${rs.protected}..${rs.signature}`));
      const attacker = generateSignatureKey('ES256');
      const swapped = await signWith(reading(n), attacker, 'k-ed'); // an ES256 signature claiming the EdDSA key
      forged.push(swapped);
    }
    expectAllRejected(await throughVerifier(forged), forged.length, ['algorithm-not-allowed']);
  });

  it("an unknown key id is rejected as unknown-key; the attacker's own key under a held key id, as a mismatch", async () => {
    const attacker = generateSignatureKey('HS256');
    const unknown = await signedBatch(60, attacker, 'k-attacker');
    const impostor = await signedBatch(60, attacker, 'k-hs');
    const outcome = await throughVerifier([...unknown, ...impostor]);
    expectAllRejected(outcome, 120, ['unknown-key', 'mismatch']);
    expect(outcome.dead.filter((message) => message.headers[REJECTED] === 'unknown-key')).toHaveLength(60);
  });
});

describe('signing, adversarial: time and replay', () => {
  it('expired, and future-dated beyond the tolerance: rejected with those reasons', async () => {
    const now = Date.now();
    const expired = await Promise.all(Array.from({ length: 50 }, (_, n) => signWith(reading(n), hs, 'k-hs', () => now - 60_000 - 5_000 - 1_000 * (n + 1))));
    const ahead = await Promise.all(Array.from({ length: 50 }, (_, n) => signWith(reading(n), hs, 'k-hs', () => now + 5_000 + 60_000 + 1_000 * n)));
    const outcome = await throughVerifier([...expired, ...ahead], { ...verifierOptions, maxAgeMs: 60_000, toleranceMs: 5_000 });
    expectAllRejected(outcome, 100, ['expired', 'future-dated']);
    expect(outcome.dead.filter((message) => message.headers[REJECTED] === 'expired')).toHaveLength(50);
  });

  it('replays: the same message sent twice at once is processed once; sent again after it succeeded, rejected as replayed', async () => {
    const signed = await signedBatch(100);
    const processed: Message[] = [];
    const { kit, stop } = await startTestIntegration({
      routes: [from('memory:in', { id: 'verifier' }).verify(verifierOptions).process((message) => void processed.push(message)).to('memory:out').deadLetterChannel('memory:dlq')],
    });
    try {
      const dlq = kit.mock('memory:dlq');
      kit.mock('memory:out');
      // twice at once: the second copy meets its twin's claim (in progress) or its record (replayed)
      await kit.sendMessages('memory:in', signed.flatMap((message) => [message, { ...message, id: `${message.id}-copy` }]));
      await expect.poll(() => processed.length + dlq.received.length, { timeout: 30_000 }).toBe(200);
      expect(processed).toHaveLength(100);
      expect(dlq.received.every((message) => ['SIGNATURE_REPLAYED', 'SIGNATURE_REPLAY_IN_PROGRESS'].includes(String(message.headers[DeadLetterHeaders.code])))).toBe(true);
      // again after every first copy was processed and confirmed
      await new Promise((resolve) => setTimeout(resolve, 200));
      await kit.sendMessages('memory:in', signed);
      await expect.poll(() => dlq.received.length, { timeout: 30_000 }).toBe(200);
      const replays = dlq.received.slice(100);
      expect(replays.every((message) => message.headers[REJECTED] === 'replayed' && message.headers[DeadLetterHeaders.code] === 'SIGNATURE_REPLAYED')).toBe(true);
      expect(processed).toHaveLength(100);
    } finally {
      await stop();
    }
  });
});

describe('signing, adversarial: key rotation mid-stream', () => {
  it('10,000 messages, the signer rotating from k1 to k2 half-way, 1,000 forgeries among them: every valid one processed, every forgery dead-lettered with its reason', async () => {
    const k1 = generateSignatureKey('HS256');
    const k2 = generateSignatureKey('HS256');
    let signing = ring(k1, 'k1');
    const verifying = ring(k1, 'k1').rotate({ id: 'k2', key: k2 }); // k2 active, k1 retiring: both verify
    const attacker = generateSignatureKey('HS256');
    const processed: Message[] = [];
    const { kit, stop } = await startTestIntegration({
      routes: [
        from('memory:raw', { id: 'signer' }).sign({ keys: () => signing, headers: ['deviceId'] }).to('memory:signed'),
        from('memory:signed', { id: 'verifier' }).verify({ keys: verifying, headers: ['deviceId'] }).process((message) => void processed.push(message)).to('memory:out').deadLetterChannel('memory:dlq'),
      ],
    });
    try {
      const dlq = kit.mock('memory:dlq');
      kit.mock('memory:out');
      const forgeries: ((n: number) => Promise<Message>)[] = [
        async (n) => ({ ...(await signWith(reading(n), k2, 'k2')), body: { deviceId: 'd1', temperature: 99, seq: n } }), // tampered body
        (n) => signWith(reading(n), attacker, 'k3'), // unknown key
        (n) => signWith(reading(n), attacker, 'k2'), // the active key id, another secret
        async (n) => withHeader(await signWith(reading(n), k1, 'k1'), 'deviceId', 'd-other'), // a retiring key's signature, header changed
        async (n) => withSignature(reading(n), `${encodeHeader({ alg: 'none', kid: 'k2', ts: Date.now(), jti: `f${n}`, hdrs: [], body: 'json' })}..`), // alg none
      ];
      for (let batch = 0; batch < 20; batch += 1) {
        if (batch === 10) signing = signing.rotate({ id: 'k2', key: k2 }); // the signer rotates mid-stream
        await kit.sendMessages('memory:raw', Array.from({ length: 500 }, (_, i) => reading(batch * 500 + i)));
        const forged = await Promise.all(Array.from({ length: 50 }, (_, i) => (forgeries[i % forgeries.length] as (n: number) => Promise<Message>)(batch * 50 + i)));
        await kit.sendMessages('memory:signed', forged);
      }
      await expect.poll(() => processed.length + dlq.received.length, { timeout: 120_000, interval: 100 }).toBe(11_000);
      expect(processed).toHaveLength(10_000);
      expect(new Set(processed.map((message) => (message.body as { seq: number }).seq)).size).toBe(10_000);
      const bySigner = new Map<string, number>();
      for (const message of processed) bySigner.set(String(message.headers['x-interchange-signer']), (bySigner.get(String(message.headers['x-interchange-signer'])) ?? 0) + 1);
      expect(bySigner.get('k1')).toBeGreaterThan(0);
      expect(bySigner.get('k2')).toBeGreaterThan(0);
      expectAllRejected({ processed: [], dead: dlq.received }, 1_000, ['mismatch', 'unknown-key', 'algorithm-not-allowed']);
      expect(processed.some((message) => message.headers['x-interchange-signer'] === 'k3')).toBe(false);
    } finally {
      await stop();
    }
  }, 180_000);
});
