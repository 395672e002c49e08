import { Socket } from 'node:net';
import { connect, type ChannelModel } from 'amqplib';
import { BehaviorSubject, type Observable } from 'rxjs';
import { backoffDelay, batchWrites, checkUrlCredentials, NotConnectedError, toError, type Logger } from '../../src/core/index.ts';
import { Sleeper } from './amqp-backoff.ts';
import { AmqpAccessRefusedError, channelRefusalOf, redactText, redactUrl } from './amqp-errors.ts';
import type { AmqpTlsOptions } from './amqp-options.ts';
import { tlsFailureOf, type TlsCertificateError, type TlsHandshakeError } from '../../src/core/tls-errors.ts';

export type AmqpConnectionState = 'idle' | 'connecting' | 'connected' | 'blocked' | 'reconnecting' | 'closed';

/** The connection's state, for health checks: `connected` and `blocked` mean the link is up. */
export interface AmqpConnectionStatus {
  readonly state: AmqpConnectionState;
  /** Increments on every successful connect: channels and delivery tags belong to one generation. */
  readonly generation: number;
  readonly since: number;
  /** Redacted text of the last connection error. */
  readonly lastError?: string;
}

/** A component that needs channels: told on every (re)connect and on every loss. */
export interface ConnectionUser {
  /**
   * The connection of `generation` is up (the topology is declared before any other user is told).
   * A rejection drops that connection and reconnects; users that can retry on their own (channel
   * errors) should not reject.
   */
  connected(model: ChannelModel, generation: number): Promise<void>;
  /** The connection of `generation` is gone, and every channel on it. */
  lost(generation: number): void;
}

export interface ConnectionSettings {
  readonly url: string;
  readonly tls?: AmqpTlsOptions;
  readonly heartbeatSeconds: number;
  readonly initialDelayMs: number;
  readonly maxDelayMs: number;
  readonly log: Logger;
}

/**
 * One AMQP connection, kept up: connects, re-connects with backoff (±50 % jitter) after any loss
 * (network, broker restart, heartbeat timeout, connection-level error), and tells its users.
 *
 * Contract: every `error` event of the client is handled (logged, never thrown); the URL's password
 * never appears in logs, states or errors; TCP_NODELAY is on; `connection.blocked` shows as state
 * `blocked` until `unblocked`. `open` resolves on the first complete connect (topology declared) or
 * rejects with `NotConnectedError` after its timeout; after that the loop runs until `close`.
 * A refusal of the credentials or the virtual host (ACCESS_REFUSED 403, NOT_ALLOWED 530) before the
 * first connect ends the loop at once and `open` rejects with `AmqpAccessRefusedError`: retrying
 * cannot help. So do a failed TLS verification or handshake (`TlsCertificateError`,
 * `TlsHandshakeError`: untrusted CA, wrong host name, expired certificate, a plaintext port behind an
 * `amqps:` URL) and a topology the user may not declare (`AmqpAccessRefusedError` naming the queue or
 * exchange). After a first connect the loop keeps trying (credentials, permissions and certificates
 * may be restored), logging each refusal as an error.
 */
export class AmqpConnectionManager {
  private readonly statusSubject: BehaviorSubject<AmqpConnectionStatus>;
  private readonly users: ConnectionUser[] = [];
  private readonly sleeper = new Sleeper();
  private readonly secrets: string[];
  private readonly safeUrl: string;
  private model: ChannelModel | undefined;
  private generation = 0;
  private closing = false;
  private loop: Promise<void> | undefined;
  /** Why the connect loop gave up for good (a refusal before the first connect). */
  private refused: AmqpAccessRefusedError | TlsCertificateError | TlsHandshakeError | undefined;
  /** A connection has been up (topology declared) at least once: refusals are retried from then on. */
  private everConnected = false;

  constructor(private readonly settings: ConnectionSettings) {
    checkUrlCredentials(settings.url, 'the AMQP URL'); // amqplib would take part of an unencoded password for the host, and echo it
    this.statusSubject = new BehaviorSubject<AmqpConnectionStatus>({ state: 'idle', generation: 0, since: Date.now() });
    this.safeUrl = redactUrl(settings.url);
    this.secrets = secretsOf(settings);
  }

  /** Every state change (replays the current one). */
  get status$(): Observable<AmqpConnectionStatus> {
    return this.statusSubject.asObservable();
  }

  get status(): AmqpConnectionStatus {
    return this.statusSubject.value;
  }

  get redactedUrl(): string {
    return this.safeUrl;
  }

