import { ContainerModule } from 'inversify';
import { Logger, Transport } from '../../src/core/index.ts';
import type { XmppTransportOptions } from './xmpp-options.ts';
import { XmppTransport } from './xmpp-transport.ts';

/** The module's options: the transport's, with `jid`/`password` optional here (else `XMPP_JID`/`XMPP_PASSWORD`). */
export type XmppModuleOptions = Omit<XmppTransportOptions, 'jid' | 'password'> & { readonly jid?: string; readonly password?: string };

/**
 * Binds the XMPP transport (`xmpp:`) into the `Transport` multi-binding. The server is `service`, else
 * `XMPP_URL`, else `xmpp://127.0.0.1:5222`; the account `jid`/`password`, else `XMPP_JID`/`XMPP_PASSWORD`.
 * Throws `XmppConfigurationError` at resolution for invalid or missing options.
 * @example createIntegration({ routes, modules: [xmppModule({ jid: 'interchange@localhost', password: secret, accounts: { 'orders@localhost': ordersSecret } })] })
 */
export function xmppModule(options: XmppModuleOptions = {}): ContainerModule {
  return new ContainerModule(({ bind }) => {
    bind(XmppTransport)
      .toDynamicValue((context) => {
        const service = options.service ?? (process.env.XMPP_URL || undefined);
        const logger = context.get<Logger>(Logger, { optional: true });
        return new XmppTransport({
          ...options,
          jid: options.jid ?? process.env.XMPP_JID ?? '',
          password: options.password ?? process.env.XMPP_PASSWORD ?? '',
          ...(service === undefined ? {} : { service }),
          ...(logger === undefined ? {} : { logger }),
        });
      })
      .inSingletonScope();
    bind<Transport>(Transport).toService(XmppTransport);
  });
}
