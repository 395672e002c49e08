import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { createIntegration, createMessage, DeadLetterHeaders, from, InterchangeError, silentLogger, type Integration, type Message, type RouteSource } from '../../../facade/index.ts';
import { decryptBody, encryptBody, Keyring, type DecryptOptions, type Envelope } from '../../../facade/security/index.ts';
import { TestKit } from '../../../facade/testing/index.ts';

/*
 * Adversarial tests of envelope encryption: whatever an attacker does to an envelope, the decrypt step
 * rejects it — every message dead-lettered with a reason, none processed, none passed on.
 */

const k1 = randomBytes(32);
const k2 = randomBytes(32);
const keys = new Keyring([{ id: 'kek-1', key: k1 }]);
const rotated = keys.rotate({ id: 'kek-2', key: k2 });

const NAME = 'Ada Lovelace';
const CARD = '4111-1111-1111-1111';
const record = { patient: { name: NAME, ward: 7 }, card: CARD, amount: 100 };
const fields = ['/patient/name', '/card'];

const sealedBody = (body: unknown = record, id?: string): Message<Envelope> => encryptBody(createMessage(body, id === undefined ? {} : { id }), { keys }) as Message<Envelope>;
const sealedFields = (body: unknown = record): Message<{ patient: { name: Envelope; ward: number }; card: Envelope; amount: number }> =>
  encryptBody(createMessage(body), { keys, fields }) as Message<{ patient: { name: Envelope; ward: number }; card: Envelope; amount: number }>;
const b64 = (bytes: Buffer): string => bytes.toString('base64url');
const unb64 = (text: string): Buffer => Buffer.from(text, 'base64url');
const header = (envelope: Envelope): Record<string, unknown> => JSON.parse(unb64(envelope.protected).toString('utf8')) as Record<string, unknown>;
const withHeader = (envelope: Envelope, change: Record<string, unknown>): Envelope => ({ ...envelope, protected: b64(Buffer.from(JSON.stringify({ ...header(envelope), ...change }))) });

async function until(check: () => boolean): Promise<void> {
  for (let round = 0; round < 500 && !check(); round += 1) await new Promise((resolve) => setTimeout(resolve, 10));
}

/** `text` with one bit flipped: at `index % length`, bit `bit`. */
function flipped(text: string, index: number, bit: number): Buffer {
  const bytes = Buffer.from(text, 'utf8');
  const at = index % bytes.length;
  bytes[at] = (bytes[at] as number) ^ (1 << bit);
  return bytes;
}

