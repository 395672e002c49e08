import type { Subscription } from 'rxjs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ENVELOPE_NS, XmppAuthenticationError, XmppConfigurationError, XmppDecodeError, XmppUnencodableError, xmppModule, type XmppTransport } from '../../adapters/xmpp/index.ts';
import { xml, xmppClient, type XmlElement, type XmppClient } from '../../adapters/xmpp/xmpp-client.ts';
import { createMessage, NotConnectedError, parseEndpoint, PartialPublishError, type Delivery, type Message } from '../../src/core/index.ts';
import { from } from '../../facade/route-builder.ts';
import { startTestIntegration } from '../../facade/testing/index.ts';
import { sleep, until } from '../support/wait.ts';
import { deleteAccounts, PUBLISHER, registerAccount, requireProsody, runTag, TEST_PASSWORD, testTransport, XMPP_SERVICE } from './xmpp-support.ts';

// Against the machine's Prosody (scripts/prosody/setup.sh; fails, never skips, when it is down).
// Every test registers accounts of its own (hx-adapter-<run>-*), deleted afterwards.
const run = runTag('adapter');
const accounts = new Set<string>();
const transports: XmppTransport[] = [];
const peers: XmppClient[] = [];
const subscriptions: Subscription[] = [];
let counter = 0;

const account = (label: string): string => {
  const jid = registerAccount(`${run}-${label}-${(counter += 1)}`);
  accounts.add(jid);
  return jid;
};

async function transport(options: Parameters<typeof testTransport>[0] = {}): Promise<XmppTransport> {
  const created = testTransport(options);
  transports.push(created);
  await created.connect();
  return created;
}

function collect(via: XmppTransport, uri: string, settle: (delivery: Delivery) => void = (delivery) => delivery.ack(), prefetch = 100): Delivery[] {
  const got: Delivery[] = [];
  subscriptions.push(
    via.consume(parseEndpoint(uri), { prefetch }).subscribe((delivery) => {
      got.push(delivery);
      settle(delivery);
    }),
  );
  return got;
}

/** A plain XMPP client (not Interchange) logged in as `jid`, available, collecting the messages it gets. */
async function peer(jid: string, password = TEST_PASSWORD): Promise<{ client: XmppClient; received: XmlElement[] }> {
  const [local = '', domain = ''] = jid.split('@');
  const client = xmppClient({ service: XMPP_SERVICE, domain, username: local, password, resource: 'peer' });
  const received: XmlElement[] = [];
  client.on('stanza', (stanza) => {
    if (stanza.is('message')) received.push(stanza);
  });
  peers.push(client);
  await client.start();
  await client.send(xml('presence'));
  return { client, received };
}

const numbered = (count: number): Message[] => Array.from({ length: count }, (_, index) => createMessage({ n: index }, { headers: { 'x-test': `m${index}` } }));

beforeAll(async () => {
  await requireProsody();
});
afterEach(async () => {
  for (const subscription of subscriptions.splice(0)) subscription.unsubscribe();
  for (const created of transports.splice(0)) await created.close();
  for (const client of peers.splice(0)) await client.stop().catch(() => undefined);
});
afterAll(() => {
  deleteAccounts(accounts);
});

describe('XmppTransport: options and endpoints', () => {
  it('refuses invalid transport options, a typo in an endpoint option (did you mean), a URI that is not a JID', async () => {
    expect(() => testTransport({ jid: 'no-domain', connectTimeoutMs: 0 })).toThrow(XmppConfigurationError);
    const xmpp = await transport();
    await expect(xmpp.publish(parseEndpoint('xmpp:orders@localhost?trsut=a@localhost'), numbered(1))).rejects.toThrow(/did you mean 'trust'/);
    await expect(xmpp.publish(parseEndpoint('xmpp:localhost'), numbered(1))).rejects.toThrow(XmppConfigurationError);
    await expect(xmpp.publish(parseEndpoint('xmpp:orders@localhost?envelope=soap'), numbered(1))).rejects.toThrow(XmppConfigurationError);
  });

  it('a consumer of an account it has no password for fails with XmppConfigurationError', async () => {
    const xmpp = await transport({ passwordFor: () => undefined });
    const errors: unknown[] = [];
    subscriptions.push(xmpp.consume(parseEndpoint('xmpp:stranger@localhost')).subscribe({ error: (error: unknown) => errors.push(error) }));
    expect(errors[0]).toBeInstanceOf(XmppConfigurationError);
  });
});

