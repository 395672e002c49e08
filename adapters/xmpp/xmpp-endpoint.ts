import type { Endpoint } from '../../src/core/index.ts';
import { XmppConfigurationError } from './xmpp-errors.ts';
import { validateXmppEndpointOptions } from './xmpp-options.ts';

/**
 * An `xmpp:` endpoint, resolved: `xmpp:<local>@<domain>[/<resource>][?options]` (RFC 5122's form, no
 * `//`). Publishing sends a `type="chat"` message to that JID; consuming logs in as that account (its
 * password from the transport's `accounts`, or the transport's own) and takes the messages sent to it —
 * those stored offline while nobody was logged in first. A resource is for publishing only.
 */
export interface XmppTarget {
  readonly uri: string;
  /** The JID as written (bare, or full with a resource). */
  readonly jid: string;
  readonly bare: string;
  readonly local: string;
  readonly domain: string;
  readonly resource: string | undefined;
  /** Consuming: senders whose envelope is taken (bare JIDs, lower-case). */
  readonly trust: ReadonlySet<string>;
  /** Consuming: the only senders taken, when set (bare JIDs, lower-case). */
  readonly from: ReadonlySet<string> | undefined;
  readonly envelope: 'interchange' | 'none';
  readonly maxDeliveries: number | undefined;
  readonly maxMessageBytes: number | undefined;
  readonly deadLetter: string | undefined;
}

const LOCAL = /^[^\s"&'/:<>@]{1,1023}$/;
const DOMAIN = /^[A-Za-z0-9]([A-Za-z0-9.-]{0,1021}[A-Za-z0-9])?$/;
const cache = new Map<string, XmppTarget>();

/**
 * Resolves (and validates, once per URI) an `xmpp:` endpoint; throws `XmppConfigurationError`.
 * @example xmppTarget(parseEndpoint('xmpp:orders@localhost?trust=shop@localhost')) // { bare: 'orders@localhost', trust: Set {'shop@localhost'}, … }
 */
export function xmppTarget(endpoint: Endpoint): XmppTarget {
  const cached = cache.get(endpoint.uri);
  if (cached !== undefined) return cached;
  const [address = '', ...rest] = endpoint.path.split('/');
  const resource = rest.length === 0 ? undefined : rest.join('/');
  const at = address.indexOf('@');
  const local = at < 0 ? '' : address.slice(0, at);
  const domain = at < 0 ? address : address.slice(at + 1);
  if (!LOCAL.test(local) || !DOMAIN.test(domain) || (resource !== undefined && (resource === '' || resource.length > 1023))) {
    throw new XmppConfigurationError(`'${endpoint.uri}': expected xmpp:<name>@<domain>[/<resource>] (a JID; RFC 6122)`);
  }
  const options = endpoint.options;
  validateXmppEndpointOptions(endpoint.uri, options);
  const list = (value: string | undefined): Set<string> | undefined => (value === undefined ? undefined : new Set(value.split(',').map((jid) => jid.toLowerCase())));
  const bare = `${local}@${domain}`.toLowerCase();
  if (options.deadLetter !== undefined && options.deadLetter.toLowerCase() === bare) throw new XmppConfigurationError(`'${endpoint.uri}': the dead-letter JID cannot be the account itself`);
  const target: XmppTarget = Object.freeze({
    uri: endpoint.uri,
    jid: resource === undefined ? bare : `${bare}/${resource}`,
    bare,
    local,
    domain: domain.toLowerCase(),
    resource,
    trust: list(options.trust) ?? new Set<string>(),
    from: list(options.from),
    envelope: options.envelope === 'none' ? 'none' : 'interchange',
    maxDeliveries: options.maxDeliveries === undefined ? undefined : Number(options.maxDeliveries),
    maxMessageBytes: options.maxMessageBytes === undefined ? undefined : Number(options.maxMessageBytes),
    deadLetter: options.deadLetter?.toLowerCase(),
  });
  if (cache.size < 10_000) cache.set(endpoint.uri, target);
  return target;
}
