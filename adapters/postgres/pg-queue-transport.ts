import { BehaviorSubject, Observable } from 'rxjs';
import {
  backoffDelay,
  consoleLogger,
  NotConnectedError,
  parseEndpoint,
  publishEach,
  TimeoutError,
  toError,
  type ConsumeOptions,
  type Delivery,
  type Endpoint,
  type Logger,
  type Message,
  type StatusReportingTransport,
  type Transport,
  type TransportStatus,
} from '../../src/core/index.ts';
import { openDatabase, type Database, type Queryable } from './database.ts';
import { encodePgQueueMessage, type PgQueueRowValues } from './pg-queue-codec.ts';
import { PgQueueConsumer, type PgQueueConsumerSettings } from './pg-queue-consumer.ts';
import { pgQueueChannel, resolvePgQueueTarget } from './pg-queue-endpoint.ts';
import { isTransientDatabaseError } from './pg-queue-errors.ts';
import { migratePgQueue, pgQueueTables, type PgQueueTables } from './pg-queue-migrations.ts';
import { PG_QUEUE_DEFAULTS, validatePgQueueOptions, type PgQueueTransportOptions } from './pg-queue-options.ts';
import { answeredWithin, PgQueueStore, type PgQueueDeadLetter, type PgQueueDepth } from './pg-queue-store.ts';
import { DatabaseError } from './postgres-errors.ts';

/** The transport's state: `connected` once the tables are there, `reconnecting` while statements fail on the link. */
export interface PgQueueStatus extends TransportStatus {
  readonly state: 'idle' | 'connected' | 'reconnecting' | 'closed';
  /** The database, redacted (`postgres postgres://app:***@db/app`, `pglite (embedded)`). */
  readonly database?: string;
}

/** One `LISTEN` shared by the consumers of one queue in this transport. */
interface Listener {
  readonly consumers: Set<PgQueueConsumer>;
  stop: (() => Promise<void>) | undefined;
  active: boolean;
}

/**
 * PostgreSQL as a message queue: `pgqueue:<queue>` — a queue is a set of rows of one table (see
 * `pgQueueMigrationStatements`), claimed with `FOR UPDATE SKIP LOCKED` and leased for a visibility
 * timeout, as SQS / Solid Queue / graphile-worker do. On `pg` (a server at `url`/`DATABASE_URL`), or
 * an embedded PGlite when neither is set (in memory: lost on exit) or when given one.
 *
 * Contract (the transport SPI, plus):
 * - `publish` inserts the call's messages in one statement (one transaction) with a `pg_notify` of the
 *   queue's channel, and resolves when it committed: the messages are durable and their consumers
 *   woken. Each message is encoded on its own (`PgQueueUnencodableError` fails it alone, in a
 *   `PartialPublishError`). A statement that fails on the link is retried with backoff until
 *   `publishTimeoutMs` (then `TimeoutError`, also when the attempt in flight has no answer by then);
 *   when the link broke during the COMMIT itself, its outcome is unknown and the retry may store the
 *   messages twice (at-least-once: consumers deduplicate by id).
 *   `publishIn(tx, …)` inserts inside the caller's own transaction instead (an outbox without a relay).
 * - Every statement (publishes, claims, settlements) that has no answer within `statementTimeoutMs`
 *   fails like a lost link and is retried: a link that silently drops packets cannot hang the
 *   consumers' acks, their claims or `close`.
 * - `consume` (see `PgQueueConsumer`): at-least-once, acked after settlement by deleting the row; a
 *   nack makes it visible again after a backoff, `attempt` = its deliveries; `maxDeliveries` → the
 *   dead-letter table with the reason. Competing consumers (in one process or many) never get the same
 *   row while its lease holds; a consumer that dies loses its leases after the visibility timeout.
 * - Order: per queue, FIFO by insertion (`id`) for one consumer — a nacked message goes back to its
 *   place once its backoff ends, so it may come after later ones; across competing consumers, rows
 *   are claimed in order but processed in parallel.
 * - `close` hands back every consumer's unsettled deliveries, waits for in-flight publishes and
 *   settlements, stops listening and closes the database if the transport opened it. Idempotent;
 *   `connect` after `close` connects again.
 * @example
 * const transport = new PgQueueTransport({ url: 'postgres://app@db/app', schema: 'jobs' });
 * await transport.connect();
 * await transport.publish(parseEndpoint('pgqueue:emails'), [createMessage({ to: 'ada@example.com' })]);
 */
