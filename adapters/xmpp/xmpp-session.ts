import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { BehaviorSubject, distinctUntilChanged, type Observable } from 'rxjs';
import { backoffDelay, NotConnectedError, PartialPublishError, redactText, toError, type Logger, type TransportStatus } from '../../src/core/index.ts';
import { xml, xmppClient, type XmlElement, type XmppClient } from './xmpp-client.ts';
import { ENVELOPE_NS } from './xmpp-codec.ts';
import { XmppAuthenticationError, XmppBouncedError, XmppPublishError } from './xmpp-errors.ts';

const SM_NS = 'urn:xmpp:sm:3';
const STANZA_ERRORS_NS = 'urn:ietf:params:xml:ns:xmpp-stanzas';
/** How long a sent message's id is remembered after its ack, so a late bounce still names it. */
const BOUNCE_MEMORY_MS = 60_000;
/** …and how many ids at most (the oldest are forgotten first). */
const BOUNCE_MEMORY_SIZE = 10_000;

/** A `type="error"` reply the server sent for a message this session had sent. */
export interface XmppBounce {
  /** The bare or full JID the message was sent to. */
  readonly to: string;
  /** The Interchange message id (from its envelope), when it had one. */
  readonly messageId: string | undefined;
  readonly stanzaId: string;
  readonly condition: string;
  readonly type: string;
  /** It came before the server's ack: the `send` (publish) rejected with `XmppBouncedError`. Else it came later and is only reported. */
  readonly duringPublish: boolean;
}

/** One XMPP session's state: `connected`, `reconnecting` (stream broken, retrying forever), `closed`. */
export interface XmppSessionStatus extends TransportStatus {
  readonly state: 'connecting' | 'connected' | 'reconnecting' | 'closed';
}

export interface XmppSessionSettings {
  readonly service: string;
  readonly domain: string;
  readonly username: string;
  readonly password: string;
  /** Resource prefix; the session's resource is `<prefix>-<random>`. */
  readonly resource: string;
  readonly connectTimeoutMs: number;
  readonly reconnect: { readonly initialMs: number; readonly maxMs: number };
  readonly log: Logger;
  /** Every inbound stanza but the bounces of what this session sent. A throw loses that stanza alone (logged). */
  readonly onStanza?: (stanza: XmlElement) => void;
  /** Every bounce of a message this session sent (also logged, counted in `bounced`). */
  readonly onBounce?: (bounce: XmppBounce) => void;
  /**
   * Ask the server for a resumable stream-management session (default true). A consumer says false:
   * when its link dies the server then closes its session at once and stores what it had not
   * acknowledged offline, instead of routing the account's messages to a hibernating session for
   * `smacks_hibernation_time` — and bouncing them at the end when another session of the account is up.
   */
  readonly resumable?: boolean;
  /** After each (re)connection that is not a stream-management resumption (a new server session: presence must be sent again). */
  readonly onNewSession?: () => void;
}

interface Pending {
  resolve(): void;
  reject(error: Error): void;
}

/** A sent message remembered by its stanza id: who it went to; while its `send` waits, where a bounce goes. */
interface Sent {
  readonly to: string;
  readonly messageId: string | undefined;
  readonly at: number;
  bounced?: (error: XmppBouncedError) => void;
}

/**
 * One authenticated XMPP session (`@xmpp/client`), TCP_NODELAY, with XEP-0198 stream management:
 * `send` resolves when the server's `<a h=…/>` covers every stanza sent — the strongest confirmation
 * XMPP has (the server has handled them: routed to a session, or stored offline) — and rejects with
 * `XmppPublishError` when the server will never confirm them (the stream broke and could not be
 * resumed) or after `timeoutMs`. Without stream management (a server not offering it) a ping round
 * trip after the stanzas confirms them (in-order processing, RFC 6120 §10.1).
 *
 * A message the server answers with a `type="error"` message before its ack (a local recipient that
 * does not exist, an offline store that refuses it) fails alone: `send` rejects with a
 * `PartialPublishError` holding an `XmppBouncedError` for it. A later bounce (up to 60 s, 10,000
 * messages remembered) is logged, counted (`bounced`) and passed to `onBounce`.
 *
 * `start` retries an unreachable server with backoff until `connectTimeoutMs`, then rejects with
 * `NotConnectedError`; refused credentials reject at once with `XmppAuthenticationError`; `stop`
 * during `start` ends it (`NotConnectedError`) with no client left behind. A broken
 * stream is reconnected with backoff (`backoffDelay`) forever, resuming the stream-management session
 * when the server still holds it (unacknowledged stanzas are then resent by the library).
 */
