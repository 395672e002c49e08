import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { decodeStanza, encodeStanza, ENVELOPE_NS, environment, validateXmppOptions, XmppConfigurationError, XmppDecodeError, xmppTarget, XmppUnencodableError } from '../../adapters/xmpp/index.ts';
import { xml } from '../../adapters/xmpp/xmpp-client.ts';
import { nestedDeeperThan } from '../../adapters/xmpp/xmpp-codec.ts';
import { createMessage, parseEndpoint } from '../../src/core/index.ts';

const settings = { envelope: 'interchange', maxStanzaBytes: 64 * 1024 } as const;
const trusted = { from: 'peer@localhost/a', trusted: true, own: false };

describe('xmpp codec', () => {
  it('round-trips id, typed headers and JSON, text and byte bodies between trusted peers; attempt only from the account itself', () => {
    const bodies = [
      createMessage({ orderId: 1, note: 'ünï <&> "q"' }, { headers: { 'x-n': 7, 'x-b': false, 'x-s': 'a, b', attempt: 4 } }),
      createMessage('plain <text> & more', { headers: { contentType: 'text/plain' } }),
      createMessage(Buffer.from([0, 1, 2, 255])),
    ];
    for (const message of bodies) {
      const stanza = encodeStanza(message, 'to@localhost', settings);
      const decoded = decodeStanza(stanza, trusted);
      expect(decoded?.intakeError).toBeUndefined();
      expect(decoded?.message.id).toBe(message.id);
      expect(decoded?.message.body).toEqual(message.body);
      const { attempt: _attempt, ...headers } = message.headers;
      expect(decoded?.message.headers).toEqual({ ...headers, xmppFrom: 'peer@localhost/a' });
    }
    const resent = encodeStanza(bodies[0] as never, 'me@localhost', { ...settings, attempt: 3 });
    expect(decodeStanza(resent, { from: 'me@localhost/x', trusted: true, own: true })?.message.headers.attempt).toBe(3);
    expect(decodeStanza(resent, trusted)?.message.headers.attempt).toBeUndefined();
  });

  it('an untrusted sender gets body only and a fresh id; a stanza without a body is no message', () => {
    const stanza = xml('message', { type: 'chat' }, xml('body', {}, '{"a":1}'), xml('interchange', { xmlns: ENVELOPE_NS, id: 'forged', body: 'json' }, '{"x-interchange-route":"r"}'));
    const decoded = decodeStanza(stanza, { from: 'x@localhost/r', trusted: false, own: false });
    expect(decoded?.message.id).not.toBe('forged');
    expect(decoded?.message.headers).toEqual({ xmppFrom: 'x@localhost/r' });
    expect(decoded?.message.body).toEqual({ a: 1 });
    expect(decodeStanza(xml('message', {}, xml('active', { xmlns: 'http://jabber.org/protocol/chatstates' })), trusted)).toBeUndefined();
  });

  it('a trusted envelope that is malformed is an intake error, never trusted partly', () => {
    for (const headers of ['[1]', '{"a":{"b":1}}', 'not json', JSON.stringify(Object.fromEntries(Array.from({ length: 300 }, (_, i) => [`h${i}`, i])))]) {
      const stanza = xml('message', {}, xml('body', {}, '1'), xml('interchange', { xmlns: ENVELOPE_NS, id: 'i', body: 'json' }, headers));
      const decoded = decodeStanza(stanza, trusted);
      expect(decoded?.intakeError).toBeInstanceOf(XmppDecodeError);
      expect(decoded?.message.id).not.toBe('i');
    }
  });

  it('refuses text XML 1.0 cannot carry and stanzas over maxStanzaBytes', () => {
    expect(() => encodeStanza(createMessage('a\u0000b', { headers: { contentType: 'text/plain' } }), 'to@localhost', settings)).toThrow(XmppUnencodableError);
    expect(() => encodeStanza(createMessage({ a: 1 }, { headers: { 'x-h': 'bad\uFFFE' } }), 'to@localhost', settings)).toThrow(XmppUnencodableError);
    expect(() => encodeStanza(createMessage('\uD800', { headers: { contentType: 'text/plain' } }), 'to@localhost', settings)).toThrow(XmppUnencodableError);
    expect(() => encodeStanza(createMessage('x'.repeat(70_000), { headers: { contentType: 'text/plain' } }), 'to@localhost', settings)).toThrow(/maxStanzaBytes/);
    // JSON escapes controls itself: a JSON body with them is fine
    expect(() => encodeStanza(createMessage({ s: 'a\u0000b' }), 'to@localhost', settings)).not.toThrow();
  });
});

