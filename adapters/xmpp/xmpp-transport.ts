import { Observable } from 'rxjs';
import { NotConnectedError, PartialPublishError, publishEach, silentLogger, toError, UnencodableMessageError, type ConsumeOptions, type Delivery, type Endpoint, type Logger, type Message, type StatusReportingTransport, type Transport } from '../../src/core/index.ts';
import type { XmlElement } from './xmpp-client.ts';
import { encodeStanza } from './xmpp-codec.ts';
import { xmppTarget } from './xmpp-endpoint.ts';
import { XmppConfigurationError, XmppUnencodableError } from './xmpp-errors.ts';
import { DEFAULT_MAX_STANZA_BYTES, validateXmppOptions, type XmppTransportOptions } from './xmpp-options.ts';
import { XmppSession, type XmppBounce, type XmppSessionSettings, type XmppSessionStatus } from './xmpp-session.ts';
import { XmppSubscription } from './xmpp-subscription.ts';

/** Default server when neither the option nor `XMPP_URL` names one. */
export const DEFAULT_XMPP_SERVICE = 'xmpp://127.0.0.1:5222';

/** The largest publish window: stanzas sent before waiting for their acks. */
const PUBLISH_WINDOW = 500;
/** Default bound of a consumer's local queue in bytes (stanza sizes), besides its count bound. */
export const DEFAULT_MAX_WAITING_BYTES = 64 * 1024 * 1024;

/**
 * `xmpp:` endpoints — chat messages in and out — over one XMPP server (`@xmpp/client`; tested against
 * Prosody 0.12 with mod_offline and mod_smacks, see scripts/prosody/).
 *
 * - `xmpp:<name>@<domain>` publish: a `<message type="chat">` from the transport's account (`jid`),
 *   the body as text, id and headers in `<interchange xmlns="urn:interchange:0">` (`?envelope=none`:
 *   body only, for plain chat clients). Resolves once the server's XEP-0198 ack covers every message:
 *   it has handled them — routed to a session of the recipient, stored offline, or bounced. A bounce
 *   (`type="error"` reply) that comes before the ack fails that message alone (`XmppBouncedError` in
 *   a `PartialPublishError`): so for every local recipient. A later one (a remote server's, a
 *   recipient session that died with it unacknowledged while another session of the account was up)
 *   is only logged, counted in `bounced` and passed to `onBounce`: the publish had resolved.
 * - `xmpp:<name>@<domain>` consume: logs in as that account (password: `accounts[jid]`, or `password`
 *   for the transport's own account) with a session of its own; see `XmppSubscription` for settlement,
 *   nack, hand-back and who is trusted (`trust=`, `from=`). Delivery is at-most-once past the
 *   process's memory (XMPP has no consumer ack). Every consumer of one account gets every message
 *   (the server delivers a chat message to all the account's top-priority sessions): no competing consumers.
 *   The transport's own publishing account cannot be consumed (`XmppConfigurationError`): the server
 *   would bounce to the publisher what a dead consumer session held, and the bounce would be lost.
 *
 * Contract (the transport SPI): `publish` rejects with `NotConnectedError` before `connect`,
 * `XmppPublishError` when the server did not confirm, `PartialPublishError` naming the messages that
 * failed alone (`XmppUnencodableError`). `close` hands back what its consumers hold, then disconnects. Idempotent.
 * @example
 * const xmpp = new XmppTransport({ jid: 'interchange@localhost', password: process.env.XMPP_PASSWORD ?? '' });
 * await xmpp.connect();
 * await xmpp.publish(parseEndpoint('xmpp:orders@localhost'), [createMessage({ orderId: 1 })]);
 */
export class XmppTransport implements Transport, StatusReportingTransport<XmppSessionStatus> {
  readonly scheme = 'xmpp';
  readonly defaultPrefetch = 100;
  private readonly options: XmppTransportOptions & { readonly service: string };
  private readonly log: Logger;
  private readonly passwordFor: ((bareJid: string) => string | undefined) | undefined;
  private session: XmppSession;
  private connecting: Promise<void> | undefined;
  private readonly subscriptions = new Set<XmppSubscription>();
  private readonly closing = new Set<Promise<void>>();
  private readonly domain: string;
  private readonly username: string;
  private readonly onBounce: ((bounce: XmppBounce) => void) | undefined;
  /** Bounces of messages the publishing session sent (earlier sessions of this transport included). */
  private bouncedBefore = 0;

