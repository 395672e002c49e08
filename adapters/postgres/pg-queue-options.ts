import { defineOptions, positiveIntegerOption, type Logger } from '../../src/core/index.ts';
import type { Database } from './database.ts';
import { PostgresConfigurationError } from './postgres-errors.ts';

const identifier = { type: 'string', pattern: '^[a-z_][a-z0-9_]{0,50}$' } as const;

/** Defaults of `PgQueueTransportOptions`, in one place for the code, the schema and the docs. */
export const PG_QUEUE_DEFAULTS = {
  schema: 'public',
  table: 'interchange_queue',
  visibilityTimeoutMs: 30_000,
  pollIntervalMs: 1_000,
  maxDeliveries: 5,
  redelivery: { initialMs: 100, maxMs: 30_000 },
  maxMessageBytes: 16 * 1024 * 1024,
  publishTimeoutMs: 30_000,
  statementTimeoutMs: 10_000,
  connectTimeoutMs: 15_000,
  claimBatch: 500,
} as const;

/** The JSON part of the transport's options (validated by `pgQueueOptionsSchema`). */
export interface PgQueueJsonOptions {
  /** `postgres://…`; default `DATABASE_URL`, else an embedded PGlite (in memory). Ignored when `database` is given. Never logged unredacted. */
  readonly url?: string;
  /** Schema of the queue and dead-letter tables (default `public`; created if missing). */
  readonly schema?: string;
  /** Queue table name (default `interchange_queue`); the dead letters go to `<table>_dead`. */
  readonly table?: string;
  /**
   * How long a claimed message stays invisible to other consumers (default 30,000 ms): the lease. A
   * consumer extends the leases of the deliveries it holds every third of it, so a slow route is never
   * duplicated; a consumer that dies (or loses its link) stops extending, and its messages are claimed
   * again once the lease runs out. Endpoint option `?visibilityTimeoutMs=`.
   */
  readonly visibilityTimeoutMs?: number;
  /** Claim again after this long without a `NOTIFY` (default 1,000 ms): the fallback for lost notifications and for messages whose backoff or lease ran out. */
  readonly pollIntervalMs?: number;
  /** Deliveries of a message before a nack (or an expired lease) moves it to the dead-letter table (default 5). Endpoint option `?maxDeliveries=`. */
  readonly maxDeliveries?: number;
  /** Delay before a nacked message is visible again: exponential with ±50 % jitter over its deliveries (defaults 100 ms, ceiling 30,000 ms). */
  readonly redelivery?: { readonly initialMs?: number; readonly maxMs?: number };
  /** The largest message (body plus headers, as stored) `publish` stores and a consumer takes, in bytes (default 16 MiB; at most 256 MiB). */
  readonly maxMessageBytes?: number;
  /** A publish not committed within this time (retried across link losses meanwhile) rejects with `TimeoutError` (default 30,000 ms). */
  readonly publishTimeoutMs?: number;
  /**
   * A statement (claim, ack, nack, lease extension, one publish attempt) without an answer within this
   * fails like a lost link and is retried (default 10,000 ms): a link that drops packets without a reset
   * would otherwise hang it for the ~15 minutes TCP takes to give up. On a pool the transport opens
   * itself (from `url`), also the pool's `query_timeout` and `connectionTimeoutMillis`, with TCP keep-alive.
   */
  readonly statementTimeoutMs?: number;
  /** How long `connect()` keeps trying before it rejects with `NotConnectedError` (default 15,000 ms). */
  readonly connectTimeoutMs?: number;
  /** Most rows one claim takes (default 500); a consumer never holds more than its prefetch. */
  readonly claimBatch?: number;
  /** Create the tables at `connect` (default true; idempotent, serialised across processes). */
  readonly migrate?: boolean;
}

/** The transport's options: the JSON ones, plus an open database and a logger. */
export interface PgQueueTransportOptions extends PgQueueJsonOptions {
  /** An open database (`openDatabase()`), shared with the outbox and stores; the transport does not close it. Without it, the transport opens (and closes) its own from `url`. */
  readonly database?: Database;
  readonly log?: Logger;
}