export class XmppSession {
  private client: XmppClient | undefined;
  private readonly pending = new Map<XmlElement, Pending>();
  private readonly state = new BehaviorSubject<XmppSessionStatus>({ state: 'closed', since: Date.now() });
  private reconnecting: Promise<void> | undefined;
  private stopped = false;
  private smEnabled = false;
  /** Set by the stream-management `resumed` event during a reconnect. */
  private resumed = false;
  /** Aborted by `stop`: ends the waits of `start` and of the reconnect loop. */
  private readonly stopping = new AbortController();
  /** The last `start`: `stop` waits for it to give up its client. */
  private starting: Promise<void> | undefined;
  /** Messages sent, by stanza id (insertion order = age): bounces are matched to them. */
  private readonly sent = new Map<string, Sent>();
  /** Bounces of messages this session sent. */
  bounced = 0;
  /** The resource this session asks for. */
  readonly resource: string;

  constructor(private readonly settings: XmppSessionSettings) {
    this.resource = `${settings.resource}-${randomBytes(4).toString('hex')}`;
  }

  get status$(): Observable<XmppSessionStatus> {
    return this.state.pipe(distinctUntilChanged((a, b) => a.state === b.state && a.lastError === b.lastError));
  }

  get status(): XmppSessionStatus {
    return this.state.value;
  }

  /** The bound full JID (after `start`). */
  get jid(): string {
    return this.client?.jid?.toString() ?? `${this.settings.username}@${this.settings.domain}/${this.resource}`;
  }

  get bare(): string {
    return `${this.settings.username}@${this.settings.domain}`.toLowerCase();
  }

  get isOnline(): boolean {
    return this.client?.status === 'online';
  }

  /** Whether the server granted a resumable stream-management session (`resumable` setting). */
  get resumable(): boolean {
    const id = this.client?.streamManagement.id;
    return id !== undefined && id !== '';
  }

  start(): Promise<void> {
    const starting = this.startClient();
    this.starting = starting;
    return starting;
  }

  private async startClient(): Promise<void> {
    const deadline = Date.now() + this.settings.connectTimeoutMs;
    this.set({ state: 'connecting' });
    for (let attempt = 0; ; attempt += 1) {
      if (this.stopped) throw this.stoppedWhileStarting();
      const client = this.create();
      try {
        await client.start();
        // stopped meanwhile: this client must not live on (nothing else would ever stop it)
        if (this.stopped) throw this.stoppedWhileStarting();
        this.client = client;
        this.watch(client);
        await this.awaitStreamManagement(client);
        if (this.stopped) throw this.stoppedWhileStarting();
        this.set({ state: 'connected' });
        return;
      } catch (error) {
        client.removeAllListeners();
        client.reconnect.stop();
        await client.stop().catch(() => undefined);
        if (this.client === client) this.client = undefined;
        const failure = toError(error);
        if (this.stopped) throw this.stoppedWhileStarting();
        if (failure.name === 'SASLError') {
          this.set({ state: 'closed', lastError: 'authentication failed' });
          const condition = (failure as Error & { condition?: string }).condition ?? 'not-authorized';
          throw new XmppAuthenticationError(`xmpp: the server refused the credentials of ${this.bare} (${condition})`, condition);
        }
        const text = this.redact(failure.message);
        if (Date.now() >= deadline) {
          this.set({ state: 'closed', lastError: text });
          throw new NotConnectedError(`xmpp: cannot connect to ${this.settings.service} as ${this.bare}: ${text}`, { cause: failure });
        }
        const delay = Math.min(backoffDelay(attempt, this.settings.reconnect), Math.max(0, deadline - Date.now()));
        this.settings.log.info('xmpp connect failed, retrying', { account: this.bare, error: text, delayMs: delay });
        await sleep(delay, undefined, { signal: this.stopping.signal }).catch(() => undefined);
      }
    }
  }

  private stoppedWhileStarting(): NotConnectedError {
    this.set({ state: 'closed' });
    return new NotConnectedError(`xmpp session of ${this.bare} was stopped while it started`);
  }

  /**
   * Sends the stanzas and resolves once the server confirmed every one (see the class). Rejects with
   * `NotConnectedError` when the session is not online (nothing sent), `XmppPublishError` otherwise.
   */
  async send(stanzas: readonly XmlElement[], timeoutMs: number): Promise<void> {
    const client = this.client;
    if (client === undefined || this.stopped || client.status !== 'online') throw new NotConnectedError(`xmpp session of ${this.bare} is not online`);
    if (stanzas.length === 0) return;
    // a bounce comes before the ack (or the ping's answer) that covers its message: it is in `bounces` by then
    const bounces = new Map<number, XmppBouncedError>();
    const watched = this.remember(stanzas, bounces);
    try {
      await this.sendConfirmed(client, stanzas, timeoutMs);
    } finally {
      for (const sent of watched) delete sent.bounced;
    }
    if (bounces.size > 0) throw new PartialPublishError(new Map([...bounces].sort(([a], [b]) => a - b)), stanzas.length);
  }

