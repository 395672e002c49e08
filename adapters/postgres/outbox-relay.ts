import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { backoffDelay, consoleLogger, isPermanentFailure, NotConnectedError, TimeoutError, toError, type Logger, type Message } from '../../src/core/index.ts';
import type { Database } from './database.ts';
import { migrate, resolveTables, type ResolvedTables, type TableNames } from './migrations.ts';
import { decodeOutboxRow, type OutboxRow } from './outbox.ts';

/** Where the relay publishes: the integration's `TransportRegistry` (`app.transports`), or any wrapper of it. */
export interface OutboxPublisher {
  /** Resolves once the destination confirmed every message (broker confirm); rejects otherwise. */
  publish(uri: string, messages: readonly Message[]): Promise<void>;
}

export interface OutboxRelayOptions extends TableNames {
  /** Names this relay's leases (default `<host>:<pid>:<random>`); unique per running relay. */
  readonly relayId?: string;
  /** Rows claimed per round (default 200). */
  readonly batchSize?: number;
  /**
   * Rounds in flight at once in this relay (default 2): while one waits for the broker, the next
   * claims other partitions, so database and broker round trips overlap. Partition order holds
   * whatever the value, exactly as between relays.
   */
  readonly concurrency?: number;
  /** Pending rows looked at to choose partitions, oldest first (default 1,000; at least `batchSize`). */
  readonly scanSize?: number;
  /** Poll when no `NOTIFY` came (default 1,000 ms): the fallback for lost notifications and for retries that come due. */
  readonly pollIntervalMs?: number;
  /**
   * How long a claim holds its rows (default 120,000 ms). A relay that dies leaves them to be
   * reclaimed after this; keep it well above the transports' publish timeout (AMQP: 30 s).
   */
  readonly leaseMs?: number;
  /** Attempts before a row is parked with its error (default 10); a `permanent` error parks at once. */
  readonly maxAttempts?: number;
  /** Delay before the next attempt of a failed row: exponential with jitter (defaults 500 ms, ceiling 60,000 ms). */
  readonly backoff?: { readonly initialMs?: number; readonly maxMs?: number };
  /**
   * What happens to a published row: `delete` it (default, in the statement that settles the batch),
   * or keep it marked `sent_at` for `keepSentMs`, deleted by a cleanup every `cleanupIntervalMs`.
   */
  readonly retention?: 'delete' | { readonly keepSentMs: number; readonly cleanupIntervalMs?: number };
  /** Create the tables at `start` (default true; idempotent). */
  readonly migrate?: boolean;
  readonly log?: Logger;
}

/** Counters since this relay started. */
export interface OutboxRelayStats {
  /** Rows published and confirmed (a row republished after a failure counts again). */
  published: number;
  /** Failed attempts (each one waits its backoff, or parks the row). */
  failed: number;
  parked: number;
  batches: number;
}

/** The table's state, for metrics and health checks. */
export interface OutboxBacklog {
  /** Rows waiting to be published (leased ones included). */
  readonly pending: number;
  /** Partitions a relay is publishing right now (their head rows are leased). */
  readonly inFlight: number;
  readonly parked: number;
  /** Age of the oldest pending row, ms (0 when none): how far the relay is behind. */
  readonly lagMs: number;
}

/** A parked row, as an operator sees it. */
export interface ParkedRow {
  readonly position: string;
  readonly messageId: string;
  readonly destination: string;
  readonly partitionKey: string;
  readonly attempts: number;
  readonly lastError: string;
}

interface ClaimedRow extends OutboxRow {
  readonly message: Message;
}

/** What the relay reads of a claimed row (not the timestamps: fewer bytes and no date parsing). */
const CLAIMED_COLUMNS = 'position, message_id, destination, partition_key, headers, body, body_bytes, attempts';

interface Worker {
  /** Set while the worker sleeps. */
  wake: (() => void) | undefined;
}