export class PgQueueTransport implements Transport, StatusReportingTransport<PgQueueStatus> {
  readonly scheme = 'pgqueue';
  readonly tables: PgQueueTables;
  private db: Database | undefined;
  private store: PgQueueStore | undefined;
  private closed = true;
  private readonly consumers = new Set<PgQueueConsumer>();
  private readonly listeners = new Map<string, Listener>();
  private readonly inFlight = new Set<Promise<unknown>>();
  private readonly log: Logger;
  private readonly statusSubject = new BehaviorSubject<PgQueueStatus>({ state: 'idle', since: Date.now() });

  /** Throws `PostgresConfigurationError` for invalid options. */
  constructor(private readonly options: PgQueueTransportOptions = {}) {
    validatePgQueueOptions(options);
    this.tables = pgQueueTables(options);
    this.log = options.log ?? consoleLogger;
  }

  get status$(): Observable<PgQueueStatus> {
    return this.statusSubject.asObservable();
  }

  get status(): PgQueueStatus {
    return this.statusSubject.value;
  }

  /** The database in use (after `connect`). */
  get database(): Database | undefined {
    return this.db;
  }

  /** Opens the database (unless given one) and creates the tables (unless `migrate: false`), retrying with backoff up to `connectTimeoutMs`; then `NotConnectedError`. */
  async connect(): Promise<void> {
    if (!this.closed && this.store !== undefined) return;
    const deadline = Date.now() + (this.options.connectTimeoutMs ?? PG_QUEUE_DEFAULTS.connectTimeoutMs);
    for (let attempt = 0; ; attempt += 1) {
      try {
        this.db ??= this.options.database ?? (await openDatabase({ ...(this.options.url === undefined ? {} : { url: this.options.url }), ...this.poolTimeouts(), log: this.log }));
        if (this.options.migrate !== false) await migratePgQueue(this.db, this.options);
        break;
      } catch (thrown) {
        const error = toError(thrown);
        const delay = backoffDelay(attempt, { initialMs: 100, maxMs: 2_000 });
        if (!isTransientDatabaseError(error)) throw error;
        if (Date.now() + delay > deadline) throw new NotConnectedError(`pgqueue: PostgreSQL not reachable: ${error.message}`, { cause: error });
        this.setStatus('reconnecting', error);
        await sleep(delay);
      }
    }
    this.store = PgQueueStore.bounded(this.db, this.tables, this.statementTimeoutMs());
    this.closed = false;
    this.setStatus('connected');
  }

  async publish(endpoint: Endpoint, messages: readonly Message[]): Promise<void> {
    const store = this.store;
    if (this.closed || store === undefined) throw new NotConnectedError(`pgqueue transport is closed; cannot publish to '${endpoint.uri}'`);
    const { queue } = resolvePgQueueTarget(endpoint);
    const channel = this.channel(queue);
    const maxBytes = this.maxMessageBytes();
    await publishEach(
      messages,
      (message) => encodePgQueueMessage(message, maxBytes),
      (rows) => this.track(this.insert(store, queue, channel, rows)),
    );
  }

  /**
   * Publishes inside the caller's transaction `tx` (a `pg` client inside `BEGIN`, a PGlite
   * transaction, `Database.transaction`'s executor): the messages exist if and only if it commits,
   * and consumers are notified at its COMMIT. One statement, never retried, never commits or rolls
   * back; needs the tables (`connect` once, or the migration script), not a connected transport.
   * Rejects like `publish` for unencodable messages (the others are inserted).
   * @example
   * await db.transaction(async (tx) => {
   *   await tx.query('UPDATE accounts SET balance = balance - $1 WHERE id = $2', [amount, id]);
   *   await transport.publishIn(tx, 'pgqueue:ledger', [createMessage({ id, amount })]);
   * });
   */
  async publishIn(tx: Queryable, uri: string | Endpoint, messages: readonly Message[]): Promise<void> {
    const { queue } = resolvePgQueueTarget(typeof uri === 'string' ? parseEndpoint(uri) : uri);
    const maxBytes = this.maxMessageBytes();
    const store = PgQueueStore.on(tx, this.tables);
    await publishEach(
      messages,
      (message) => encodePgQueueMessage(message, maxBytes),
      (rows) => store.insert(queue, this.channel(queue), rows),
    );
  }