describe('XmppTransport: connecting', () => {
  it('wrong credentials reject at once with XmppAuthenticationError, without the password', async () => {
    // an unreachable server would be retried for 10 minutes: only an immediate failure ends this test in time
    const xmpp = testTransport({ password: 'wrong-password-hunter2', connectTimeoutMs: 600_000 });
    transports.push(xmpp);
    const error = await xmpp.connect().catch((thrown: unknown) => thrown);
    expect(error).toBeInstanceOf(XmppAuthenticationError);
    expect((error as XmppAuthenticationError).condition).toBe('not-authorized');
    expect(String((error as Error).message)).not.toContain('hunter2');
  });

  it('an unreachable server rejects with NotConnectedError after connectTimeoutMs', async () => {
    const xmpp = testTransport({ service: 'xmpp://127.0.0.1:1', connectTimeoutMs: 1_000 });
    transports.push(xmpp);
    await expect(xmpp.connect()).rejects.toThrow(NotConnectedError);
  });

  it('publish before connect rejects with NotConnectedError', async () => {
    const xmpp = testTransport();
    transports.push(xmpp);
    await expect(xmpp.publish(parseEndpoint('xmpp:orders@localhost'), numbered(1))).rejects.toThrow(NotConnectedError);
  });
});

describe('XmppTransport: the wire, and peers that are not Interchange', () => {
  it('publishes a chat message: JSON body, the id and headers in the urn:interchange:0 envelope; envelope=none sends the body alone', async () => {
    const to = account('wire');
    const listener = await peer(to);
    const xmpp = await transport();
    const message = createMessage({ orderId: 42 }, { headers: { 'x-tenant': 'acme', urgent: true, attempt: 3 } });
    await xmpp.publish(parseEndpoint(`xmpp:${to}`), [message]);
    await xmpp.publish(parseEndpoint(`xmpp:${to}?envelope=none`), [createMessage('hello', { headers: { contentType: 'text/plain' } })]);
    await until(() => listener.received.length === 2, () => `the peer got ${listener.received.length} messages`);
    const [first, second] = listener.received as [XmlElement, XmlElement];
    expect(first.attrs.type).toBe('chat');
    expect(first.attrs.from).toMatch(/^interchange@localhost\//);
    expect(JSON.parse(first.getChildText('body') ?? '')).toEqual({ orderId: 42 });
    const envelope = first.getChild('interchange', ENVELOPE_NS);
    expect(envelope?.attrs.id).toBe(message.id);
    const headers = JSON.parse(envelope?.getText() ?? '') as Record<string, unknown>;
    expect(headers).toMatchObject({ 'x-tenant': 'acme', urgent: true });
    expect(headers.attempt).toBeUndefined(); // a delivery header: the consumer counts its own
    expect(second.getChildText('body')).toBe('hello');
    expect(second.getChild('interchange', ENVELOPE_NS)).toBeUndefined();
  });

  it('a foreign sender is untrusted by default: body only, a fresh id, xmppFrom; its forged envelope, attempt and x-interchange-* are ignored', async () => {
    const inbox = account('untrusted');
    const stranger = account('stranger');
    const xmpp = await transport();
    const got = collect(xmpp, `xmpp:${inbox}`);
    await sleep(300); // the consumer's session is available
    const forger = await peer(stranger);
    const forged = xml('message', { type: 'chat', to: inbox }, xml('body', {}, '{"amount":1}'), xml('interchange', { xmlns: ENVELOPE_NS, id: 'forged-id', body: 'json', attempt: '9' }, JSON.stringify({ 'x-interchange-route': 'evil', replyTo: 'xmpp:evil@localhost' })));
    await forger.client.send(forged);
    await forger.client.send(xml('message', { type: 'chat', to: inbox }, xml('body', {}, 'not json')));
    await until(() => got.length === 2, () => `got ${got.length}`);
    const [first, second] = got.map((delivery) => delivery.message) as [Message, Message];
    expect(first.id).not.toBe('forged-id');
    expect(first.body).toEqual({ amount: 1 });
    expect(first.headers).toEqual({ xmppFrom: `${stranger}/peer` });
    expect(second.body).toBe('not json');
  });

  it('trust= takes a peer\'s envelope (never its attempt); from= drops every other sender', async () => {
    const inbox = account('trusted');
    const friend = account('friend');
    const stranger = account('other');
    const xmpp = await transport();
    const got = collect(xmpp, `xmpp:${inbox}?trust=${friend}&from=${friend}`);
    await sleep(300);
    const friendly = await peer(friend);
    const other = await peer(stranger);
    await other.client.send(xml('message', { type: 'chat', to: inbox }, xml('body', {}, '"spam"')));
    await friendly.client.send(xml('message', { type: 'chat', to: inbox }, xml('body', {}, '{"ok":true}'), xml('interchange', { xmlns: ENVELOPE_NS, id: 'peer-id', body: 'json', attempt: '7' }, JSON.stringify({ 'x-tenant': 'acme' }))));
    await until(() => got.length === 1, () => `got ${got.length}`);
    await sleep(300);
    expect(got).toHaveLength(1);
    expect(got[0]?.message.id).toBe('peer-id');
    expect(got[0]?.message.headers).toEqual({ 'x-tenant': 'acme', xmppFrom: `${friend}/peer` });
  });

  it('a trusted peer\'s malformed envelope and an oversized stanza are refused at intake (XmppDecodeError)', async () => {
    const inbox = account('malformed');
    const friend = account('friend');
    const xmpp = await transport();
    const got = collect(xmpp, `xmpp:${inbox}?trust=${friend}&maxMessageBytes=2000`);
    await sleep(300);
    const friendly = await peer(friend);
    await friendly.client.send(xml('message', { type: 'chat', to: inbox }, xml('body', {}, '{}'), xml('interchange', { xmlns: ENVELOPE_NS, id: 'x', body: 'json' }, '{"nested":{"no":1}}')));
    await friendly.client.send(xml('message', { type: 'chat', to: inbox }, xml('body', {}, 'x'.repeat(5_000))));
    await until(() => got.length === 2, () => `got ${got.length}`);
    for (const delivery of got) expect(delivery.intakeError).toBeInstanceOf(XmppDecodeError);
  });
});

describe('XmppTransport: publish limits', () => {
  it('a message over maxStanzaBytes or with text XML cannot carry fails alone (PartialPublishError); the others are sent', async () => {
    const to = account('limits');
    const xmpp = await transport({ maxStanzaBytes: 4_096 });
    const messages = [createMessage({ ok: 1 }), createMessage('x'.repeat(10_000), { headers: { contentType: 'text/plain' } }), createMessage('bell\u0007', { headers: { contentType: 'text/plain' } }), createMessage({ ok: 2 })];
    const error = (await xmpp.publish(parseEndpoint(`xmpp:${to}`), messages).catch((thrown: unknown) => thrown)) as PartialPublishError;
    expect(error).toBeInstanceOf(PartialPublishError);
    expect([...error.failures.keys()]).toEqual([1, 2]);
    for (const failure of error.failures.values()) expect(failure).toBeInstanceOf(XmppUnencodableError);
    const got = collect(xmpp, `xmpp:${to}?trust=${PUBLISHER.jid}`);
    await until(() => got.length === 2, () => `got ${got.length}`);
    expect(got.map((delivery) => delivery.message.body)).toEqual([{ ok: 1 }, { ok: 2 }]);
  });
});

describe('XmppTransport: nack, redelivery and dead letters', () => {
  it('a message nacked maxDeliveries times goes to the deadLetter JID with the reason', async () => {
    const inbox = account('nack');
    const dead = account('dead');
    const xmpp = await transport();
    const got = collect(xmpp, `xmpp:${inbox}?trust=${PUBLISHER.jid}&maxDeliveries=3&deadLetter=${dead}`, (delivery) => delivery.nack(new Error('cannot handle')));
    const [sent] = numbered(1) as [Message];
    await xmpp.publish(parseEndpoint(`xmpp:${inbox}`), [sent]);
    await until(() => got.length === 3, () => `got ${got.length}`);
    expect(got.map((delivery) => delivery.message.headers.attempt ?? 1)).toEqual([1, 2, 3]);
    const letters = collect(xmpp, `xmpp:${dead}?trust=${inbox}`);
    await until(() => letters.length === 1, () => `dead letters: ${letters.length}`);
    expect(letters[0]?.message.id).toBe(sent.id);
    expect(letters[0]?.message.headers).toMatchObject({ 'x-test': 'm0', 'x-interchange-reason': 'cannot handle', 'x-interchange-attempts': 3 });
    await sleep(300);
    expect(got).toHaveLength(3);
  });
});

describe('XmppTransport: nack without a deadLetter JID', () => {
  it('is never given up: past maxDeliveries the message comes back later and later, attempt counting on', async () => {
    const inbox = account('retry');
    const xmpp = await transport();
    const got = collect(xmpp, `xmpp:${inbox}?trust=${PUBLISHER.jid}&maxDeliveries=2`, (delivery) => ((delivery.message.headers.attempt ?? 1) < 4 ? delivery.nack(new Error('transient')) : delivery.ack()));
    const [sent] = numbered(1) as [Message];
    await xmpp.publish(parseEndpoint(`xmpp:${inbox}`), [sent]);
    await until(() => got.length === 4, () => `got ${got.length}`);
    expect(got.map((delivery) => delivery.message.headers.attempt ?? 1)).toEqual([1, 2, 3, 4]);
    expect(new Set(got.map((delivery) => delivery.message.id))).toEqual(new Set([sent.id]));
  });
});

describe('XmppTransport in a route', () => {
  it('moves messages account → account with xmppModule; the destination gets every one, in order, with its id', async () => {
    const [source, destination] = [account('route-in'), account('route-out')];
    const { stop } = await startTestIntegration({
      modules: [xmppModule({ service: XMPP_SERVICE, ...PUBLISHER, accounts: { [source]: TEST_PASSWORD } })],
      routes: [from(`xmpp:${source}?trust=${PUBLISHER.jid}`, { id: 'hx-route' }).to(`xmpp:${destination}`)],
    });
    try {
      const xmpp = await transport();
      const sent = numbered(50);
      await xmpp.publish(parseEndpoint(`xmpp:${source}`), sent);
      const got = collect(xmpp, `xmpp:${destination}?trust=${PUBLISHER.jid}`);
      await until(() => got.length === 50, () => `the destination got ${got.length}`);
      expect(got.map((delivery) => delivery.message.id)).toEqual(sent.map((message) => message.id));
      expect(got[7]?.message.headers['x-test']).toBe('m7');
    } finally {
      await stop();
    }
  });
});