  /**
   * Throws `XmppConfigurationError` for invalid options. `passwordFor` (not an option of the schema:
   * a function) gives the password of a consumed account not in `accounts` (a vault lookup, a test's
   * freshly registered accounts). `onBounce` sees every bounce of a published message (also logged).
   */
  constructor(options: XmppTransportOptions & { readonly logger?: Logger; readonly passwordFor?: (bareJid: string) => string | undefined; readonly onBounce?: (bounce: XmppBounce) => void }) {
    const { logger, passwordFor, onBounce, ...rest } = options;
    this.onBounce = onBounce;
    validateXmppOptions(rest);
    this.options = { ...rest, service: rest.service ?? DEFAULT_XMPP_SERVICE };
    this.log = logger ?? silentLogger;
    this.passwordFor = passwordFor;
    const at = rest.jid.indexOf('@');
    this.username = rest.jid.slice(0, at);
    this.domain = rest.jid.slice(at + 1).toLowerCase();
    this.session = this.newSession(this.username, this.domain, this.options.password, undefined);
  }

  get status$(): Observable<XmppSessionStatus> {
    return this.session.status$;
  }

  get status(): XmppSessionStatus {
    return this.session.status;
  }

  /** How many published messages the server bounced (`type="error"` replies), during or after their publish. */
  get bounced(): number {
    return this.bouncedBefore + this.session.bounced;
  }

  /** Logs in the publishing account; rejects with `XmppAuthenticationError` (at once) or `NotConnectedError` (after `connectTimeoutMs`). */
  connect(): Promise<void> {
    this.connecting ??= (async () => {
      await this.session.start();
      this.log.info('xmpp transport connected', { jid: this.session.jid, service: this.options.service });
    })().catch((error: unknown) => {
      this.connecting = undefined;
      throw error;
    });
    return this.connecting;
  }

  /**
   * Each message is encoded on its own: one that cannot be a stanza (`XmppUnencodableError`) is left
   * out and the others are sent; then the call rejects with `PartialPublishError`. Resolves once the
   * server acknowledged (XEP-0198) every stanza; at most 500 unacknowledged at once.
   */
  async publish(endpoint: Endpoint, messages: readonly Message[]): Promise<void> {
    const target = xmppTarget(endpoint);
    const settings = { envelope: target.envelope, maxStanzaBytes: this.options.maxStanzaBytes ?? DEFAULT_MAX_STANZA_BYTES };
    return publishEach(
      messages,
      (message): XmlElement => encodeStanza(message, target.jid, settings),
      async (stanzas) => {
        // bounced messages fail alone: the windows go on, their failures are gathered by index
        const bounced = new Map<number, Error>();
        for (let start = 0; start < stanzas.length; start += PUBLISH_WINDOW) {
          try {
            await this.session.send(stanzas.slice(start, start + PUBLISH_WINDOW), this.options.publishTimeoutMs ?? 30_000);
          } catch (error) {
            if (!(error instanceof PartialPublishError)) throw error;
            for (const [index, failure] of error.failures) bounced.set(start + index, failure);
          }
        }
        if (bounced.size > 0) throw new PartialPublishError(bounced, stanzas.length);
      },
      (error, message) => (error instanceof UnencodableMessageError ? error : new XmppUnencodableError(`message ${message.id} cannot be sent to '${endpoint.uri}': ${toError(error).message}`, { cause: error })),
    );
  }