  consume(endpoint: Endpoint, options: ConsumeOptions = {}): Observable<Delivery> {
    return new Observable<Delivery>((subscriber) => {
      if (options.signal?.aborted === true) {
        subscriber.complete();
        return undefined;
      }
      const store = this.store;
      if (this.closed || store === undefined) {
        subscriber.error(new NotConnectedError(`pgqueue transport is not connected; cannot consume '${endpoint.uri}'`));
        return undefined;
      }
      const target = resolvePgQueueTarget(endpoint);
      const channel = this.channel(target.queue);
      const settings: PgQueueConsumerSettings = {
        prefetch: Math.max(1, options.prefetch ?? 100),
        maxDeliveries: this.options.maxDeliveries ?? PG_QUEUE_DEFAULTS.maxDeliveries,
        visibilityTimeoutMs: this.options.visibilityTimeoutMs ?? PG_QUEUE_DEFAULTS.visibilityTimeoutMs,
        pollIntervalMs: this.options.pollIntervalMs ?? PG_QUEUE_DEFAULTS.pollIntervalMs,
        claimBatch: this.options.claimBatch ?? PG_QUEUE_DEFAULTS.claimBatch,
        redelivery: { initialMs: this.options.redelivery?.initialMs ?? PG_QUEUE_DEFAULTS.redelivery.initialMs, maxMs: this.options.redelivery?.maxMs ?? PG_QUEUE_DEFAULTS.redelivery.maxMs },
        maxMessageBytes: this.maxMessageBytes(),
        channel,
        log: this.log,
        track: (work) => void this.track(work),
        closed: () => this.closed,
        reachable: (ok, error) => this.reachable(ok, error),
      };
      const consumer = new PgQueueConsumer(target, subscriber, store, settings);
      this.consumers.add(consumer);
      const unlisten = this.listen(channel, consumer);
      consumer.start();
      // Abort stops the intake only: emitted deliveries may still be settled; unsubscribing hands back the rest.
      const onAbort = (): void => consumer.stopIntake();
      options.signal?.addEventListener('abort', onAbort, { once: true });
      return () => {
        options.signal?.removeEventListener('abort', onAbort);
        unlisten();
        this.consumers.delete(consumer);
        consumer.dispose();
      };
    });
  }

  /** The queue's depth (ready, invisible, dead), counted in the tables. */
  async depth(uri: string | Endpoint): Promise<PgQueueDepth> {
    return this.connectedStore().depth(this.queueOf(uri));
  }

  /** The queue's dead letters, oldest first (default 100). */
  async deadLetters(uri: string | Endpoint, limit = 100): Promise<PgQueueDeadLetter[]> {
    return this.connectedStore().deadLetters(this.queueOf(uri), limit);
  }

