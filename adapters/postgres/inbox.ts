import { deliveryStep, type Message, type StepFactory } from '../../src/core/index.ts';
import type { ClaimResult, IdempotencyStore } from '../../src/stores/idempotency-store.ts';
import { Database, type SqlExecutor } from './database.ts';
import { resolveTables, type ResolvedTables, type TableNames } from './migrations.ts';

export interface InboxOptions extends TableNames {
  /** Names the consumer (the route or service): the same message id is processed once per consumer. */
  readonly consumer: string;
  /** `IdempotencyStore` use: how long a claim holds without confirm or release (default 30,000 ms). */
  readonly leaseMs?: number;
}

export interface InboxHandleOptions<T> {
  /** The message's identity (default its id, which the outbox keeps end to end). */
  readonly key?: (message: Message<T>) => string;
  /** Messages handled at once, each in its own transaction (default 1: in order). */
  readonly concurrency?: number;
}

/** A handler's work on one message, inside the inbox's transaction. */
export type InboxHandler<T> = (message: Message<T>, tx: SqlExecutor) => Promise<void>;

/**
 * The inbox: an idempotent consumer kept in PostgreSQL (MassTransit's inbox, the consumer half of the
 * transactional outbox pattern).
 *
 * `handle(handler)` is the effectively-once step: in one transaction it records (consumer, message
 * id) and runs the handler with that transaction, so the handler's writes and the record commit
 * together or not at all. A redelivered message finds its record and is dropped (acked, counted as
 * filtered) without running the handler; a handler that throws rolls both back and fails the message
 * through the route's error handler (retry, dead letter, reject). Two copies handled at once: the
 * second waits on the first's row lock, then sees it as a duplicate (or runs, if the first rolled back).
 *
 * It is also an `IdempotencyStore` (claim, confirm, release, with a lease) for the
 * `idempotentConsumer` step of routes that do not write to PostgreSQL. Tables: `migrate`.
 * @example
 * from('amqp:queue/order-events')
 *   .step('read-model', inbox.handle(async (m, tx) => { await tx.query('INSERT INTO order_view …', [m.body.orderId]); }))
 *   .to('memory:done')
 */
export class PostgresInbox implements IdempotencyStore {
  readonly consumer: string;
  readonly tables: ResolvedTables;
  private readonly leaseMs: number;

  constructor(
    private readonly db: Database,
    { consumer, leaseMs = 30_000, ...names }: InboxOptions,
  ) {
    this.consumer = consumer;
    this.leaseMs = leaseMs;
    this.tables = resolveTables(names);
  }

  /** The effectively-once step (see the class). */
  handle<T>(handler: InboxHandler<T>, options: InboxHandleOptions<T> = {}): StepFactory<T, T> {
    const { key = (message: Message<T>) => message.id, concurrency = 1 } = options;
    return (context) =>
      deliveryStep<T, T>(
        context,
        async (delivery, emit) => {
          const outcome = await this.process(delivery.message, handler, key(delivery.message));
          if (outcome === 'duplicate') context.filtered(delivery);
          else emit(delivery);
        },
        { concurrency },
      );
  }

  /** Runs `handler` once per message id, in a transaction with the inbox record; `duplicate` if it already ran. */
  async process<T>(message: Message<T>, handler: InboxHandler<T>, key: string = message.id): Promise<'processed' | 'duplicate'> {
    return this.db.transaction(async (tx) => {
      const { rowCount } = await tx.query(
        `INSERT INTO ${this.tables.inbox} (consumer, message_id, processed_at) VALUES ($1, $2, now())
         ON CONFLICT (consumer, message_id) DO UPDATE SET processed_at = now(), lease_until = NULL
           WHERE ${this.tables.inbox}.processed_at IS NULL AND ${this.tables.inbox}.lease_until < now()`,
        [this.consumer, key],
      );
      if (rowCount === 0) return 'duplicate';
      await handler(message, tx);
      return 'processed';
    });
  }

  async claim(key: string): Promise<ClaimResult> {
    for (;;) {
      const { rowCount } = await this.db.query(
        `INSERT INTO ${this.tables.inbox} (consumer, message_id, lease_until) VALUES ($1, $2, now() + make_interval(secs => $3::float8 / 1000))
         ON CONFLICT (consumer, message_id) DO UPDATE SET lease_until = EXCLUDED.lease_until, received_at = now()
           WHERE ${this.tables.inbox}.processed_at IS NULL AND ${this.tables.inbox}.lease_until < now()`,
        [this.consumer, key, this.leaseMs],
      );
      if (rowCount > 0) return 'claimed';
      const { rows } = await this.db.query<{ done: boolean }>(`SELECT processed_at IS NOT NULL AS done FROM ${this.tables.inbox} WHERE consumer = $1 AND message_id = $2`, [this.consumer, key]);
      const row = rows[0];
      if (row !== undefined) return row.done ? 'duplicate' : 'in-progress';
      // released between the two statements: claim again
    }
  }

  async confirm(key: string): Promise<void> {
    await this.db.query(
      `INSERT INTO ${this.tables.inbox} (consumer, message_id, processed_at) VALUES ($1, $2, now())
       ON CONFLICT (consumer, message_id) DO UPDATE SET processed_at = now(), lease_until = NULL`,
      [this.consumer, key],
    );
  }

  async release(key: string): Promise<void> {
    await this.db.query(`DELETE FROM ${this.tables.inbox} WHERE consumer = $1 AND message_id = $2 AND processed_at IS NULL`, [this.consumer, key]);
  }

  /** Whether this consumer has processed `key`. */
  async has(key: string): Promise<boolean> {
    const { rows } = await this.db.query(`SELECT 1 FROM ${this.tables.inbox} WHERE consumer = $1 AND message_id = $2 AND processed_at IS NOT NULL`, [this.consumer, key]);
    return rows.length > 0;
  }

  /** Forgets records processed more than `olderThanMs` ago (keep them longer than any redelivery can take). Resolves with how many. */
  async cleanup(olderThanMs: number): Promise<number> {
    const { rowCount } = await this.db.query(`DELETE FROM ${this.tables.inbox} WHERE consumer = $1 AND processed_at < now() - make_interval(secs => $2::float8 / 1000)`, [this.consumer, olderThanMs]);
    return rowCount;
  }
}

/**
 * The inbox step with the `Database` taken from the integration's container (`postgresModule`).
 * @example .step('read-model', inbox({ consumer: 'order-view' }, async (m, tx) => { … }))
 */
export function inbox<T>(options: InboxOptions & InboxHandleOptions<T>, handler: InboxHandler<T>): StepFactory<T, T> {
  return (context) => new PostgresInbox(context.service<Database>(Database), options).handle(handler, options)(context);
}
