import type { Subscription } from 'rxjs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { XmppBouncedError, XmppConfigurationError, XmppDecodeError, type XmppBounce, type XmppTransport } from '../../adapters/xmpp/index.ts';
import { xml, xmppClient, type XmlElement, type XmppClient } from '../../adapters/xmpp/xmpp-client.ts';
import { XmppSession } from '../../adapters/xmpp/xmpp-session.ts';
import { createMessage, NotConnectedError, parseEndpoint, PartialPublishError, silentLogger, type Delivery, type Logger } from '../../src/core/index.ts';
import { until } from '../support/wait.ts';
import { deleteAccounts, PUBLISHER, registerAccount, requireProsody, runTag, TEST_PASSWORD, testTransport, XMPP_DOMAIN, XMPP_SERVICE } from './xmpp-support.ts';

// Regression tests for defects found in review (hx-hard-<run>-* accounts, deleted afterwards):
// a deeply nested stanza must not kill the process; bounces are not "confirmed"; a transport never
// consumes its own publishing account; a session stopped while starting leaves nothing behind; the
// consumer's local queue is bounded by bytes.
const run = runTag('hard');
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

async function peer(jid: string): Promise<XmppClient> {
  const [local = '', domain = ''] = jid.split('@');
  const client = xmppClient({ service: XMPP_SERVICE, domain, username: local, password: TEST_PASSWORD, resource: 'peer' });
  peers.push(client);
  await client.start();
  return client;
}

/** Records warnings and errors. */
function recordingLogger(): Logger & { readonly lines: string[] } {
  const lines: string[] = [];
  return { lines, info: () => undefined, warn: (message) => lines.push(`warn ${message}`), error: (message) => lines.push(`error ${message}`) };
}

function session(username: string, overrides: Partial<ConstructorParameters<typeof XmppSession>[0]> = {}): XmppSession {
  return new XmppSession({
    service: XMPP_SERVICE,
    domain: XMPP_DOMAIN,
    username,
    password: TEST_PASSWORD,
    resource: 'hx-hard',
    connectTimeoutMs: 5_000,
    reconnect: { initialMs: 50, maxMs: 200 },
    log: silentLogger,
    ...overrides,
  });
}

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

describe('XMPP intake of hostile stanzas', () => {
  it('a message nested 20,000 deep is refused at intake (XmppDecodeError); the session lives and the next message is delivered', async () => {
    const inbox = account('deep');
    const sender = account('deep-sender');
    const xmpp = await transport();
    const got: Delivery[] = [];
    subscriptions.push(xmpp.consume(parseEndpoint(`xmpp:${inbox}`)).subscribe((delivery) => got.push(delivery)));
    const client = await peer(sender);
    // written raw: ltx would overflow the stack serializing it on the sending side too
    const depth = 20_000;
    await until(() => client.streamManagement.enabled, () => 'the sender\'s stream management was not enabled');
    // …and past the library's stream-management queue: give it a placeholder, or the server's ack of it would not add up
    (client.streamManagement as unknown as { outbound_q: unknown[] }).outbound_q.push({ stanza: xml('message'), stamp: '' });
    await (client as unknown as { write(text: string): Promise<void> }).write(`<message type="chat" to="${inbox}"><body>deep</body>${'<x>'.repeat(depth)}${'</x>'.repeat(depth)}</message>`);
    await client.send(xml('message', { type: 'chat', to: inbox }, xml('body', {}, '{"after":true}')));
    await until(() => got.length === 2, () => `got ${got.length}`, 20_000);
    expect(got[0]?.intakeError).toBeInstanceOf(XmppDecodeError);
    expect(got[0]?.intakeError?.message).toMatch(/nested/);
    expect(got[1]?.intakeError).toBeUndefined();
    expect(got[1]?.message.body).toEqual({ after: true });
  });

  it('a stanza handler that throws loses that stanza alone: the session stays up and takes the next one', async () => {
    const inbox = account('throws');
    const sender = account('throws-sender');
    const bodies: string[] = [];
    const consumer = session(inbox.split('@')[0] ?? '', {
      onStanza: (stanza: XmlElement) => {
        if (!stanza.is('message')) return;
        const body = stanza.getChildText('body') ?? '';
        if (body === 'boom') throw new Error('handler bug');
        bodies.push(body);
      },
    });
    try {
      await consumer.start();
      await consumer.send([xml('presence')], 5_000);
      const client = await peer(sender);
      await client.send(xml('message', { type: 'chat', to: inbox }, xml('body', {}, 'boom')));
      await client.send(xml('message', { type: 'chat', to: inbox }, xml('body', {}, 'fine')));
      await until(() => bodies.length === 1, () => `got ${bodies.length}`);
      expect(bodies).toEqual(['fine']);
      expect(consumer.isOnline).toBe(true);
    } finally {
      await consumer.stop();
    }
  });
});