  private async sendConfirmed(client: XmppClient, stanzas: readonly XmlElement[], timeoutMs: number): Promise<void> {
    if (!this.smEnabled) {
      await client.sendMany(stanzas);
      await client.iqCaller.request(xml('iq', { type: 'get', to: this.settings.domain }, xml('ping', { xmlns: 'urn:xmpp:ping' })), timeoutMs).catch((error: unknown) => {
        throw new XmppPublishError(`xmpp: the server did not answer a ping after ${stanzas.length} stanza(s): ${toError(error).message}`, { cause: error });
      });
      return;
    }
    const confirmations = stanzas.map((stanza) => new Promise<void>((resolve, reject) => this.pending.set(stanza, { resolve, reject })));
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new XmppPublishError(`xmpp: the server did not acknowledge ${stanzas.length} stanza(s) within ${timeoutMs} ms`)), timeoutMs);
    });
    try {
      await Promise.race([client.sendMany(stanzas).then(() => Promise.all(confirmations)), timeout]);
    } catch (error) {
      if (error instanceof XmppPublishError) throw error;
      throw new XmppPublishError(`xmpp: sending failed: ${this.redact(toError(error).message)}`, { cause: error });
    } finally {
      clearTimeout(timer);
      for (const stanza of stanzas) this.pending.delete(stanza);
      void Promise.allSettled(confirmations);
    }
  }

  /** Remembers the messages among `stanzas` by id (forgetting the too old); while the send waits, their bounces go to `bounces` by index. */
  private remember(stanzas: readonly XmlElement[], bounces: Map<number, XmppBouncedError>): Sent[] {
    const now = Date.now();
    for (const [id, sent] of this.sent) {
      if (this.sent.size < BOUNCE_MEMORY_SIZE && now - sent.at < BOUNCE_MEMORY_MS) break;
      this.sent.delete(id);
    }
    const watched: Sent[] = [];
    stanzas.forEach((stanza, index) => {
      const id = stanza.attrs.id;
      if (!stanza.is('message') || id === undefined) return;
      const sent: Sent = { to: stanza.attrs.to ?? '', messageId: stanza.getChild('interchange', ENVELOPE_NS)?.attrs.id, at: now, bounced: (error) => bounces.set(index, error) };
      this.sent.delete(id);
      this.sent.set(id, sent);
      watched.push(sent);
    });
    return watched;
  }

  /** A `type="error"` message answering one this session sent: reported (and failed, while its send waits). False for anything else. */
  private takeBounce(stanza: XmlElement): boolean {
    if (!stanza.is('message') || stanza.attrs.type !== 'error') return false;
    const stanzaId = stanza.attrs.id;
    const sent = stanzaId === undefined ? undefined : this.sent.get(stanzaId);
    if (sent === undefined || stanzaId === undefined) return false;
    this.sent.delete(stanzaId);
    const error = stanza.getChild('error');
    const condition = error?.children.find((child): child is XmlElement => typeof child !== 'string' && child.attrs.xmlns === STANZA_ERRORS_NS && child.name !== 'text')?.name ?? 'undefined-condition';
    const type = error?.attrs.type ?? 'cancel';
    const duringPublish = sent.bounced !== undefined;
    this.bounced += 1;
    sent.bounced?.(new XmppBouncedError(`xmpp: the server bounced message ${sent.messageId ?? stanzaId} to ${sent.to.slice(0, 300)}: ${condition} (${type})`, condition, type));
    const bounce: XmppBounce = { to: sent.to, messageId: sent.messageId, stanzaId, condition, type, duringPublish };
    this.settings.log.warn('xmpp: a message bounced', { account: this.bare, ...bounce, to: sent.to.slice(0, 300), bounced: this.bounced });
    try {
      this.settings.onBounce?.(bounce);
    } catch (thrown) {
      this.settings.log.error('xmpp: the onBounce hook threw', { account: this.bare, error: toError(thrown).message });
    }
    return true;
  }

  /** Sends a stanza without waiting for its confirmation (presence). */
  async sendNow(stanza: XmlElement): Promise<void> {
    const client = this.client;
    if (client === undefined || client.status !== 'online') return;
    await client.send(stanza);
  }

  /** Closes the stream (acknowledging what it received), stops reconnecting; idempotent. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.stopping.abort();
    await this.starting?.catch(() => undefined);
    const client = this.client;
    if (client !== undefined) {
      client.reconnect.stop();
      await client.stop().catch(() => undefined);
      client.removeAllListeners();
    }
    this.failPending(new XmppPublishError('xmpp session closed before the server acknowledged the stanza'));
    this.set({ state: 'closed' });
  }

  private create(): XmppClient {
    const { service, domain, username, password } = this.settings;
    const client = xmppClient({ service, domain, username, password, resource: this.resource });
    client.streamManagement.requestAckDebounce = 1;
    if (this.settings.resumable === false) {
      // the library always asks for resume="true": without it the server closes a dead link's session at once (see `resumable`)
      const send = client.send.bind(client);
      client.send = (element) => {
        if (element.is('enable', SM_NS)) delete element.attrs.resume;
        return send(element);
      };
    }
    client.on('error', (error) => {
      if (this.client === client) this.set({ ...this.state.value, lastError: this.redact(error.message) });
    });
    client.on('status', (status) => {
      if (status === 'connect') client.socket?.setNoDelay?.(true);
    });
    client.streamManagement.on('resumed', () => {
      this.resumed = true;
    });
    client.streamManagement.on('ack', (stanza) => this.pending.get(stanza)?.resolve());
    client.streamManagement.on('fail', (stanza) => this.pending.get(stanza)?.reject(new XmppPublishError('xmpp: the stream broke and could not be resumed; the server may or may not have handled the stanza')));
    return client;
  }

  /** `online` fires before `<enabled/>` comes back: wait for it (bounded) so every publish is covered by acks. */
  private async awaitStreamManagement(client: XmppClient): Promise<void> {
    const until = Date.now() + 2_000;
    while (!client.streamManagement.enabled && Date.now() < until) await sleep(2);
    this.smEnabled = client.streamManagement.enabled;
    if (!this.smEnabled) this.settings.log.warn('xmpp: the server offers no stream management (XEP-0198): publishes are confirmed by a ping round trip', { account: this.bare });
  }

  private watch(client: XmppClient): void {
    // our own reconnect loop with backoff (the library's retries at a fixed delay and gives up when a connect fails)
    client.reconnect.stop();
    client.on('stanza', (stanza) => {
      // whatever one stanza does, it never ends the session (an exception here would be thrown out of the socket's data handler)
      try {
        if (this.takeBounce(stanza)) return;
        this.settings.onStanza?.(stanza);
      } catch (error) {
        this.settings.log.error('xmpp: an inbound stanza could not be handled: dropped', { account: this.bare, name: stanza.name, from: (stanza.attrs.from ?? '').slice(0, 300), error: toError(error).message });
      }
    });
    client.on('status', (status) => {
      if (status === 'disconnect' && !this.stopped) this.reconnect(client);
    });
    client.on('online', () => {
      if (this.reconnecting !== undefined) return; // the loop reports it
      this.settings.onNewSession?.();
    });
  }

  private reconnect(client: XmppClient): void {
    if (this.reconnecting !== undefined) return;
    this.set({ state: 'reconnecting' });
    this.settings.log.warn('xmpp stream broken, reconnecting', { account: this.bare });
    this.reconnecting = (async () => {
      for (let attempt = 0; !this.stopped; attempt += 1) {
        await sleep(backoffDelay(attempt, this.settings.reconnect), undefined, { signal: this.stopping.signal }).catch(() => undefined);
        if (this.stopped) return;
        try {
          this.resumed = false;
          await client.connect(client.options.service);
          await client.open({ domain: client.options.domain, ...(client.options.lang === undefined ? {} : { lang: client.options.lang }) });
          await this.awaitOnline(client);
          const resumed = this.resumed;
          this.smEnabled = client.streamManagement.enabled;
          this.set({ state: 'connected' });
          this.settings.log.info('xmpp stream re-established', { account: this.bare, attempt: attempt + 1 });
          if (!resumed) this.settings.onNewSession?.();
          return;
        } catch (error) {
          this.set({ state: 'reconnecting', lastError: this.redact(toError(error).message) });
          if (client.status !== 'disconnect' && client.status !== 'offline') await client.disconnect().catch(() => undefined);
        }
      }
    })().finally(() => {
      this.reconnecting = undefined;
    });
  }

  private async awaitOnline(client: XmppClient): Promise<void> {
    const until = Date.now() + this.settings.connectTimeoutMs;
    while (client.status !== 'online') {
      if (Date.now() > until || client.status === 'disconnect' || client.status === 'offline') throw new NotConnectedError('xmpp: the reopened stream did not come online');
      await sleep(5);
    }
    const smUntil = Date.now() + 2_000;
    while (!client.streamManagement.enabled && Date.now() < smUntil) await sleep(2);
  }

  private failPending(error: Error): void {
    for (const pending of this.pending.values()) pending.reject(error);
    this.pending.clear();
  }

  private redact(text: string): string {
    return redactText(text, [this.settings.password]);
  }

  private set(status: Omit<XmppSessionStatus, 'since'>): void {
    const previous = this.state.value;
    this.state.next({ ...status, since: status.state === previous.state ? (previous.since ?? Date.now()) : Date.now() });
  }
}
