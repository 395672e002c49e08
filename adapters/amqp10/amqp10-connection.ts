import { hostname } from 'node:os';
import rhea, { type AmqpError, type Connection, type ConnectionOptions, type Container, type EventContext } from 'rhea';
import { BehaviorSubject, type Observable } from 'rxjs';
import { backoffDelay, NotConnectedError, redactText, redactUrl, toError, type Logger, type TransportStatus } from '../../src/core/index.ts';
import { Amqp10AuthenticationError } from './amqp10-errors.ts';
import type { ConnectionTarget } from './amqp10-options.ts';

/** The transport's connection state. */
export interface Amqp10Status extends TransportStatus {
  readonly state: 'connecting' | 'connected' | 'reconnecting' | 'closed';
}

export interface ConnectionSettings {
  readonly url: string;
  readonly target: ConnectionTarget;
  readonly connectTimeoutMs: number;
  readonly initialDelayMs: number;
  readonly maxDelayMs: number;
  readonly idleTimeoutMs: number;
  readonly containerId: string | undefined;
  readonly log: Logger;
}

const AUTH_CONDITIONS = new Set(['amqp:unauthorized-access']);

/**
 * One AMQP 1.0 connection kept open with the house backoff (rhea's own reconnect is off: its delays
 * have no jitter and it re-attaches links with stale deliveries; here a reconnect is a NEW connection
 * and each user re-attaches its links in `onOpen`).
 *
 * Contract: `open()` resolves once a connection is open, retrying refused or dropped attempts with
 * backoff up to `connectTimeoutMs` (then `NotConnectedError`); a refused login
 * (`amqp:unauthorized-access`, SASL outcome `auth`) rejects at once with `Amqp10AuthenticationError`,
 * never retried. Once open, a dropped connection is reopened with backoff until `close()`; `onOpen`
 * listeners run on every (re)open, `onLost` listeners when it drops. Passwords never reach logs or errors.
 */
export class Amqp10Connection {
  private readonly container: Container;
  private connection: Connection | undefined;
  private closing = true;
  private failures = 0;
  private timer: NodeJS.Timeout | undefined;
  private readonly openListeners = new Set<(connection: Connection) => void>();
  private readonly lostListeners = new Set<() => void>();
  private readonly status = new BehaviorSubject<Amqp10Status>({ state: 'closed', since: Date.now() });
  private readonly secrets: string[];

  constructor(private readonly settings: ConnectionSettings) {
    this.container = rhea.create_container({ id: settings.containerId ?? `interchange-${hostname()}-${process.pid}` });
    // rhea raises unhandled link/session errors on the container: a bad disposition must never crash the process
    this.container.on('error', (context: EventContext & { error?: unknown }) => this.warn('amqp10: protocol error', context.error));
    this.secrets = settings.target.password === undefined ? [] : [settings.target.password];
  }

  get status$(): Observable<Amqp10Status> {
    return this.status.asObservable();
  }

  /** The open connection, if any. */
  get current(): Connection | undefined {
    return this.connection?.is_open() === true ? this.connection : undefined;
  }

  onOpen(listener: (connection: Connection) => void): () => void {
    this.openListeners.add(listener);
    return () => this.openListeners.delete(listener);
  }

  onLost(listener: () => void): () => void {
    this.lostListeners.add(listener);
    return () => this.lostListeners.delete(listener);
  }

  async open(): Promise<void> {
    if (!this.closing) return;
    this.closing = false;
    this.next('connecting');
    const timeoutMs = this.settings.connectTimeoutMs;
    await new Promise<void>((resolve, reject) => {
      const deadline = setTimeout(() => {
        done(new NotConnectedError(`amqp10: cannot connect to ${redactUrl(this.settings.url)} within ${timeoutMs} ms${this.status.value.lastError === undefined ? '' : `: ${this.status.value.lastError}`}`));
      }, timeoutMs);
      const offOpen = this.onOpen(() => done());
      const done = (error?: Error): void => {
        clearTimeout(deadline);
        offOpen();
        this.refused = undefined;
        if (error === undefined) resolve();
        else {
          this.shutdown();
          reject(error);
        }
      };
      this.refused = done;
      this.attempt();
    });
  }

  /** Set while `open()` waits: a refused login ends the wait at once. */
  private refused: ((error: Error) => void) | undefined;