type Outcome = { readonly sent: ClaimedRow[]; readonly failed?: { readonly row: ClaimedRow; readonly error: Error }; readonly released: ClaimedRow[] };

/**
 * Publishes the outbox: claims pending rows, publishes them through the integration's transports
 * (so any scheme works) and waits for the destination's confirm, then deletes (or marks) them.
 *
 * How rows are claimed — one `SELECT <outbox>_claim(…)` (a plpgsql function, see `migrations.ts`):
 * 1. look at the oldest `scanSize` pending rows, grouped by partition key in order of their head;
 * 2. for each partition whose rows there are all due and unleased, take a transaction-scoped
 *    advisory lock on the partition (`pg_try_advisory_xact_lock`, skipped if another relay is
 *    claiming it right now), until the partitions cover `batchSize` rows;
 * 3. in a new statement (a fresh snapshot, taken after the locks: it sees whatever the partition's
 *    previous holder committed), take the due prefix of each locked partition and lease its *head
 *    row* (`locked_by`, `locked_until`; the head `FOR UPDATE SKIP LOCKED`).
 * The claim is one short transaction (one statement). The partition is then held by the lease on its
 * head, not by an open transaction, while the relay publishes: no connection or snapshot is held
 * across a broker round trip, and on PGlite (one connection) services keep writing meanwhile. Leasing
 * only the head (not every row) halves the writes per row: a published row is written once, by the
 * `DELETE`, as in a hand-written loop. Why not the alternatives: `FOR UPDATE SKIP LOCKED` on rows
 * alone lets a second relay take a partition's later rows while the first still publishes earlier
 * ones (order lost); `DISTINCT ON (partition_key)` gives one row per partition per round (slow for a
 * hot partition); advisory locks held across the publish need a transaction open during it.
 *
 * Guarantees: a partition is held by one relay (one round) at a time, so no two relays publish a row
 * concurrently — unless a lease expires while its relay is still publishing: keep `leaseMs` above the
 * publish timeout; a relay also stops starting publishes once 90 % of its lease is used. Within a
 * partition rows are published in `position` order, one run of same-destination rows at a time, and
 * a later row never overtakes an earlier one that is in flight, waiting for its retry, or in another
 * relay; different partitions are published in parallel, and `concurrency` rounds overlap in one
 * relay. A parked row no longer holds its partition back (the alternative would stall the partition
 * until an operator acts): later rows go on.
 *
 * Deleting sent rows commits with `synchronous_commit = off`: a PostgreSQL crash may forget the
 * last few deletes, which only republishes those rows (duplicates), never loses one — what must be
 * durable is the service's transaction that added the row, and that one is untouched. It saves a
 * WAL flush per round. Leases (the claim) commit durably, so no crash lets two relays publish one
 * partition at once.
 *
 * Delivery is at least once: a relay killed between the confirm and the delete leaves its partitions
 * leased; they are republished after `leaseMs` — the only duplicates (at most `batchSize` ×
 * `concurrency` per relay), which an inbox absorbs.
 * A failed publish counts an attempt on the partition's first unconfirmed row (a failed run of
 * several rows is retried row by row once, to find the culprit, unless the transport was down) and
 * retries it after `backoff`; after `maxAttempts` it is parked with `last_error`.
 *
 * Wakes on `NOTIFY` (sent by the outbox trigger at commit), polls every `pollIntervalMs` as well,
 * and claims again at once while rounds find work.
 * @example
 * const relay = new OutboxRelay(db, app.transports, { schema: 'orders' });
 * await relay.start(); … await relay.stop();
 */