  consume(endpoint: Endpoint, options: ConsumeOptions = {}): Observable<Delivery> {
    return new Observable<Delivery>((subscriber) => {
      if (options.signal?.aborted === true) {
        subscriber.complete();
        return undefined;
      }
      const target = xmppTarget(endpoint);
      if (target.resource !== undefined) throw new XmppConfigurationError(`'${endpoint.uri}': a consumer takes an account's messages (xmpp:<name>@<domain>), not a resource's`);
      const password = this.accountPassword(target.bare);
      if (target.bare === `${this.username}@${this.domain}`.toLowerCase()) {
        throw new XmppConfigurationError(`'${endpoint.uri}': ${target.bare} is this transport's own publishing account; consume another account (a dead consumer session's messages would be bounced to the publishing session and lost)`);
      }
      if (password === undefined) throw new XmppConfigurationError(`'${endpoint.uri}': no password for ${target.bare} (transport option accounts)`);
      if (this.connecting === undefined) throw new NotConnectedError(`xmpp transport is not connected; cannot consume '${endpoint.uri}'`);
      const prefetch = options.prefetch ?? this.defaultPrefetch;
      const hooks: { subscription?: XmppSubscription } = {};
      const session = this.newSession(target.local, target.domain, password, {
        onStanza: (stanza) => hooks.subscription?.onStanza(stanza),
        onNewSession: () => hooks.subscription?.announce(),
        // not resumable: a dead link's session closes at once and its unacknowledged messages go offline (docs: Delivery guarantees)
        resumable: false,
      });
      const subscription = new XmppSubscription(
        {
          target,
          prefetch,
          maxWaiting: Math.max(10_000, prefetch * 10),
          maxWaitingBytes: this.options.maxWaitingBytes ?? DEFAULT_MAX_WAITING_BYTES,
          maxMessageBytes: target.maxMessageBytes ?? this.options.maxMessageBytes ?? 256 * 1024,
          maxStanzaBytes: this.options.maxStanzaBytes ?? DEFAULT_MAX_STANZA_BYTES,
          maxDeliveries: target.maxDeliveries ?? this.options.maxDeliveries ?? 5,
          publishTimeoutMs: this.options.publishTimeoutMs ?? 30_000,
          log: this.log,
        },
        session,
        subscriber,
      );
      hooks.subscription = subscription;
      const started = subscription;
      this.subscriptions.add(started);
      session.start().then(
        () => started.announce(),
        (error: unknown) => {
          this.log.error('xmpp: consumer cannot start', { uri: endpoint.uri, error: toError(error).message });
          subscriber.error(error);
        },
      );
      const onAbort = (): void => started.stopIntake();
      options.signal?.addEventListener('abort', onAbort, { once: true });
      return () => {
        options.signal?.removeEventListener('abort', onAbort);
        this.subscriptions.delete(started);
        const closed = started.close().finally(() => this.closing.delete(closed));
        this.closing.add(closed);
      };
    });
  }

  /** Closes every consumer (handing back what it holds), then the publishing session. Idempotent. */
  async close(): Promise<void> {
    for (const subscription of this.subscriptions) {
      const closed = subscription.close().finally(() => this.closing.delete(closed));
      this.closing.add(closed);
    }
    this.subscriptions.clear();
    await Promise.allSettled([...this.closing, this.connecting]);
    this.connecting = undefined;
    await this.session.stop();
    this.bouncedBefore += this.session.bounced;
    // a stopped session is done: a later `connect` logs in afresh
    this.session = this.newSession(this.username, this.domain, this.options.password, undefined);
  }

  private accountPassword(bare: string): string | undefined {
    if (bare === `${this.username}@${this.domain}`.toLowerCase()) return this.options.password;
    const listed = Object.entries(this.options.accounts ?? {}).find(([jid]) => jid.toLowerCase() === bare)?.[1];
    return listed ?? this.passwordFor?.(bare);
  }

  private newSession(username: string, domain: string, password: string, hooks: Pick<XmppSessionSettings, 'onStanza' | 'onNewSession' | 'resumable'> | undefined): XmppSession {
    return new XmppSession({
      service: this.options.service,
      domain,
      username,
      password,
      resource: this.options.resource ?? 'interchange',
      connectTimeoutMs: this.options.connectTimeoutMs ?? 10_000,
      reconnect: { initialMs: this.options.reconnect?.initialDelayMs ?? 250, maxMs: this.options.reconnect?.maxDelayMs ?? 30_000 },
      log: this.log,
      ...(this.onBounce === undefined ? {} : { onBounce: this.onBounce }),
      ...(hooks === undefined ? {} : hooks),
    });
  }
}