  async close(): Promise<void> {
    if (this.closing) return;
    const connection = this.connection;
    this.shutdown();
    if (connection?.is_open() === true) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 2_000);
        connection.once('connection_close', () => {
          clearTimeout(timer);
          resolve();
        });
        connection.close();
      });
    }
    connection?.removeAllListeners();
    this.next('closed');
  }

  private shutdown(): void {
    this.closing = true;
    clearTimeout(this.timer);
    const connection = this.connection;
    this.connection = undefined;
    if (connection !== undefined && !connection.is_open()) {
      connection.removeAllListeners();
      connection.on('error', () => undefined);
      connection.on('disconnected', () => undefined);
    }
    if (connection !== undefined && this.status.value.state !== 'connected') {
      this.connectionClosed(connection);
    }
    this.next('closed');
  }

  private connectionClosed(connection: Connection): void {
    try {
      (connection as unknown as { close(): void; socket?: { destroy(): void } }).socket?.destroy();
    } catch {
      // already gone
    }
  }

  private attempt(): void {
    if (this.closing) return;
    const { target, idleTimeoutMs } = this.settings;
    // TCP_NODELAY: rhea's `tcp_no_delay` (its default is on; set here so it stays on), missing from its typings
    const options = {
      host: target.host,
      port: target.port,
      transport: target.tls ? 'tls' : 'tcp',
      ...(target.username === undefined ? {} : { username: target.username }),
      ...(target.password === undefined ? {} : { password: target.password }),
      reconnect: false,
      tcp_no_delay: true,
      idle_time_out: idleTimeoutMs,
    };
    const connection = this.container.connect(options as ConnectionOptions);
    this.connection = connection;
    let lost = false;
    const drop = (error: unknown): void => {
      if (lost) return;
      lost = true;
      const text = this.describe(error);
      if (this.connection === connection) this.connection = undefined;
      connection.removeAllListeners();
      connection.on('error', () => undefined);
      connection.on('disconnected', () => undefined);
      if (this.closing) return;
      const wasOpen = this.status.value.state === 'connected';
      this.status.next({ ...this.status.value, lastError: text });
      if (wasOpen) {
        this.settings.log.warn('amqp10: connection lost; reconnecting', { url: redactUrl(this.settings.url), error: text });
        this.next('reconnecting');
        for (const listener of this.lostListeners) listener();
      }
      const delay = backoffDelay(this.failures++, { initialMs: this.settings.initialDelayMs, maxMs: this.settings.maxDelayMs });
      this.timer = setTimeout(() => this.attempt(), delay);
    };
    connection.on('connection_open', () => {
      if (this.closing || this.connection !== connection) return;
      this.failures = 0;
      this.next('connected');
      for (const listener of this.openListeners) listener(connection);
    });
    connection.on('connection_error', (context: EventContext & { error?: unknown }) => {
      const error = (context.error ?? context.connection.error) as AmqpError | undefined;
      if (error !== undefined && AUTH_CONDITIONS.has(String(error.condition)) && this.refused !== undefined) {
        this.refused(new Amqp10AuthenticationError(`amqp10: ${redactUrl(this.settings.url)} refused the credentials: ${this.describe(error)}`));
        return;
      }
      drop(error);
    });
    connection.on('connection_close', () => drop(new Error('closed by the broker')));
    connection.on('disconnected', (context: EventContext & { error?: unknown }) => {
      const sasl = (context.connection as unknown as { sasl_failed?: boolean }).sasl_failed;
      if (sasl === true && this.refused !== undefined) {
        this.refused(new Amqp10AuthenticationError(`amqp10: ${redactUrl(this.settings.url)} refused the credentials (SASL)`));
        return;
      }
      drop(context.error ?? new Error('disconnected'));
    });
    connection.on('error', (context: EventContext & { error?: unknown }) => this.warn('amqp10: connection error', context.error));
    connection.on('session_error', (context: EventContext) => this.warn('amqp10: session error', context.session?.error));
  }

  private describe(error: unknown): string {
    if (typeof error === 'object' && error !== null && 'condition' in error) {
      const { condition, description } = error as { condition?: unknown; description?: unknown };
      return redactText(`${String(condition)}${description === undefined ? '' : `: ${String(description)}`}`, this.secrets);
    }
    return redactText(redactUrl(toError(error).message), this.secrets);
  }

  private warn(text: string, error: unknown): void {
    this.settings.log.warn(text, { url: redactUrl(this.settings.url), error: this.describe(error) });
  }

  private next(state: Amqp10Status['state']): void {
    if (this.status.value.state === state) return;
    const { lastError } = this.status.value;
    this.status.next({ state, since: Date.now(), ...(lastError === undefined || state === 'connected' ? {} : { lastError }) });
  }
}