  /** The live connection and its generation, if up. */
  get current(): { readonly model: ChannelModel; readonly generation: number } | undefined {
    const state = this.status.state;
    return this.model !== undefined && (state === 'connected' || state === 'blocked') ? { model: this.model, generation: this.generation } : undefined;
  }

  /** Redacts secrets from any error text. */
  redact(text: string): string {
    return redactText(text, this.secrets);
  }

  /**
   * Adds a user; if the connection is up it is told at once (outside the reconnect sequence: its
   * failure is its own). Returns a function that removes it.
   */
  addUser(user: ConnectionUser): () => void {
    this.users.push(user);
    const live = this.current;
    if (live !== undefined) {
      user.connected(live.model, live.generation).catch((error: unknown) => this.settings.log.warn('amqp: channel setup failed', { url: this.safeUrl, error: this.redact(toError(error).message) }));
    }
    return () => {
      const index = this.users.indexOf(user);
      if (index >= 0) this.users.splice(index, 1);
    };
  }

  /**
   * Starts the connect loop (if not running) and resolves once connected; `NotConnectedError` after
   * `timeoutMs`, `AmqpAccessRefusedError` at once when the broker refuses the credentials or vhost.
   */
  async open(timeoutMs: number): Promise<void> {
    this.closing = false;
    this.refused = undefined;
    this.loop ??= this.run().finally(() => {
      this.loop = undefined;
    });
    if (this.current !== undefined) return;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        subscription.unsubscribe();
        reject(new NotConnectedError(`could not connect to ${this.safeUrl} within ${timeoutMs} ms${this.status.lastError === undefined ? '' : `: ${this.status.lastError}`}`));
      }, timeoutMs);
      const subscription = this.statusSubject.subscribe((status) => {
        const refused = this.refused;
        if (status.state === 'connected' || status.state === 'blocked' || refused !== undefined) {
          clearTimeout(timer);
          queueMicrotask(() => subscription.unsubscribe());
          if (refused === undefined) resolve();
          else reject(refused);
        }
      });
    }).catch(async (error: unknown) => {
      await this.close();
      throw error;
    });
  }

  /** Stops reconnecting and closes the connection (its channels with it). Idempotent. */
  async close(): Promise<void> {
    this.closing = true;
    this.sleeper.wake();
    const model = this.model;
    if (model !== undefined) await model.close().catch(() => undefined);
    await this.loop;
    this.setState('closed');
  }

  private setState(state: AmqpConnectionState, lastError?: string): void {
    const previous = this.status;
    if (previous.state === state && lastError === undefined) return;
    this.statusSubject.next({ state, generation: this.generation, since: Date.now(), lastError: lastError ?? previous.lastError });
  }

  /** Ends the loop before a first connect: `open` rejects with `error`. */
  private refuse(error: AmqpAccessRefusedError | TlsCertificateError | TlsHandshakeError, text: string): void {
    this.refused = error;
    this.closing = true;
    this.setState('closed', text);
  }

  private async run(): Promise<void> {
    let failures = 0;
    while (!this.closing) {
      this.setState(this.generation === 0 ? 'connecting' : 'reconnecting');
      let model: ChannelModel;
      try {
        model = await connect(this.settings.url, socketOptions(this.settings));
      } catch (error) {
        const text = this.redact(toError(error).message);
        const tls = this.settings.url.startsWith('amqps:') ? tlsFailureOf(error, { broker: this.safeUrl, secrets: this.secrets }) : undefined;
        if (tls !== undefined && !this.everConnected) {
          this.settings.log.error('amqp: TLS failed; not retrying', { url: this.safeUrl, code: tls.code, reason: tls.reason, error: tls.message });
          this.refuse(tls, text);
          break;
        }
        const replyCode = refusalCode(text);
        if (replyCode !== undefined && !this.everConnected) {
          // wrong credentials or vhost: no retry can help (after a first connect we keep trying: they may be restored)
          this.settings.log.error('amqp: the broker refused the connection; not retrying', { url: this.safeUrl, error: text });
          this.refused = new AmqpAccessRefusedError(replyCode, `${this.safeUrl} refused the connection (${replyCode === 403 ? 'ACCESS_REFUSED: check the user name and password' : 'NOT_ALLOWED: check that the virtual host exists and the user may use it'}): ${text}`);
          this.closing = true;
          this.setState('closed', text);
          break;
        }
        this.setState(this.generation === 0 ? 'connecting' : 'reconnecting', text);
        if (replyCode === undefined) this.settings.log.warn('amqp: connect failed; retrying', { url: this.safeUrl, error: text, attempt: failures + 1 });
        else this.settings.log.error('amqp: the broker refused the connection; retrying', { url: this.safeUrl, error: text, attempt: failures + 1 });
        await this.sleeper.sleep(backoffDelay(failures++, { initialMs: this.settings.initialDelayMs, maxMs: this.settings.maxDelayMs }));
        continue;
      }
      model.on('error', (error: unknown) => this.settings.log.warn('amqp: connection error', { url: this.safeUrl, error: this.redact(toError(error).message) }));
      // amqplib writes each frame batch to the socket as it comes: one syscall per message
      const socket = (model as unknown as { connection: { stream: unknown } }).connection.stream;
      if (socket instanceof Socket) batchWrites(socket);
      if (this.closing) {
        await model.close().catch(() => undefined);
        break;
      }
      this.generation += 1;
      const generation = this.generation;
      const closed = new Promise<string | undefined>((resolve) => {
        model.once('close', (error?: unknown) => resolve(error === undefined ? undefined : this.redact(toError(error).message)));
      });
      model.on('blocked', (reason: unknown) => {
        this.settings.log.warn('amqp: connection blocked by the broker; publishing paused', { url: this.safeUrl, reason: String(reason) });
        if (this.generation === generation) this.setState('blocked');
      });
      model.on('unblocked', () => {
        this.settings.log.info('amqp: connection unblocked', { url: this.safeUrl });
        if (this.generation === generation && this.model === model) this.setState('connected');
      });
      this.model = model;
      let setupError: string | undefined;
      try {
        for (const user of [...this.users]) await user.connected(model, generation);
      } catch (error) {
        setupError = this.redact(toError(error).message);
        const refusal = channelRefusalOf(error, (text) => this.redact(text)) ?? (error instanceof AmqpAccessRefusedError ? error : undefined);
        if (refusal !== undefined && !this.everConnected) {
          // a topology the user may not declare: the same on every attempt
          this.settings.log.error('amqp: the broker refused the topology; not retrying', { url: this.safeUrl, error: refusal.message });
          this.model = undefined;
          await model.close().catch(() => undefined);
          for (const user of [...this.users]) user.lost(generation);
          this.refuse(refusal, setupError);
          break;
        }
        this.settings.log.error('amqp: connection setup (topology) failed; reconnecting', { url: this.safeUrl, error: setupError });
        await model.close().catch(() => undefined);
      }
      if (setupError === undefined) {
        failures = 0;
        this.everConnected = true;
        this.setState('connected', undefined);
      }
      const reason = await closed;
      this.model = undefined;
      for (const user of [...this.users]) user.lost(generation);
      if (this.closing) break;
      if (setupError === undefined) {
        this.setState('reconnecting', reason);
        this.settings.log.warn('amqp: connection lost; reconnecting', { url: this.safeUrl, reason });
      } else {
        this.setState('reconnecting', setupError);
      }
      await this.sleeper.sleep(backoffDelay(failures++, { initialMs: this.settings.initialDelayMs, maxMs: this.settings.maxDelayMs }));
    }
  }
}

