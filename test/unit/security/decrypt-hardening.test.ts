// `.decrypt()` against the reviewer's findings: prototype keys in the unauthenticated outer body, a wrong-length
// KEK from a keys function, and where a failure after decryption dead-letters the clear value.
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createMessage, deadLetter, DeadLetterHeaders, InterchangeError } from '../../../src/core/index.ts';
import { from } from '../../../facade/route-builder.ts';
import { startTestIntegration } from '../../../facade/testing/index.ts';
import { decryptBody, encryptBody, Keyring, MalformedEnvelopeError } from '../../../facade/security/index.ts';

const keys = new Keyring([{ id: 'e1', key: randomBytes(32) }]);
const CARD = '4111111111111111';

describe('.decrypt(): findings', () => {
  it.each(['__proto__', 'constructor'])('fields mode: a %s key in the outer body (text) is refused as malformed, never passed on', (name) => {
    const sealed = encryptBody(createMessage({ card: CARD }), { keys, fields: ['/card'] });
    const text = JSON.stringify(sealed.body).replace('{', `{"${name}":{"isAdmin":true},`);
    expect(() => decryptBody({ ...sealed, body: text }, { keys, fields: ['/card'] })).toThrow(MalformedEnvelopeError);
    expect(() => decryptBody({ ...sealed, body: text }, { keys, fields: ['/card'] })).toThrow(/not allowed/);
  });

  it('a decrypted JSON value holding a __proto__ key is refused as malformed', () => {
    const sealed = encryptBody(createMessage(JSON.parse('{"__proto__":{"isAdmin":true},"n":1}') as unknown), { keys });
    expect(() => decryptBody(sealed, { keys })).toThrow(MalformedEnvelopeError);
  });

  it('a keys function returning a wrong-length KEK fails transiently (configuration), not as a permanent DecryptionFailedError', () => {
    const sealed = encryptBody(createMessage({ card: CARD }), { keys, fields: ['/card'] });
    const wrong = new Keyring([{ id: 'e1', key: randomBytes(16) }]);
    let thrown: unknown;
    try {
      decryptBody(sealed, { keys: () => wrong, fields: ['/card'] });
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(InterchangeError);
    expect((thrown as InterchangeError).code).toBe('ENCRYPTION_KEY_INVALID');
    expect((thrown as InterchangeError).permanent).toBe(false);
  });

  it('a failure after .decrypt() on a plain .deadLetterChannel() dead-letters the message as it came, still encrypted', async () => {
    const { kit, stop } = await startTestIntegration({
      routes: [
        from('memory:in-plain-dlc', { id: 'decrypting-plain' })
          .decrypt({ keys, fields: ['/card'] })
          .process(() => {
            throw Object.assign(new Error('downstream rejects'), { permanent: true });
          })
          .to('memory:out-plain-dlc')
          .deadLetterChannel('memory:dlq-plain'),
      ],
    });
    try {
      const dlq = kit.mock('memory:dlq-plain');
      await kit.sendMessages('memory:in-plain-dlc', [encryptBody(createMessage({ card: CARD }), { keys, fields: ['/card'] })]);
      const [dead] = await dlq.expect(1);
      expect(dead?.headers[DeadLetterHeaders.error]).toContain('downstream rejects');
      expect(JSON.stringify(dead)).not.toContain(CARD);
      expect(decryptBody(dead as never, { keys, fields: ['/card'] }).body).toEqual({ card: CARD }); // replayable
    } finally {
      await stop();
    }
  });

  it('a failure after .decrypt() dead-letters the message as it came, still encrypted, with prepareDeadLetter (original): no clear value in the dead letter', async () => {
    const { kit, stop } = await startTestIntegration({
      routes: [
        from('memory:in', { id: 'decrypting' })
          .decrypt({ keys, fields: ['/card'] })
          .process(() => {
            throw Object.assign(new Error('downstream rejects'), { permanent: true });
          })
          .to('memory:out')
          .onError(() => deadLetter(), { deadLetterUri: 'memory:dlq', prepareDeadLetter: (_failed, original) => original }),
      ],
    });
    try {
      const dlq = kit.mock('memory:dlq');
      await kit.sendMessages('memory:in', [encryptBody(createMessage({ card: CARD }), { keys, fields: ['/card'] })]);
      const [dead] = await dlq.expect(1);
      expect(dead?.headers[DeadLetterHeaders.error]).toContain('downstream rejects');
      expect(JSON.stringify(dead)).not.toContain(CARD);
      expect(decryptBody(dead as never, { keys, fields: ['/card'] }).body).toEqual({ card: CARD }); // replayable
    } finally {
      await stop();
    }
  });

  it('a base64url member whose last character has unused bits set (the same bytes, another text) is refused as not canonical, in every member and the header key-wrap tag', () => {
    const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    /** The same bytes with the last character's unused low bits set: 2 left over → 4 unused bits, 3 → 2. */
    const loose = (text: string): string => {
      const rest = text.length % 4;
      const last = ALPHABET.indexOf(text.slice(-1));
      return `${text.slice(0, -1)}${ALPHABET[last | (rest === 2 ? 0x0f : 0x03)] as string}`;
    };
    const sealed = encryptBody(createMessage({ card: CARD }), { keys });
    const envelope = sealed.body as Record<string, string>;
    const header = JSON.parse(Buffer.from(envelope.protected as string, 'base64url').toString('utf8')) as Record<string, unknown>;
    const variants: Record<string, string>[] = [];
    for (const member of ['protected', 'encrypted_key', 'iv', 'ciphertext', 'tag']) {
      const text = envelope[member] as string;
      if (text.length % 4 !== 0) variants.push({ ...envelope, [member]: loose(text) });
    }
    for (const member of ['iv', 'tag']) {
      const text = header[member] as string;
      if (text.length % 4 !== 0) variants.push({ ...envelope, protected: Buffer.from(JSON.stringify({ ...header, [member]: loose(text) })).toString('base64url') });
    }
    expect(variants.length).toBeGreaterThanOrEqual(4); // protected, encrypted_key, ciphertext, tag, header tag (12-byte ivs have no unused bits)
    for (const variant of variants) {
      expect(Buffer.from(JSON.stringify(variant)).equals(Buffer.from(JSON.stringify(envelope)))).toBe(false);
      expect(() => decryptBody(createMessage(variant, { id: sealed.id }), { keys })).toThrow(/not canonical base64url/);
    }
    expect(decryptBody(createMessage(envelope, { id: sealed.id }), { keys }).body).toEqual({ card: CARD });
  });
});