export class OutboxRelay {
  readonly id: string;
  readonly tables: ResolvedTables;
  readonly stats: OutboxRelayStats = { published: 0, failed: 0, parked: 0, batches: 0 };
  private readonly options: Required<Pick<OutboxRelayOptions, 'batchSize' | 'scanSize' | 'pollIntervalMs' | 'leaseMs' | 'maxAttempts' | 'concurrency'>>;
  private readonly backoff: { readonly initialMs: number; readonly maxMs: number };
  private readonly log: Logger;
  private running: Promise<void> | undefined;
  private stopping = false;
  private workers: Worker[] = [];
  private missedNotify = false;
  private unlisten: (() => Promise<void>) | undefined;
  private cleanupTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly db: Database,
    private readonly publisher: OutboxPublisher,
    private readonly config: OutboxRelayOptions = {},
  ) {
    const { relayId, batchSize = 200, concurrency = 2, scanSize = 1000, pollIntervalMs = 1000, leaseMs = 120_000, maxAttempts = 10, backoff = {}, log = consoleLogger } = config;
    this.id = relayId ?? `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
    this.tables = resolveTables(config);
    this.options = { batchSize, concurrency, scanSize: Math.max(scanSize, batchSize), pollIntervalMs, leaseMs, maxAttempts };
    this.backoff = { initialMs: backoff.initialMs ?? 500, maxMs: backoff.maxMs ?? 60_000 };
    this.log = log;
  }

  /** Creates the tables (unless `migrate: false`), listens for `NOTIFY` and starts relaying. */
  async start(): Promise<void> {
    if (this.running !== undefined) return;
    if (this.config.migrate !== false) await migrate(this.db, this.config);
    this.stopping = false;
    this.unlisten = await this.db.listen(this.tables.channel, () => this.notify());
    const retention = this.config.retention;
    if (typeof retention === 'object') {
      this.cleanupTimer = setInterval(() => {
        this.cleanup().catch((error: unknown) => this.log.warn('outbox relay: cleanup failed', { error: toError(error).message }));
      }, retention.cleanupIntervalMs ?? 60_000);
      this.cleanupTimer.unref();
    }
    this.workers = [];
    this.missedNotify = false;
    this.running = Promise.all(Array.from({ length: this.options.concurrency }, () => this.loop())).then(() => undefined);
  }

  /** Stops claiming, lets the round in flight finish (publish, settle), stops listening. */
  async stop(): Promise<void> {
    if (this.running === undefined) return;
    this.stopping = true;
    this.wakeAll();
    await this.running;
    this.running = undefined;
    if (this.cleanupTimer !== undefined) clearInterval(this.cleanupTimer);
    await this.unlisten?.();
    this.unlisten = undefined;
  }

  /** One round: claim, publish, settle. Resolves with the number of rows claimed (0: nothing to do). */
  async runOnce(): Promise<number> {
    const claimedAt = Date.now();
    const { rows } = await this.db.query<OutboxRow>(`SELECT ${CLAIMED_COLUMNS} FROM ${this.tables.claim}($1, $2, $3, $4)`, [this.id, this.options.batchSize, this.options.scanSize, this.options.leaseMs]);
    if (rows.length === 0) return 0;
    this.stats.batches += 1;
    const partitions = new Map<string, ClaimedRow[]>();
    for (const row of rows.sort((a, b) => Number(a.position) - Number(b.position))) {
      const claimed: ClaimedRow = { ...row, message: decodeOutboxRow(row) };
      const list = partitions.get(row.partition_key);
      if (list === undefined) partitions.set(row.partition_key, [claimed]);
      else list.push(claimed);
    }
    const deadline = claimedAt + this.options.leaseMs * 0.9;
    const outcomes = await Promise.all([...partitions.values()].map((partition) => this.publishPartition(partition, deadline)));
    await this.settle(outcomes);
    return rows.length;
  }

  /** Backlog, lag and parked rows, from the table. */
  async backlog(): Promise<OutboxBacklog> {
    const { rows } = await this.db.query<{ pending: string | number; in_flight: string | number; parked: string | number; lag_ms: number | null }>(
      `SELECT count(*) FILTER (WHERE parked_at IS NULL) AS pending,
              count(*) FILTER (WHERE parked_at IS NULL AND locked_until > now()) AS in_flight,
              count(*) FILTER (WHERE parked_at IS NOT NULL) AS parked,
              (extract(epoch FROM now() - min(created_at) FILTER (WHERE parked_at IS NULL)) * 1000)::float8 AS lag_ms
       FROM ${this.tables.outbox} WHERE sent_at IS NULL`,
    );
    const row = rows[0];
    return { pending: Number(row?.pending ?? 0), inFlight: Number(row?.in_flight ?? 0), parked: Number(row?.parked ?? 0), lagMs: Math.max(0, Math.round(row?.lag_ms ?? 0)) };
  }

  /** The parked rows, oldest first. */
  async parked(limit = 100): Promise<ParkedRow[]> {
    const { rows } = await this.db.query<{ position: string | number; message_id: string; destination: string; partition_key: string; attempts: number; last_error: string | null }>(
      `SELECT position, message_id, destination, partition_key, attempts, last_error FROM ${this.tables.outbox} WHERE parked_at IS NOT NULL ORDER BY position LIMIT $1`,
      [limit],
    );
    return rows.map((row) => ({ position: String(row.position), messageId: row.message_id, destination: row.destination, partitionKey: row.partition_key, attempts: row.attempts, lastError: row.last_error ?? '' }));
  }

  /** Puts parked rows (all, or those at `positions`) back in line with their attempts reset. Resolves with how many. */
  async unpark(positions?: readonly string[]): Promise<number> {
    const filter = positions === undefined ? '' : ' AND position = ANY($1::bigint[])';
    const { rowCount } = await this.db.query(
      `UPDATE ${this.tables.outbox} SET parked_at = NULL, attempts = 0, next_attempt_at = '-infinity' WHERE parked_at IS NOT NULL${filter}`,
      positions === undefined ? [] : [positions],
    );
    this.notify();
    return rowCount;
  }

  /** Deletes sent rows older than the retention (retention mode only). Resolves with how many. */
  async cleanup(): Promise<number> {
    const retention = this.config.retention;
    if (typeof retention !== 'object') return 0;
    const { rowCount } = await this.db.query(`DELETE FROM ${this.tables.outbox} WHERE sent_at < now() - make_interval(secs => $1::float8 / 1000)`, [retention.keepSentMs]);
    return rowCount;
  }

  /**
   * A `NOTIFY` wakes one sleeping worker when none is busy; a busy one claims again right after its
   * round instead (waking more would only make small rounds race for the same few rows). Extra
   * workers join when a round comes back full: then there is a backlog to share.
   */
  private notify(): void {
    if (this.workers.some((worker) => worker.wake === undefined)) this.missedNotify = true;
    else if (!this.wakeIdle()) this.missedNotify = true;
  }

  /** Wakes one sleeping worker; false if none sleeps. */
  private wakeIdle(): boolean {
    const sleeper = this.workers.find((worker) => worker.wake !== undefined);
    sleeper?.wake?.();
    return sleeper !== undefined;
  }

  private wakeAll(): void {
    for (const worker of this.workers) worker.wake?.();
  }

  /** One claim-publish-settle loop; `concurrency` of them run at once, each skipping the partitions the others hold. */
  private async loop(): Promise<void> {
    const worker: Worker = { wake: undefined };
    this.workers.push(worker);
    let failures = 0;
    while (!this.stopping) {
      let claimed = 0;
      try {
        claimed = await this.runOnce();
        failures = 0;
      } catch (error) {
        const delay = backoffDelay(failures++, { initialMs: 100, maxMs: 10_000 });
        this.log.warn('outbox relay: round failed, retrying', { relay: this.id, delayMs: delay, error: toError(error).message });
        await this.sleep(worker, delay);
        continue;
      }
      if (claimed >= this.options.batchSize) this.wakeIdle(); // a full batch: more is waiting, let another worker claim too
      if (claimed > 0) continue;
      if (this.missedNotify) {
        this.missedNotify = false;
        continue;
      }
      await this.sleep(worker, this.options.pollIntervalMs);
    }
  }

  /** Waits `ms`, or less when woken (a `NOTIFY`, or `stop`). */
  private sleep(worker: Worker, ms: number): Promise<void> {
    if (this.stopping) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(() => worker.wake?.(), ms);
      worker.wake = () => {
        clearTimeout(timer);
        worker.wake = undefined;
        resolve();
      };
    });
  }

  /** Publishes one partition's rows in order, one run of same-destination rows at a time; stops at the first failure. */
  private async publishPartition(rows: readonly ClaimedRow[], deadline: number): Promise<Outcome> {
    const sent: ClaimedRow[] = [];
    let index = 0;
    while (index < rows.length) {
      const first = rows[index] as ClaimedRow;
      let end = index + 1;
      while (end < rows.length && (rows[end] as ClaimedRow).destination === first.destination) end += 1;
      const run = rows.slice(index, end);
      if (this.stopping || Date.now() > deadline) return { sent, released: rows.slice(index) };
      try {
        await this.publisher.publish(first.destination, run.map((row) => row.message));
        sent.push(...run);
      } catch (thrown) {
        const error = toError(thrown);
        const transportDown = error instanceof NotConnectedError || error instanceof TimeoutError;
        if (run.length === 1 || transportDown) return { sent, failed: { row: first, error }, released: rows.slice(index + 1) };
        // Find the culprit: row by row (the rows before it may be published twice; an inbox absorbs that).
        for (const [offset, row] of run.entries()) {
          try {
            await this.publisher.publish(row.destination, [row.message]);
            sent.push(row);
          } catch (again) {
            return { sent, failed: { row, error: toError(again) }, released: rows.slice(index + offset + 1) };
          }
        }
      }
      index = end;
    }
    return { sent, released: [] };
  }

  /** Deletes (or marks) what was confirmed, records failures, releases the leases of partitions left unfinished. */
  private async settle(outcomes: readonly Outcome[]): Promise<void> {
    const sent = outcomes.flatMap((outcome) => outcome.sent.map((row) => String(row.position)));
    const released = outcomes.flatMap((outcome) => outcome.released.map((row) => String(row.position)));
    const { outbox } = this.tables;
    if (sent.length > 0) {
      const keep = this.config.retention !== undefined && this.config.retention !== 'delete';
      await this.db.query(`SELECT ${this.tables.sent}($1::bigint[], $2::boolean)`, [sent, keep]);
      this.stats.published += sent.length;
    }
    for (const outcome of outcomes) {
      if (outcome.failed === undefined) continue;
      const { row, error } = outcome.failed;
      const park = isPermanentFailure(error) || row.attempts + 1 >= this.options.maxAttempts;
      const delayMs = backoffDelay(row.attempts, this.backoff);
      await this.db.query(
        `UPDATE ${outbox} SET attempts = attempts + 1, last_error = $2, next_attempt_at = now() + make_interval(secs => $3::float8 / 1000),
                parked_at = CASE WHEN $4::boolean THEN now() END, locked_by = NULL, locked_until = NULL
         WHERE position = $1::bigint`,
        [String(row.position), describe(error), delayMs, park],
      );
      this.stats.failed += 1;
      if (park) {
        this.stats.parked += 1;
        this.log.error('outbox relay: message parked after failing', { relay: this.id, messageId: row.message_id, destination: row.destination, attempts: row.attempts + 1, error: error.message });
      } else {
        this.log.warn('outbox relay: publish failed, will retry', { relay: this.id, messageId: row.message_id, destination: row.destination, attempt: row.attempts + 1, retryInMs: delayMs, error: error.message });
      }
    }
    if (released.length > 0) {
      await this.db.query(`UPDATE ${outbox} SET locked_by = NULL, locked_until = NULL WHERE position = ANY($1::bigint[]) AND locked_by = $2`, [released, this.id]);
    }
  }
}

function describe(error: Error): string {
  const code = (error as { code?: unknown }).code;
  return `${typeof code === 'string' ? `${code}: ` : ''}${error.message}`.slice(0, 4000);
}