describe('XMPP bounces', () => {
  it('a publish to an account that does not exist rejects with XmppBouncedError (the server\'s ack covers its own error reply); the hook and counter see it', async () => {
    const bounces: XmppBounce[] = [];
    const logger = recordingLogger();
    const xmpp = await transport({ onBounce: (bounce) => bounces.push(bounce), logger });
    const message = createMessage({ to: 'nobody' });
    const error = await xmpp.publish(parseEndpoint(`xmpp:${run}-nobody@${XMPP_DOMAIN}`), [message]).catch((thrown: unknown) => thrown);
    expect(error).toBeInstanceOf(PartialPublishError);
    const failure = (error as PartialPublishError).failures.get(0);
    expect(failure).toBeInstanceOf(XmppBouncedError);
    expect((failure as XmppBouncedError).condition).toBe('service-unavailable');
    expect(bounces).toHaveLength(1);
    expect(bounces[0]).toMatchObject({ messageId: message.id, to: `${run}-nobody@${XMPP_DOMAIN}`, condition: 'service-unavailable', duringPublish: true });
    expect(xmpp.bounced).toBe(1);
    expect(logger.lines.some((line) => line.startsWith('warn xmpp: a message bounced'))).toBe(true);
  });

  it('in a batch only the bounced message fails; the others are confirmed', async () => {
    const to = account('batch');
    const xmpp = await transport();
    // one endpoint per publish: the bounced one is sent alone, before and after good ones
    await xmpp.publish(parseEndpoint(`xmpp:${to}`), [createMessage(1), createMessage(2)]);
    await expect(xmpp.publish(parseEndpoint(`xmpp:${run}-ghost@${XMPP_DOMAIN}`), [createMessage(3), createMessage(4)])).rejects.toSatisfy((error: unknown) => error instanceof PartialPublishError && error.failures.size === 2);
    await xmpp.publish(parseEndpoint(`xmpp:${to}`), [createMessage(5)]);
    expect(xmpp.bounced).toBe(2);
  });
});

describe('XMPP consumed accounts', () => {
  it('refuses consuming the transport\'s own publishing account (XmppConfigurationError): bounces of its own publishes and smacks drops would have nowhere safe to go', async () => {
    const xmpp = await transport();
    const errors: unknown[] = [];
    subscriptions.push(xmpp.consume(parseEndpoint(`xmpp:${PUBLISHER.jid}`)).subscribe({ error: (error: unknown) => errors.push(error) }));
    expect(errors[0]).toBeInstanceOf(XmppConfigurationError);
    expect(String((errors[0] as Error).message)).toMatch(/own publishing account/);
  });

  it('a consumer session enables stream management without resumption (a dead link lets its messages go offline at once)', async () => {
    const inbox = account('noresume');
    const consumer = session(inbox.split('@')[0] ?? '', { resumable: false });
    const publisher = session(inbox.split('@')[0] ?? '');
    try {
      await Promise.all([consumer.start(), publisher.start()]);
      expect(consumer.resumable).toBe(false);
      expect(publisher.resumable).toBe(true);
    } finally {
      await Promise.all([consumer.stop(), publisher.stop()]);
    }
  });
});

describe('XMPP session lifecycle', () => {
  it('a session stopped while it starts ends closed, its client stopped (no live client left behind)', async () => {
    const inbox = account('leak');
    const quick = session(inbox.split('@')[0] ?? '');
    const starting = quick.start();
    await quick.stop();
    const outcome = await starting.then(
      () => 'started',
      (error: unknown) => error,
    );
    expect(outcome).toBeInstanceOf(NotConnectedError);
    expect(quick.isOnline).toBe(false);
    expect(quick.status.state).toBe('closed');
  });

  it('a session stopped while it retries an unreachable server stops retrying at once', async () => {
    const unreachable = session('nobody', { service: 'xmpp://127.0.0.1:1', connectTimeoutMs: 600_000 });
    const starting = unreachable.start();
    await until(() => unreachable.status.state === 'connecting', () => unreachable.status.state);
    await new Promise((resolve) => setTimeout(resolve, 200));
    await unreachable.stop();
    await expect(starting).rejects.toThrow(NotConnectedError);
    expect(unreachable.status.state).toBe('closed');
  }, 20_000);
});

describe('XMPP consumer local queue', () => {
  it('is bounded by bytes too (maxWaitingBytes): beyond it messages are dropped, counted and logged', async () => {
    const inbox = account('bytes');
    const logger = recordingLogger();
    const xmpp = await transport({ logger, maxWaitingBytes: 20_000 });
    const got: Delivery[] = [];
    // prefetch 1, never settled: everything after the first waits in the local queue
    subscriptions.push(xmpp.consume(parseEndpoint(`xmpp:${inbox}?trust=${PUBLISHER.jid}`), { prefetch: 1 }).subscribe((delivery) => got.push(delivery)));
    const big = 'y'.repeat(4_000);
    await xmpp.publish(
      parseEndpoint(`xmpp:${inbox}`),
      Array.from({ length: 12 }, () => createMessage(big, { headers: { contentType: 'text/plain' } })),
    );
    await until(() => logger.lines.some((line) => line.startsWith('warn xmpp: local queue full')), () => `logged: ${logger.lines.join('; ')}`, 20_000);
    expect(got).toHaveLength(1);
  });
});
