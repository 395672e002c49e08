import { createConnection, type Socket } from 'node:net';
import { Client, Versions, type IFrame } from '@stomp/stompjs';
import { TCPWrapper } from '@stomp/tcp-wrapper';
import { backoffDelay, batchWrites, NotConnectedError, redactText, TimeoutError, type Logger } from '../../src/core/index.ts';
import { isPermanentBrokerMessage, StompBrokerError, StompConnectRefusedError } from './stomp-errors.ts';
import type { StompAddress } from './stomp-options.ts';

/** The broker, from the CONNECTED frame's `server` header: what NACK and prefetch mean depends on it. */
export type BrokerFlavour = 'rabbitmq' | 'activemq' | 'generic';

/** A TCP socket with TCP_NODELAY and one write per event-loop turn (the client writes one chunk per frame). */
class FastTcp extends TCPWrapper {
  protected override getSocket(port: number, host: string): Socket {
    const socket = createConnection({ port, host, noDelay: true });
    batchWrites(socket);
    return socket;
  }
}

export interface LinkSettings {
  readonly address: StompAddress;
  readonly heartbeatMs: number;
  readonly initialDelayMs: number;
  readonly maxDelayMs: number;
  /** The URL for logs and errors, redacted. */
  readonly label: string;
  readonly log: Logger;
}

/** A connection must have stayed up this long before the reconnect backoff starts again from its first step. */
export const STABLE_CONNECTION_MS = 5_000;

interface PendingSend {
  readonly destination: string;
  resolve(): void;
  reject(error: Error): void;
}

/** A SEND's headers (without `destination` and `receipt`) and body. */
export interface OutboundFrame {
  readonly headers: Readonly<Record<string, string>>;
  readonly body: Uint8Array;
}

/**
 * The SENDs of one `sendAll`: one deadline timer and one promise for all of them (no timer, promise or
 * closure per message). Resolves with each SEND's outcome once every one is settled.
 */
class SendBatch {
  readonly outcomes: (Error | undefined)[];
  private open: number;
  private timer: NodeJS.Timeout | undefined;
  private done!: (outcomes: (Error | undefined)[]) => void;
  readonly settled: Promise<(Error | undefined)[]>;
  private readonly settledFlags: boolean[];

  constructor(size: number) {
    this.outcomes = new Array<Error | undefined>(size).fill(undefined);
    this.settledFlags = new Array<boolean>(size).fill(false);
    this.open = size;
    this.settled = new Promise((resolve) => {
      this.done = resolve;
    });
    if (size === 0) this.done(this.outcomes);
  }

  /** Past `timeoutMs`, `onTimeout` settles what is still open. */
  arm(timeoutMs: number, onTimeout: () => void): void {
    if (this.open > 0) this.timer = setTimeout(onTimeout, timeoutMs);
  }

  isOpen(index: number): boolean {
    return !(this.settledFlags[index] as boolean);
  }

  settle(index: number, error: Error | undefined): void {
    if (this.settledFlags[index] as boolean) return;
    this.settledFlags[index] = true;
    this.outcomes[index] = error;
    if ((this.open -= 1) > 0) return;
    clearTimeout(this.timer);
    this.done(this.outcomes);
  }
}

/** One SEND of a batch, awaiting its RECEIPT. */
class BatchedSend implements PendingSend {
  constructor(
    readonly destination: string,
    readonly receipt: string,
    private readonly batch: SendBatch,
    readonly index: number,
  ) {}

  resolve(): void {
    this.batch.settle(this.index, undefined);
  }

  reject(error: Error): void {
    this.batch.settle(this.index, error);
  }
}

interface Waiter {
  resolve(client: Client): void;
  reject(error: Error): void;
}

