import type { AdapterEnvironment } from '../../src/core/adapter-environment.ts';
import { redactUrl } from '../../src/core/redact.ts';

/**
 * The XMPP adapter's declaration for `interchange run`: `XMPP_URL`, or any route using `xmpp:`, binds
 * XMPP (unless the route file binds an `XmppTransport` itself) — to `XMPP_URL`, else to
 * `xmpp://127.0.0.1:5222`, logged in as `XMPP_JID` with `XMPP_PASSWORD` (there is no embedded server).
 *
 * Cheap to import: the transport (and @xmpp/client with it) is imported by `bind`, only when it may
 * bind; it never connects.
 */
export const environment: AdapterEnvironment = {
  name: 'xmpp',
  variables: ['XMPP_URL', 'XMPP_JID', 'XMPP_PASSWORD'],
  bind: async ({ env, schemes, isBound }) => {
    const url = env.XMPP_URL === '' ? undefined : env.XMPP_URL;
    if (url === undefined && !schemes.has('xmpp')) return undefined;
    const [{ XmppTransport }, { xmppModule }] = await Promise.all([import('./xmpp-transport.ts'), import('./xmpp.module.ts')]);
    if (isBound(XmppTransport)) return undefined;
    const account = { jid: env.XMPP_JID ?? '', password: env.XMPP_PASSWORD ?? '' };
    return url === undefined
      ? { module: xmppModule(account), announcement: `no XMPP_URL: xmpp: endpoints use the server at xmpp://127.0.0.1:5222 as ${account.jid || '(XMPP_JID unset)'}` }
      : { module: xmppModule({ ...account, service: url }), announcement: `XMPP_URL is set: xmpp: endpoints use the server at ${redactUrl(url)} as ${account.jid || '(XMPP_JID unset)'}` };
  },
};