describe('envelope encryption under attack (decrypt step in a route, dead-letter channel)', () => {
  let app: Integration | undefined;
  afterEach(async () => {
    await app?.stop({ drainTimeoutMs: 1_000 });
    app = undefined;
  });

  async function start(...routes: RouteSource[]): Promise<TestKit> {
    app = createIntegration({ routes, logger: silentLogger });
    await app.start();
    return new TestKit(app);
  }

  /**
   * Sends `messages` into a decrypt route (its options) and checks every one was dead-lettered with a
   * code and a reason, and none processed or passed on. Returns the dead letters.
   */
  async function expectAllRejected(messages: readonly Message[], options: DecryptOptions, codes?: readonly string[]): Promise<Message[]> {
    let processed = 0;
    const kit = await start(
      from('memory:sealed')
        .deadLetterChannel('memory:dlq')
        .decrypt(options)
        .process(() => {
          processed += 1;
        })
        .to('memory:clear'),
    );
    const dlq = kit.mock('memory:dlq');
    const clear = kit.mock('memory:clear');
    await kit.sendMessages('memory:sealed', messages);
    const dead = await dlq.expect(messages.length, { timeoutMs: 20_000 });
    expect(dead.map((m) => m.id).sort()).toEqual(messages.map((m) => m.id).sort());
    for (const letter of dead) {
      expect(letter.headers[DeadLetterHeaders.step]).toBe('decrypt-1');
      expect(String(letter.headers[DeadLetterHeaders.error] ?? '')).not.toBe('');
      if (codes !== undefined) expect(codes).toContain(letter.headers[DeadLetterHeaders.code]);
      else expect(['ENVELOPE_MALFORMED', 'ENVELOPE_UNSUPPORTED', 'ENCRYPTION_UNKNOWN_KEY', 'DECRYPTION_FAILED']).toContain(letter.headers[DeadLetterHeaders.code]);
    }
    expect(processed).toBe(0);
    expect(clear.received).toEqual([]);
    // the route counts a dead letter once its channel confirmed it, just after the mock saw it
    await until(() => app!.metrics()['memory:sealed']?.deadLettered === messages.length);
    expect(app!.metrics()['memory:sealed']).toMatchObject({ deadLettered: messages.length, retried: 0, completed: 0 });
    return dead;
  }

  it('a bit flipped anywhere in a whole-body envelope (its JSON, as a transport delivers it): 100 % rejected (property, 300 flips)', async () => {
    const original = sealedBody();
    const text = JSON.stringify(original.body);
    const flips = fc.sample(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 7 })), { numRuns: 300, seed: 20 });
    const messages = flips.map(([index, bit], n) => ({ id: original.id, headers: { ...original.headers, n }, body: flipped(text, index, bit) }));
    // every flip position is reached over the 300 (positions modulo the length)
    await expectAllRejected(messages, { keys });
  });

  it('a bit flipped in any member of a field envelope: rejected (property over member, position and bit)', () => {
    const original = sealedFields();
    const members = ['protected', 'encrypted_key', 'iv', 'ciphertext', 'tag'] as const;
    fc.assert(
      fc.property(fc.constantFrom(...members), fc.constantFrom('/card', '/patient/name'), fc.nat(), fc.integer({ min: 0, max: 7 }), (member, field, index, bit) => {
        const envelope = field === '/card' ? original.body.card : original.body.patient.name;
        const bad = { ...envelope, [member]: flipped(envelope[member], index, bit).toString('utf8') };
        const body = field === '/card' ? { ...original.body, card: bad } : { ...original.body, patient: { ...original.body.patient, name: bad } };
        let thrown: unknown;
        try {
          decryptBody({ ...original, body }, { keys, fields });
        } catch (error) {
          thrown = error;
        }
        return thrown instanceof InterchangeError && thrown.permanent && !thrown.message.includes(NAME) && !thrown.message.includes(CARD);
      }),
      { numRuns: 2_000, seed: 21 },
    );
  });

  it('field envelopes with flipped bits, through the route: 100 % dead-lettered, 0 processed', async () => {
    const messages = fc.sample(fc.tuple(fc.constantFrom('protected', 'encrypted_key', 'iv', 'ciphertext', 'tag' as const), fc.nat(), fc.integer({ min: 0, max: 7 })), { numRuns: 100, seed: 22 }).map(([member, index, bit]) => {
      const original = sealedFields();
      const card = { ...original.body.card, [member]: flipped(original.body.card[member as keyof Envelope], index, bit).toString('utf8') };
      return { ...original, body: { ...original.body, card } };
    });
    await expectAllRejected(messages, { keys, fields });
  });

  it('truncated ciphertext, tag, wrapped key, iv or protected header (by characters and by whole bytes): rejected', async () => {
    const messages: Message[] = [];
    for (const member of ['ciphertext', 'tag', 'encrypted_key', 'iv', 'protected'] as const) {
      const original = sealedBody();
      const text = original.body[member];
      messages.push({ ...original, id: `${member}-chars`, body: { ...original.body, [member]: text.slice(0, -3) } });
      messages.push({ ...sealedBody(record, `${member}-bytes`), body: { ...sealedBody(record, `${member}-bytes`).body, [member]: b64(unb64(text).subarray(0, -1)) } });
      messages.push({ ...original, id: `${member}-empty`, body: { ...original.body, [member]: '' } });
    }
    const truncatedJson = sealedBody();
    messages.push({ ...truncatedJson, body: Buffer.from(JSON.stringify(truncatedJson.body)).subarray(0, 100) });
    await expectAllRejected(messages, { keys });
  });

  it('wrong key id, unknown key, or the same id with other key material: rejected with the reason', async () => {
    const stranger = new Keyring([{ id: 'kek-9', key: randomBytes(32) }]);
    const impostor = new Keyring([{ id: 'kek-1', key: randomBytes(32) }]);
    const unknown = encryptBody(createMessage(record), { keys: stranger });
    const sameIdOtherKey = encryptBody(createMessage(record), { keys: impostor });
    const relabelled = sealedBody();
    const relabelledToKnown = { ...relabelled, body: withHeader(relabelled.body, { kid: 'kek-2' }) };
    const dead = await expectAllRejected([unknown, sameIdOtherKey, relabelledToKnown], { keys: rotated });
    const byId = new Map(dead.map((m) => [m.id, m.headers[DeadLetterHeaders.code]]));
    expect(byId.get(unknown.id)).toBe('ENCRYPTION_UNKNOWN_KEY');
    expect(byId.get(sameIdOtherKey.id)).toBe('DECRYPTION_FAILED');
    expect(byId.get(relabelledToKnown.id)).toBe('DECRYPTION_FAILED');
    expect(String(dead.find((m) => m.id === unknown.id)?.headers[DeadLetterHeaders.error])).toContain("'kek-9'");
  });

  it('an envelope moved to another message, or to another field of the same message (AAD): rejected', async () => {
    const a = sealedBody();
    const b = createMessage({});
    const movedToOtherMessage = { ...b, body: a.body };
    const f = sealedFields();
    const swapped = { ...f, body: { ...f.body, card: f.body.patient.name, patient: { ...f.body.patient, name: f.body.card } } };
    const g = sealedFields();
    const fromOtherMessage = { ...g, body: { ...g.body, card: f.body.card } };
    await expectAllRejected([movedToOtherMessage], { keys }, ['DECRYPTION_FAILED']);
    await app?.stop();
    app = undefined;
    await expectAllRejected([swapped, fromOtherMessage], { keys, fields }, ['DECRYPTION_FAILED']);
  });

  it('nonce reuse attempt: an observed nonce and wrapped key reused with a modified or foreign ciphertext (and tag) — rejected', async () => {
    const seen = sealedBody({ amount: 100 });
    const other = sealedBody({ amount: 999 });
    // GCM is CTR underneath: flipping ciphertext bits flips the plaintext's — '1' → '9' in "amount":100 — the tag catches it
    const plain = Buffer.from(JSON.stringify({ amount: 100 }));
    const edited = unb64(seen.body.ciphertext);
    const at = plain.indexOf('1');
    edited[at] = (edited[at] as number) ^ 0x31 ^ 0x39;
    const malleated = { ...seen, id: 'malleated', body: { ...seen.body, ciphertext: b64(edited) } };
    const foreignCiphertext = { ...seen, id: 'foreign-ciphertext', body: { ...seen.body, ciphertext: other.body.ciphertext, tag: other.body.tag } };
    const reusedNonceAndKey = { ...other, body: { ...other.body, iv: seen.body.iv, encrypted_key: seen.body.encrypted_key, protected: seen.body.protected } };
    await expectAllRejected([malleated, foreignCiphertext, reusedNonceAndKey], { keys }, ['DECRYPTION_FAILED']);
  });

  it('by construction no nonce or data key repeats: 10,000 envelopes, 10,000 distinct content nonces, key-wrap nonces and wrapped keys', () => {
    const ivs = new Set<string>();
    const wrapIvs = new Set<string>();
    const wrapped = new Set<string>();
    const message = createMessage('same body, same message, same key');
    for (let n = 0; n < 10_000; n += 1) {
      const envelope = (encryptBody(message, { keys }) as Message<Envelope>).body;
      ivs.add(envelope.iv);
      wrapIvs.add(String(header(envelope).iv));
      wrapped.add(envelope.encrypted_key);
    }
    expect([ivs.size, wrapIvs.size, wrapped.size]).toEqual([10_000, 10_000, 10_000]);
  });

  it('downgrade: version, alg or enc changed, an unsupported header member added — refused; any other header edit fails authentication', async () => {
    const downgrades = [{ v: 0 }, { v: 2 }, { alg: 'dir' }, { alg: 'none' }, { alg: 'A128GCMKW' }, { alg: 'A256KW' }, { enc: 'A128GCM' }, { enc: 'A256CBC-HS512' }, { zip: 'DEF' }, { crit: ['exp'] }];
    const messages: Message[] = downgrades.map((change, n) => {
      const original = sealedBody(record, `downgrade-${n}`);
      return { ...original, body: withHeader(original.body, change) };
    });
    await expectAllRejected(messages, { keys }, ['ENVELOPE_UNSUPPORTED']);
    await app?.stop();
    app = undefined;
    const edits = [{ kind: 'text' }, { cty: 'text/plain' }];
    const edited: Message[] = edits.map((change, n) => {
      const original = sealedBody(record, `edit-${n}`);
      return { ...original, body: withHeader(original.body, change) };
    });
    await expectAllRejected(edited, { keys }, ['DECRYPTION_FAILED']);
  });

  it('size bound: an envelope over maxEnvelopeBytes, or an oversize text body, is refused before any decryption', async () => {
    const big = sealedBody({ blob: 'x'.repeat(20_000) });
    const text = sealedBody();
    await expectAllRejected([big, { ...text, body: `${JSON.stringify(text.body)}${' '.repeat(20_000)}` }], { keys, maxEnvelopeBytes: 10_000 }, ['ENVELOPE_MALFORMED']);
  });

  it('the clear values never appear in the dead letter of a failed decrypt (one field decrypted, the next one tampered)', async () => {
    const f = sealedFields();
    const tag = unb64(f.body.card.tag);
    tag[0] = (tag[0] as number) ^ 1;
    const tampered = { ...f, body: { ...f.body, card: { ...f.body.card, tag: b64(tag) } } };
    const [dead] = await expectAllRejected([tampered], { keys, fields }, ['DECRYPTION_FAILED']);
    const serialised = JSON.stringify(dead);
    expect(serialised).not.toContain(NAME);
    expect(serialised).not.toContain(CARD);
    expect(serialised).not.toContain('Lovelace');
    expect(dead!.body).toEqual(tampered.body);
  });

  it('key rotated mid-stream of 10,000 messages: the encryptor switches keyrings at message 5,000, the decryptor holds both — 0 failures, 0 corrupted fields', async () => {
    // read once per message by the encryptor: messages 1–5,000 get kek-1, 5,001–10,000 the rotated keyring's kek-2
    let encrypted = 0;
    const current = (): Keyring<Buffer> => (++encrypted <= 5_000 ? keys : rotated);
    const processed: unknown[] = [];
    const kit = await start(
      from('memory:plain').encrypt({ keys: current, fields }).to('memory:sealed'),
      from('memory:sealed')
        .deadLetterChannel('memory:dlq')
        .decrypt({ keys: rotated, fields })
        .process((m) => {
          processed.push(m.body);
        })
        .to('memory:clear'),
    );
    const wire = kit.mock<{ card: Envelope }>('memory:sealed');
    const clear = kit.mock<typeof record>('memory:clear');
    const dlq = kit.mock('memory:dlq');
    const bodies = Array.from({ length: 10_000 }, (_, n) => ({ patient: { name: `patient ${n}`, ward: n % 13 }, card: `card-${n}`, amount: n }));
    for (let n = 0; n < bodies.length; n += 500) {
      await kit.sendAll('memory:plain', bodies.slice(n, n + 500));
    }
    const out = await clear.expect(10_000, { timeoutMs: 60_000 });
    expect(dlq.received).toHaveLength(0);
    expect(processed).toHaveLength(10_000);
    const byAmount = new Map(out.map((m) => [m.body.amount, m.body]));
    const corrupted = bodies.filter((body) => JSON.stringify(byAmount.get(body.amount)) !== JSON.stringify(body));
    expect(corrupted).toHaveLength(0);
    const kids = wire.received.map((m) => String(header(m.body.card).kid));
    expect(kids.filter((kid) => kid === 'kek-1')).toHaveLength(5_000);
    expect(kids.filter((kid) => kid === 'kek-2')).toHaveLength(5_000);
    await until(() => app!.metrics()['memory:sealed']?.completed === 10_000);
    expect(app!.metrics()['memory:sealed']).toMatchObject({ deadLettered: 0, completed: 10_000 });
  });
});