describe('xmpp options and endpoints', () => {
  it('validates transport options, secrets masked', () => {
    expect(() => validateXmppOptions({ jid: 'a@localhost', password: 'hunter2', resourse: 'x' })).toThrow(/did you mean 'resource'/);
    expect(() => validateXmppOptions({ jid: 'a@localhost' })).toThrow(XmppConfigurationError);
    let text = '';
    try {
      validateXmppOptions({ jid: 'bad', password: 'hunter2' });
    } catch (error) {
      text = (error as Error).message;
    }
    expect(text).not.toContain('hunter2');
  });

  it('resolves xmpp:<jid>[/<resource>] with trust, from and envelope; refuses what is not a JID', () => {
    const target = xmppTarget(parseEndpoint('xmpp:Orders@LocalHost/desk?trust=a@localhost,B@localhost&from=c@localhost&envelope=none'));
    expect(target).toMatchObject({ bare: 'orders@localhost', resource: 'desk', jid: 'orders@localhost/desk', envelope: 'none' });
    expect([...target.trust]).toEqual(['a@localhost', 'b@localhost']);
    expect([...(target.from ?? [])]).toEqual(['c@localhost']);
    expect(() => xmppTarget(parseEndpoint('xmpp:no-local-part'))).toThrow(XmppConfigurationError);
    expect(() => xmppTarget(parseEndpoint('xmpp:a@localhost?deadLetter=a@localhost'))).toThrow(/cannot be the account itself/);
  });
});

describe('xmpp environment (interchange run)', () => {
  const context = (env: Record<string, string | undefined>, schemes: string[] = [], bound = false) => ({ env, schemes: new Set(schemes), isBound: () => bound });
  it('binds for xmpp: routes or XMPP_URL (redacted), nothing otherwise', async () => {
    expect((await environment.bind?.(context({ XMPP_JID: 'i@localhost' }, ['xmpp'])))?.announcement).toMatch(/xmpp:\/\/127\.0\.0\.1:5222 as i@localhost/);
    expect((await environment.bind?.(context({ XMPP_URL: 'xmpp://u:secret@chat.local:5222' })))?.announcement).not.toContain('secret');
    expect(await environment.bind?.(context({}, ['nats']))).toBeUndefined();
    expect(await environment.bind?.(context({}, ['xmpp'], true))).toBeUndefined();
  });
});

describe('SCRAM-SHA-1 Hi() replaced by node:crypto pbkdf2', () => {
  it('gives the bytes of the library\'s own definition (iterated WebCrypto HMAC-SHA-1)', async () => {
    const bitops = createRequire(createRequire(import.meta.url).resolve('@xmpp/sasl-scram-sha-1'))('sasl-scram-sha-1/lib/bitops') as {
      Hi: (text: string, salt: Uint8Array, iterations: number) => Promise<Uint8Array>;
      HMAC: (key: Uint8Array, message: Uint8Array) => Promise<Uint8Array>;
      XOR: (a: Uint8Array, b: Uint8Array) => Uint8Array;
      __interchangePbkdf2?: boolean;
    };
    await import('../../adapters/xmpp/xmpp-client.ts');
    expect(bitops.__interchangePbkdf2).toBe(true);
    const salt = Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8]);
    // RFC 5802 Hi(), written out as the library does it
    const key = new TextEncoder().encode('pässword');
    const first = new Uint8Array(salt.length + 4);
    first.set(salt);
    first.set([0, 0, 0, 1], salt.length);
    let u = await bitops.HMAC(key, first);
    let result = u;
    for (let i = 1; i < 500; i += 1) {
      u = await bitops.HMAC(key, u);
      result = bitops.XOR(result, u);
    }
    expect(Buffer.from(await bitops.Hi('pässword', salt, 500)).toString('hex')).toBe(Buffer.from(result).toString('hex'));
  });
});

describe('nestedDeeperThan', () => {
  it('measures depth without recursion: an element nested 100,000 deep (whose toString overflows the stack) is over 32; ours are not', () => {
    let deep = xml('x');
    for (let level = 1; level < 100_000; level += 1) deep = xml('x', {}, deep);
    expect(() => deep.toString()).toThrow(RangeError);
    expect(nestedDeeperThan(deep, 32)).toBe(true);
    const ours = encodeStanza(createMessage({ a: 1 }), 'a@localhost', settings);
    expect(nestedDeeperThan(ours, 32)).toBe(false);
    expect(nestedDeeperThan(ours, 1)).toBe(true);
  });
});