/** The options of `pgQueueModule` and `PgQueueTransport` as JSON Schema (draft 2020-12): the one source for validation and docs. */
export const pgQueueOptionsSchema = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  title: 'PostgreSQL queue (pgqueue:) transport options',
  type: 'object',
  additionalProperties: false,
  properties: {
    url: { type: 'string', pattern: '^postgres(ql)?://', description: 'PostgreSQL URL; default DATABASE_URL, else an embedded PGlite in memory.' },
    schema: { ...identifier, default: PG_QUEUE_DEFAULTS.schema, description: 'Schema of the queue tables (created if missing).' },
    table: { ...identifier, default: PG_QUEUE_DEFAULTS.table, description: 'Queue table; dead letters go to <table>_dead.' },
    visibilityTimeoutMs: { type: 'integer', minimum: 100, maximum: 86_400_000, default: PG_QUEUE_DEFAULTS.visibilityTimeoutMs, description: 'Lease of a claimed message, ms (extended while held).' },
    pollIntervalMs: { type: 'integer', minimum: 1, default: PG_QUEUE_DEFAULTS.pollIntervalMs, description: 'Claim again after this long without a NOTIFY, ms.' },
    maxDeliveries: { type: 'integer', minimum: 1, default: PG_QUEUE_DEFAULTS.maxDeliveries, description: 'Deliveries before a nacked message is dead-lettered.' },
    redelivery: {
      type: 'object',
      additionalProperties: false,
      properties: {
        initialMs: { type: 'integer', minimum: 0, default: PG_QUEUE_DEFAULTS.redelivery.initialMs, description: 'Delay after the first nack, ms.' },
        maxMs: { type: 'integer', minimum: 0, default: PG_QUEUE_DEFAULTS.redelivery.maxMs, description: 'Ceiling of the delay, ms.' },
      },
    },
    maxMessageBytes: { type: 'integer', minimum: 1, maximum: 268_435_456, default: PG_QUEUE_DEFAULTS.maxMessageBytes, description: 'Largest stored message (body + headers), bytes.' },
    publishTimeoutMs: { type: 'integer', minimum: 1, default: PG_QUEUE_DEFAULTS.publishTimeoutMs, description: 'A publish not committed by then rejects with TimeoutError, ms.' },
    statementTimeoutMs: { type: 'integer', minimum: 100, default: PG_QUEUE_DEFAULTS.statementTimeoutMs, description: 'A statement without an answer by then fails like a lost link (retried), ms.' },
    connectTimeoutMs: { type: 'integer', minimum: 1, default: PG_QUEUE_DEFAULTS.connectTimeoutMs, description: 'How long connect() keeps trying, ms.' },
    claimBatch: { type: 'integer', minimum: 1, maximum: 10_000, default: PG_QUEUE_DEFAULTS.claimBatch, description: 'Most rows one claim takes.' },
    migrate: { type: 'boolean', default: true, description: 'Create the tables at connect (idempotent).' },
  },
} as const;

/** The query options a `pgqueue:` endpoint URI accepts (strings in the URI), as JSON Schema. */
export const pgQueueEndpointOptionsSchema = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  title: 'pgqueue endpoint options',
  type: 'object',
  additionalProperties: false,
  properties: {
    maxDeliveries: positiveIntegerOption('consuming: deliveries before a nacked message is dead-lettered (default: the transport option, 5)', 6),
    visibilityTimeoutMs: positiveIntegerOption('consuming: lease of a claimed message, ms (default: the transport option, 30000)', 9),
  },
} as const;

const configurationError = (message: string): Error => new PostgresConfigurationError(message);
const transportOptions = defineOptions<PgQueueJsonOptions>(pgQueueOptionsSchema, { error: configurationError });
const endpointOptions = defineOptions(pgQueueEndpointOptionsSchema, { error: configurationError });

/** Checks the JSON options against `pgQueueOptionsSchema`; throws `PostgresConfigurationError` listing every problem (the URL's password never in it). */
export function validatePgQueueOptions({ database: _database, log: _log, ...json }: PgQueueTransportOptions): void {
  transportOptions.validate(json, 'pgqueue transport options');
}

/** Checks a `pgqueue:` endpoint's query options; throws `PostgresConfigurationError` naming the URI and every problem. */
export function validatePgQueueEndpointOptions(uri: string, options: Readonly<Record<string, string>>): void {
  endpointOptions.validate(options, { uri });
}
