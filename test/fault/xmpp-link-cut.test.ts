import type { Subscription } from 'rxjs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { XmppTransport } from '../../adapters/xmpp/index.ts';
import { createMessage, parseEndpoint, type Delivery } from '../../src/core/index.ts';
import { deleteAccounts, PUBLISHER, registerAccount, requireProsody, runTag, testTransport } from '../integration/xmpp-support.ts';
import { LinkProxy } from '../support/link-proxy.ts';
import { until } from '../support/wait.ts';

// The machine's Prosody (127.0.0.1:5222, never touched) reached through a TCP proxy that the test cuts:
// a consumer whose link dies (its process crashed, its network went away) must let the account's
// messages go to the offline store — for the next consumer — not to a hibernating stream-management
// session that holds them for smacks_hibernation_time (60 s) and then, when another session of the
// account is up by then, bounces them to their sender.
const run = runTag('linkcut');
const accounts = new Set<string>();
const transports: XmppTransport[] = [];
const subscriptions: Subscription[] = [];
const proxies: LinkProxy[] = [];

beforeAll(async () => {
  await requireProsody();
});
afterEach(async () => {
  for (const subscription of subscriptions.splice(0)) subscription.unsubscribe();
  for (const created of transports.splice(0)) await created.close();
  for (const proxy of proxies.splice(0)) await proxy.cut();
});
afterAll(() => {
  deleteAccounts(accounts);
});

function consume(via: XmppTransport, uri: string): Delivery[] {
  const got: Delivery[] = [];
  subscriptions.push(
    via.consume(parseEndpoint(uri)).subscribe((delivery) => {
      got.push(delivery);
      delivery.ack();
    }),
  );
  return got;
}

describe('XMPP consumer whose link dies (fault)', () => {
  it('the messages sent to its account after the cut go offline and reach the next consumer at once (no hibernating session holds them)', async () => {
    const inbox = registerAccount(`${run}-inbox`);
    accounts.add(inbox);
    const proxy = new LinkProxy(5222);
    proxies.push(proxy);
    await proxy.start();
    const publisher = testTransport();
    // the consumer's transport reaches the server through the proxy only; it retries the dead proxy after the cut
    const cutOff = testTransport({ service: `xmpp://127.0.0.1:${proxy.port}`, reconnect: { initialDelayMs: 100, maxDelayMs: 500 } });
    transports.push(publisher, cutOff);
    await Promise.all([publisher.connect(), cutOff.connect()]);
    const endpoint = `xmpp:${inbox}?trust=${PUBLISHER.jid}`;
    const first = consume(cutOff, endpoint);
    await publisher.publish(parseEndpoint(`xmpp:${inbox}`), [createMessage({ n: 0 })]);
    await until(() => first.length === 1, () => `the first consumer got ${first.length}`);

    await proxy.cut();
    const sent = Array.from({ length: 5 }, (_, index) => createMessage({ n: index + 1 }));
    await publisher.publish(parseEndpoint(`xmpp:${inbox}`), sent);

    const next = testTransport();
    transports.push(next);
    await next.connect();
    const got = consume(next, endpoint);
    // a hibernating session would hold them for 60 s: well past this wait
    await until(() => got.length === 5, () => `the next consumer got ${got.length} of 5`, 30_000);
    expect(got.map((delivery) => delivery.message.id).sort()).toEqual(sent.map((message) => message.id).sort());
    expect(first).toHaveLength(1);
  }, 60_000);
});
