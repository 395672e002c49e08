import { afterAll, beforeAll } from 'vitest';
import { parseEndpoint } from '../../src/core/index.ts';
import { describeTransportContract } from '../../facade/testing/index.ts';
import { deleteAccounts, PUBLISHER, registerAccount, requireProsody, runTag, testTransport } from './xmpp-support.ts';

// The transport contract against the machine's Prosody (scripts/prosody/setup.sh; fails, never skips,
// when it is down). A destination is an account: each endpoint is a freshly registered JID, which
// the publisher (interchange@localhost) sends chat messages to and a consumer logs in as. Every
// endpoint trusts the publisher's envelope (`trust=`): Interchange ↔ Interchange traffic.
const run = runTag('contract');
const accounts = new Set<string>();

beforeAll(async () => {
  await requireProsody();
});
afterAll(() => {
  deleteAccounts(accounts);
});

const account = (name: string): string => {
  const jid = registerAccount(`${run}-${name}`.slice(0, 200));
  accounts.add(jid);
  return jid;
};

describeTransportContract('xmpp (Prosody 0.12: mod_offline, XEP-0198)', {
  create: async () => {
    const transport = testTransport();
    await transport.connect();
    return transport;
  },
  endpoint: (name) => parseEndpoint(`xmpp:${account(name)}?trust=${PUBLISHER.jid}`),
  pubsubEndpoint: (name) => parseEndpoint(`xmpp:${account(name)}?trust=${PUBLISHER.jid}`),
  features: {
    // one sender's stanzas to one recipient are handled in order (RFC 6120 §10.1); mod_offline replays in order
    guaranteedOrder: true,
    // nack sends the message back to the consumer's own session from its own account (attempt trusted, + 1)
    redeliversOnNack: true,
    // unsubscribing makes the session unavailable, then sends every unsettled and queued message back to
    // the account, where mod_offline keeps it for the next consumer (graceful only: a crash loses them)
    redeliversUnsettledOnUnsubscribe: true,
    // a chat message to a bare JID goes to every available session of top priority (Prosody's
    // mod_message): consumers of one account each get every message, never a share
    competingConsumers: false,
    // …which is publish-subscribe among the consumers online (offline storage feeds only the first)
    publishSubscribe: true,
    // mod_offline has no bound a sender waits on
    boundedPublish: false,
    // mod_offline keeps messages for the account until a session is available, whatever the publisher does
    persistentAcrossReconnect: true,
  },
});