/**
 * One STOMP 1.2 connection (@stomp/stompjs over TCP) that reconnects with backoff (src/core/backoff)
 * until `close`: a new client per attempt, heart-beats both ways, TCP_NODELAY.
 *
 * Contract:
 * - `generation` counts the CONNECTED frames: what was received on one connection (a MESSAGE's ack id)
 *   means nothing on the next — the broker took back every unacknowledged message when the first broke.
 * - `send` waits (within its deadline) for a connection, sends a SEND with a `receipt`, and resolves on
 *   the RECEIPT (`sendAll`: many SENDs, pipelined, one deadline, each one's outcome); an ERROR frame naming that receipt rejects it with `StompBrokerError`, a connection lost
 *   first with `NotConnectedError` (the message may or may not have been taken: at-least-once), no
 *   RECEIPT in time with `TimeoutError`. An ERROR naming no receipt rejects every SEND awaited with
 *   `StompBrokerError`: permanent when `isPermanentBrokerMessage` and the SENDs awaited can only be the
 *   culprits (one SEND; for `not_found`/`access_refused`, all to one destination), else transient.
 * - `onBrokerError` hears every ERROR after CONNECTED (with whether a MESSAGE came on that connection).
 * - the reconnect backoff starts again from its first step only after a connection that stayed up
 *   `STABLE_CONNECTION_MS`: a broker that closes every connection soon after CONNECTED is retried
 *   ever more slowly, not in a tight loop.
 * - an ERROR frame before CONNECTED (login refused) is reported through `onRefused` and ends the
 *   attempts of a link that never connected; after one, the link keeps retrying.
 * - `close` sends DISCONNECT (the broker processes the frames sent before it — ACKs — and takes back
 *   every unacknowledged message), waits at most 5 s for it, and stops reconnecting. Idempotent.
 */
export class StompLink {
  generation = 0;
  flavour: BrokerFlavour = 'generic';
  /** Called on every CONNECTED, with that connection's client. */
  onConnected: ((client: Client, generation: number) => void) | undefined;
  /** Called when a connection that was up is lost (not on `close`). */
  onLost: ((error: Error | undefined) => void) | undefined;
  /** Called when the broker refuses the CONNECT of a link that never connected; the link has stopped. */
  onRefused: ((error: StompConnectRefusedError) => void) | undefined;
  /** Called on an ERROR frame after CONNECTED (the broker closes the connection next). */
  onBrokerError: ((error: StompBrokerError) => void) | undefined;
  private client: Client | undefined;
  private connectedClient: Client | undefined;
  /** A connected client the broker sent an ERROR on: it closes next, so nothing more is sent on it. */
  private closingClient: Client | undefined;
  private everConnected = false;
  private closing = true;
  private failures = 0;
  private connectedAt = 0;
  private timer: NodeJS.Timeout | undefined;
  private sequence = 0;
  private lastError: Error | undefined;
  private readonly waiters = new Set<Waiter>();
  private readonly pending = new Map<string, PendingSend>();

  constructor(private readonly settings: LinkSettings) {}

  get connected(): boolean {
    return this.connectedClient !== undefined;
  }

  /** The client of the current connection, if it is up. */
  get current(): Client | undefined {
    return this.connectedClient;
  }

  /** The last connection or broker error, redacted, for status and error texts. */
  get lastErrorText(): string | undefined {
    return this.lastError === undefined ? undefined : this.redact(this.lastError.message);
  }

  /** Starts connecting (and reconnecting) in the background. */
  start(): void {
    if (!this.closing) return;
    this.closing = false;
    this.failures = 0;
    this.attempt();
  }