/**
 * 403 when amqplib's connect error is the broker's ACCESS_REFUSED (credentials), 530 when it is a
 * refusal of `connection.open` (NOT_ALLOWED: the virtual host does not exist or the user may not
 * use it — amqplib reports only "Expected ConnectionOpenOk; got <ConnectionClose…>" for it, and
 * RabbitMQ closes on `connection.open` only to refuse the vhost), undefined for anything else.
 */
function refusalCode(text: string): 403 | 530 | undefined {
  if (/\b403 \(ACCESS[-_]REFUSED\)|\bACCESS_REFUSED\b/.test(text)) return 403;
  if (/\b530 \(NOT[-_]ALLOWED\)|\bNOT_ALLOWED\b|Expected ConnectionOpenOk; got <ConnectionClose/.test(text)) return 530;
  return undefined;
}

function socketOptions(settings: ConnectionSettings): Record<string, unknown> {
  const tls = settings.tls ?? {};
  return { noDelay: true, timeout: 10_000, clientProperties: { connection_name: 'interchange' }, ...tls };
}

/** The URL with `heartbeat` set (unless it has one). */
export function withHeartbeat(url: string, heartbeatSeconds: number): string {
  if (/[?&]heartbeat=/.test(url)) return url;
  return `${url}${url.includes('?') ? '&' : '?'}heartbeat=${heartbeatSeconds}`;
}

function secretsOf(settings: ConnectionSettings): string[] {
  const secrets: string[] = [];
  try {
    const password = new URL(settings.url).password;
    if (password !== '') secrets.push(password, decodeURIComponent(password));
  } catch {
    // not a parsable URL: nothing to extract
  }
  if (settings.tls?.passphrase !== undefined) secrets.push(settings.tls.passphrase);
  return secrets;
}
