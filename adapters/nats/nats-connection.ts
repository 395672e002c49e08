import { connect, type ConnectionOptions, type NatsConnection } from '@nats-io/transport-node';
import { setTimeout as sleep } from 'node:timers/promises';
import { BehaviorSubject, distinctUntilChanged, type Observable } from 'rxjs';
import { backoffDelay, NotConnectedError, redactText, redactUrl, type Logger, type TransportStatus } from '../../src/core/index.ts';
import type { NatsTransportOptions } from './nats-options.ts';

/** The NATS transport's connection state: `connected`, `reconnecting` (lost, retrying forever), `closed`. */
export interface NatsTransportStatus extends TransportStatus {
  readonly state: 'connecting' | 'connected' | 'reconnecting' | 'closed';
  /** The server's version once connected. */
  readonly serverVersion?: string;
}

/** Default server when neither the option nor `NATS_URL` names one. */
export const DEFAULT_NATS_URL = 'nats://127.0.0.1:4222';

/**
 * One NATS connection with its lifecycle (nats.js v3): `open` retries with backoff (`backoffDelay`)
 * until `connectTimeoutMs` has passed, then rejects with `NotConnectedError`; once open, nats.js
 * reconnects forever with the same backoff (`reconnect` options) and re-subscribes core subscriptions
 * itself; while it is away publishes are buffered by nats.js and flushes wait. `status$` follows it.
 */
export class NatsConnectionManager {
  private connection: NatsConnection | undefined;
  private readonly subject = new BehaviorSubject<NatsTransportStatus>({ state: 'closed', since: Date.now() });
  private reconnectAttempts = 0;

  constructor(
    private readonly options: NatsTransportOptions & { readonly url: string },
    private readonly log: Logger,
  ) {}

  get status$(): Observable<NatsTransportStatus> {
    return this.subject.pipe(distinctUntilChanged((a, b) => a.state === b.state && a.lastError === b.lastError));
  }

  get status(): NatsTransportStatus {
    return this.subject.value;
  }

  /** The open connection; throws `NotConnectedError` before `open` or after `close`. */
  get nc(): NatsConnection {
    if (this.connection === undefined) throw new NotConnectedError('nats transport is not connected');
    return this.connection;
  }

  get isOpen(): boolean {
    return this.connection !== undefined;
  }

  async open(): Promise<NatsConnection> {
    if (this.connection !== undefined) return this.connection;
    const deadline = Date.now() + (this.options.connectTimeoutMs ?? 10_000);
    this.set({ state: 'connecting' });
    for (let attempt = 0; ; attempt += 1) {
      try {
        const remaining = Math.max(500, deadline - Date.now());
        const nc = await connect(this.connectionOptions(Math.min(remaining, 5_000)));
        this.connection = nc;
        this.watch(nc);
        this.set({ state: 'connected', ...(nc.info?.version === undefined ? {} : { serverVersion: nc.info.version }) });
        return nc;
      } catch (error) {
        const text = this.redact((error as Error).message);
        if (Date.now() >= deadline) {
          this.set({ state: 'closed', lastError: text });
          throw new NotConnectedError(`nats transport: cannot connect to ${this.serverList()}: ${text}`, { cause: error });
        }
        const delay = Math.min(backoffDelay(attempt, this.reconnectBackoff()), Math.max(0, deadline - Date.now()));
        this.log.info('nats connect failed, retrying', { error: text, delayMs: delay });
        await sleep(delay);
      }
    }
  }

  /** Flushes what is buffered and closes; idempotent. */
  async close(): Promise<void> {
    const nc = this.connection;
    this.connection = undefined;
    if (nc === undefined) return;
    try {
      if (!nc.isClosed()) await nc.drain();
    } catch {
      await nc.close().catch(() => undefined);
    }
    this.set({ state: 'closed' });
  }

  private connectionOptions(timeout: number): ConnectionOptions {
    const o = this.options;
    return {
      servers: this.options.url.split(',').map((server) => server.trim()),
      name: o.name ?? 'interchange',
      timeout,
      maxReconnectAttempts: -1,
      reconnectDelayHandler: () => backoffDelay(this.reconnectAttempts++, this.reconnectBackoff()),
      ignoreClusterUpdates: false,
      // nats.js by default captures a stack trace per request to decorate a later failure — two Error
      // objects per JetStream publish (each is a request), ~40 µs of CPU measured here, a third of the
      // client's work in a pass-through. Every failure the adapter reports is its own typed error naming
      // subject and stream, so the caller's stack adds nothing; errors keep their types and causes.
      noAsyncTraces: true,
      ...(o.username === undefined ? {} : { user: o.username }),
      ...(o.password === undefined ? {} : { pass: o.password }),
      ...(o.token === undefined ? {} : { token: o.token }),
      ...(o.tls === undefined ? {} : { tls: { ...o.tls } }),
    };
  }

  private reconnectBackoff(): { initialMs: number; maxMs: number } {
    return { initialMs: this.options.reconnect?.initialDelayMs ?? 250, maxMs: this.options.reconnect?.maxDelayMs ?? 30_000 };
  }

  private serverList(): string {
    return this.options.url.split(',').map((server) => redactUrl(server.trim())).join(', ');
  }

  private watch(nc: NatsConnection): void {
    void (async () => {
      for await (const event of nc.status()) {
        if (event.type === 'disconnect' || event.type === 'reconnecting') {
          if (this.subject.value.state !== 'reconnecting') this.log.warn('nats connection lost, reconnecting', { server: redactUrl(String((event as { server?: string }).server ?? '')) });
          this.set({ state: 'reconnecting' });
        } else if (event.type === 'reconnect') {
          this.reconnectAttempts = 0;
          this.log.info('nats connection re-established');
          this.set({ state: 'connected' });
        } else if (event.type === 'error') {
          this.set({ ...this.subject.value, lastError: this.redact(String((event as { error?: Error }).error?.message ?? 'error')) });
        }
      }
    })().catch(() => undefined);
    void nc.closed().then((error) => {
      if (this.connection === nc) this.connection = undefined;
      this.set(error instanceof Error ? { state: 'closed', lastError: this.redact(error.message) } : { state: 'closed' });
    });
  }

  /** An error text without the password or token. */
  private redact(text: string): string {
    return redactText(text, [this.options.password, this.options.token].filter((secret): secret is string => secret !== undefined));
  }

  private set(status: Omit<NatsTransportStatus, 'since'>): void {
    const previous = this.subject.value;
    this.subject.next({ ...status, since: status.state === previous.state ? (previous.since ?? Date.now()) : Date.now(), ...(status.serverVersion === undefined && previous.serverVersion !== undefined ? { serverVersion: previous.serverVersion } : {}) });
  }
}