  /** Resolves with the connected client; rejects after `timeoutMs` with `NotConnectedError`, at once when the link is closed or the broker refused the login. */
  whenConnected(timeoutMs: number): Promise<Client> {
    const client = this.connectedClient;
    if (client !== undefined) return Promise.resolve(client);
    if (this.closing) return Promise.reject(new NotConnectedError(`stomp: the connection to ${this.settings.label} is closed`));
    return new Promise<Client>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.delete(waiter);
        reject(new NotConnectedError(`stomp: not connected to ${this.settings.label} within ${timeoutMs} ms${this.lastError === undefined ? '' : `: ${this.redact(this.lastError.message)}`}`, { cause: this.lastError }));
      }, timeoutMs);
      const waiter: Waiter = {
        resolve: (connected) => {
          clearTimeout(timer);
          resolve(connected);
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      };
      this.waiters.add(waiter);
    });
  }

  /** SEND with a receipt, resolved on the RECEIPT (see the class contract). */
  async send(destination: string, headers: Readonly<Record<string, string>>, body: Uint8Array, timeoutMs: number): Promise<void> {
    const [outcome] = await this.sendAll(destination, [{ headers, body }], timeoutMs);
    if (outcome !== undefined) throw outcome;
  }

  /**
   * One SEND with a `receipt` per frame, pipelined, within one deadline (waiting for a connection
   * included); never rejects: resolves with each SEND's outcome, by index — `undefined` once its
   * RECEIPT came, else its error as `send` would reject with it.
   */
  async sendAll(destination: string, frames: readonly OutboundFrame[], timeoutMs: number): Promise<(Error | undefined)[]> {
    const batch = new SendBatch(frames.length);
    const startedAt = Date.now();
    let client = this.connectedClient;
    if (client === undefined) {
      try {
        client = await this.whenConnected(timeoutMs);
      } catch (error) {
        for (let index = 0; index < frames.length; index += 1) batch.settle(index, error as Error);
        return batch.settled;
      }
    }
    const entries: BatchedSend[] = [];
    for (let index = 0; index < frames.length; index += 1) {
      const frame = frames[index] as OutboundFrame;
      const receipt = `ic-${this.generation}-${(this.sequence += 1)}`;
      const entry = new BatchedSend(destination, receipt, batch, index);
      this.pending.set(receipt, entry);
      try {
        client.publish({ destination, headers: { ...frame.headers, receipt }, binaryBody: frame.body });
        entries.push(entry);
      } catch (error) {
        this.pending.delete(receipt);
        entry.reject(new NotConnectedError(`stomp: connection to ${this.settings.label} lost before a SEND`, { cause: error }));
      }
    }
    batch.arm(Math.max(1, timeoutMs - (Date.now() - startedAt)), () => {
      for (const entry of entries) {
        if (!batch.isOpen(entry.index)) continue;
        this.pending.delete(entry.receipt);
        entry.reject(new TimeoutError(`stomp: no RECEIPT for a SEND to '${destination.slice(0, 200)}' within ${timeoutMs} ms`));
      }
    });
    return batch.settled;
  }

  /** Stops reconnecting and disconnects (see the class contract). */
  async close(): Promise<void> {
    if (this.closing && this.client === undefined) return;
    this.closing = true;
    clearTimeout(this.timer);
    const client = this.client;
    this.client = undefined;
    this.connectedClient = undefined;
    this.failAll(new NotConnectedError(`stomp: the connection to ${this.settings.label} was closed`));
    if (client === undefined) return;
    let timer: NodeJS.Timeout | undefined;
    const bounded = new Promise<'late'>((resolve) => {
      timer = setTimeout(() => resolve('late'), 5_000);
    });
    const outcome = await Promise.race([client.deactivate().catch(() => undefined), bounded]);
    clearTimeout(timer);
    if (outcome === 'late') await client.deactivate({ force: true }).catch(() => undefined);
  }

  private attempt(): void {
    if (this.closing) return;
    const { address, heartbeatMs } = this.settings;
    const connectHeaders: Record<string, string> = { host: address.virtualHost };
    if (address.login !== undefined) connectHeaders.login = address.login;
    if (address.passcode !== undefined) connectHeaders.passcode = address.passcode;
    const client: Client = new Client({
      webSocketFactory: () => new FastTcp(address.host, address.port),
      stompVersions: new Versions([Versions.V1_2]),
      connectHeaders,
      heartbeatIncoming: heartbeatMs,
      heartbeatOutgoing: heartbeatMs,
      reconnectDelay: 0,
      connectionTimeout: 10_000,
      discardWebsocketOnCommFailure: true,
      debug: () => undefined,
      onConnect: (frame) => this.connectedOn(client, frame),
      // every SEND's RECEIPT comes here (no watcher per SEND): receipt ids are unique per link
      onUnhandledReceipt: (frame) => this.receiptOf(frame),
      onStompError: (frame) => this.brokerError(client, frame),
      onWebSocketError: (event: unknown) => {
        const cause = (event as { message?: unknown } | undefined)?.message;
        if (this.client === client) this.lastError = cause instanceof Error ? cause : new Error(String(cause ?? 'socket error'));
      },
      onWebSocketClose: () => this.lost(client),
    });
    this.client = client;
    client.activate();
  }

  private receiptOf(frame: IFrame): void {
    const receipt = frame.headers['receipt-id'];
    if (receipt === undefined) return;
    const entry = this.pending.get(receipt);
    if (entry === undefined) return;
    this.pending.delete(receipt);
    entry.resolve();
  }

  private connectedOn(client: Client, frame: IFrame): void {
    if (this.client !== client) return;
    const server = frame.headers.server ?? '';
    this.flavour = server.startsWith('RabbitMQ') ? 'rabbitmq' : server.startsWith('ActiveMQ') ? 'activemq' : 'generic';
    this.generation += 1;
    this.connectedAt = Date.now();
    this.everConnected = true;
    this.connectedClient = client;
    for (const waiter of [...this.waiters]) waiter.resolve(client);
    this.waiters.clear();
    this.onConnected?.(client, this.generation);
  }

  private brokerError(client: Client, frame: IFrame): void {
    if (this.client !== client || this.closingClient === client) return;
    const message = this.redact((frame.headers.message ?? 'ERROR').slice(0, 500));
    const detail = this.redact(frame.body.slice(0, 1_000).trim());
    if (this.connectedClient !== client) {
      const refused = new StompConnectRefusedError(message, detail);
      this.lastError = refused;
      if (!this.everConnected) {
        this.settings.log.error('stomp: the broker refused the connection', { url: this.settings.label, error: refused.message });
        for (const waiter of [...this.waiters]) waiter.reject(refused);
        this.waiters.clear();
        this.closing = true;
        clearTimeout(this.timer);
        this.onRefused?.(refused);
        void client.deactivate({ force: true }).catch(() => undefined);
        this.client = undefined;
      }
      return;
    }
    const permanentVerdict = isPermanentBrokerMessage(message);
    const receipt = frame.headers['receipt-id'];
    const named = receipt === undefined ? undefined : this.pending.get(receipt);
    let culprits: PendingSend[];
    let permanent: boolean;
    if (named !== undefined) {
      culprits = [named];
      permanent = permanentVerdict;
    } else {
      // no receipt named: any SEND awaited may be the one refused
      culprits = [...this.pending.values()];
      const destinations = new Set(culprits.map((entry) => entry.destination));
      permanent = permanentVerdict && (culprits.length === 1 || (destinations.size === 1 && !/^precondition_failed$/i.test(message.trim())));
    }
    const error = new StompBrokerError(message, detail, { permanent });
    this.lastError = error;
    this.connectedClient = undefined; // the broker closes the connection: later SENDs wait for the next one
    this.closingClient = client;
    this.settings.log.warn('stomp: broker ERROR frame; the broker closes the connection', { url: this.settings.label, error: error.message });
    for (const [key, entry] of this.pending) {
      if (!culprits.includes(entry)) continue;
      this.pending.delete(key);
      entry.reject(error);
    }
    this.onBrokerError?.(error);
  }

  private lost(client: Client): void {
    if (this.client !== client) return;
    const wasConnected = this.connectedClient === client || this.closingClient === client;
    this.connectedClient = undefined;
    this.closingClient = undefined;
    this.client = undefined;
    void client.deactivate().catch(() => undefined); // no socket left: only marks the client inactive
    this.failAll(new NotConnectedError(`stomp: connection to ${this.settings.label} lost${this.lastError === undefined ? '' : `: ${this.redact(this.lastError.message)}`}`, { cause: this.lastError }));
    if (wasConnected) {
      if (Date.now() - this.connectedAt >= STABLE_CONNECTION_MS) this.failures = 0;
      this.settings.log.warn('stomp: connection lost; reconnecting', { url: this.settings.label, error: this.lastErrorText });
      this.onLost?.(this.lastError);
    }
    if (this.closing) return;
    this.timer = setTimeout(() => this.attempt(), backoffDelay(this.failures++, { initialMs: this.settings.initialDelayMs, maxMs: this.settings.maxDelayMs }));
  }

  /** Rejects every receipt still awaited (its SEND's fate is unknown). */
  private failAll(error: Error): void {
    const entries = [...this.pending.values()];
    this.pending.clear();
    for (const entry of entries) entry.reject(error);
    if (this.closing) {
      for (const waiter of [...this.waiters]) waiter.reject(error);
      this.waiters.clear();
    }
  }

  private redact(text: string): string {
    const passcode = this.settings.address.passcode;
    return passcode === undefined || passcode === '' ? text : redactText(text, [passcode]);
  }
}