  /** Puts the queue's dead letters (all, or those at `rowIds`) back at its tail with their deliveries reset. Resolves with how many. */
  async requeueDeadLetters(uri: string | Endpoint, rowIds?: readonly string[]): Promise<number> {
    const queue = this.queueOf(uri);
    return this.connectedStore().requeueDead(queue, this.channel(queue), rowIds);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const consumer of [...this.consumers]) consumer.dispose();
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
    const listeners = [...this.listeners.values()];
    this.listeners.clear();
    for (const listener of listeners) listener.active = false;
    await Promise.allSettled(listeners.map((listener) => listener.stop?.()));
    this.store = undefined;
    if (this.options.database === undefined) {
      await this.db?.close();
      this.db = undefined;
    }
    this.setStatus('closed');
  }

  private channel(queue: string): string {
    return pgQueueChannel(this.tables.schemaName, this.tables.tableName, queue);
  }

  private statementTimeoutMs(): number {
    return this.options.statementTimeoutMs ?? PG_QUEUE_DEFAULTS.statementTimeoutMs;
  }

  /** The pool the transport opens itself gives up on a silent link too (a given `database` keeps its own settings). */
  private poolTimeouts(): { queryTimeoutMs: number; connectionTimeoutMs: number; keepAliveMs: number } {
    const ms = this.statementTimeoutMs();
    return { queryTimeoutMs: ms, connectionTimeoutMs: ms, keepAliveMs: ms };
  }

  private maxMessageBytes(): number {
    return this.options.maxMessageBytes ?? PG_QUEUE_DEFAULTS.maxMessageBytes;
  }

  private queueOf(uri: string | Endpoint): string {
    return resolvePgQueueTarget(typeof uri === 'string' ? parseEndpoint(uri) : uri).queue;
  }

  private connectedStore(): PgQueueStore {
    if (this.closed || this.store === undefined) throw new NotConnectedError('pgqueue transport is not connected');
    return this.store;
  }

  /**
   * Inserts, retrying a statement that failed on the link (or had no answer within `statementTimeoutMs`)
   * with backoff until `publishTimeoutMs`; an attempt still unanswered at that deadline is abandoned
   * with `TimeoutError` (it may still commit: the caller's retry may store the messages twice).
   */
  private async insert(store: PgQueueStore, queue: string, channel: string, rows: PgQueueRowValues[]): Promise<void> {
    const timeoutMs = this.options.publishTimeoutMs ?? PG_QUEUE_DEFAULTS.publishTimeoutMs;
    const deadline = Date.now() + timeoutMs;
    const late = (): TimeoutError => new TimeoutError(`pgqueue: publishing to '${queue}' not committed within ${timeoutMs} ms: no answer from PostgreSQL`);
    for (let attempt = 0; ; attempt += 1) {
      try {
        await answeredWithin(store.insert(queue, channel, rows), deadline - Date.now(), late);
        this.reachable(true);
        return;
      } catch (thrown) {
        const error = toError(thrown);
        if (error instanceof TimeoutError) {
          this.reachable(false, new DatabaseError(error.message));
          throw error;
        }
        if (!isTransientDatabaseError(error)) throw new DatabaseError(`pgqueue: publishing to '${queue}' failed: ${error.message}`, { cause: error });
        this.reachable(false, error);
        const delay = backoffDelay(attempt, { initialMs: 50, maxMs: 2_000 });
        if (this.closed) throw new NotConnectedError(`pgqueue transport closed while publishing to '${queue}'`, { cause: error });
        if (Date.now() + delay > deadline) throw new TimeoutError(`pgqueue: publishing to '${queue}' not committed within ${timeoutMs} ms: ${error.message}`);
        await sleep(delay);
      }
    }
  }

  /** One `LISTEN` per queue channel, shared by its consumers; (re)started with backoff until it holds. Returns the consumer's way out. */
  private listen(channel: string, consumer: PgQueueConsumer): () => void {
    let listener = this.listeners.get(channel);
    if (listener === undefined) {
      const created: Listener = { consumers: new Set(), stop: undefined, active: true };
      listener = created;
      this.listeners.set(channel, created);
      void this.startListening(channel, created);
    }
    listener.consumers.add(consumer);
    const joined = listener;
    return () => {
      joined.consumers.delete(consumer);
      if (joined.consumers.size > 0 || this.listeners.get(channel) !== joined) return;
      this.listeners.delete(channel);
      joined.active = false;
      void joined.stop?.().catch(() => undefined);
    };
  }

  private async startListening(channel: string, listener: Listener): Promise<void> {
    for (let attempt = 0; listener.active; attempt += 1) {
      const db = this.db;
      if (db === undefined) return;
      try {
        const stop = await db.listen(channel, () => {
          for (const consumer of listener.consumers) consumer.notify();
        });
        if (listener.active) listener.stop = stop;
        else await stop().catch(() => undefined);
        return;
      } catch (error) {
        const delay = backoffDelay(attempt, { initialMs: 100, maxMs: 5_000 });
        this.log.warn('pgqueue: LISTEN failed, retrying (consumers poll meanwhile)', { channel, retryInMs: delay, error: toError(error).message });
        await sleep(delay);
      }
    }
  }

  private track<T>(work: Promise<T>): Promise<T> {
    this.inFlight.add(work);
    const forget = (): void => {
      this.inFlight.delete(work);
    };
    work.then(forget, forget);
    return work;
  }

  private reachable(ok: boolean, error?: Error): void {
    if (this.closed) return;
    const state = this.statusSubject.value.state;
    if (ok && state === 'reconnecting') this.setStatus('connected');
    else if (!ok && state === 'connected' && isTransientDatabaseError(error)) this.setStatus('reconnecting', error);
  }

  private setStatus(state: PgQueueStatus['state'], error?: Error): void {
    const database = this.db?.toString();
    this.statusSubject.next({ state, since: Date.now(), ...(database === undefined ? {} : { database }), ...(error === undefined ? {} : { lastError: error.message }) });
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
