import { createHash } from 'node:crypto';
import type { Endpoint } from '../../src/core/index.ts';
import { validatePgQueueEndpointOptions } from './pg-queue-options.ts';
import { PostgresConfigurationError } from './postgres-errors.ts';

/**
 * A `pgqueue:` endpoint, resolved: `pgqueue:<queue>[?maxDeliveries=N&visibilityTimeoutMs=MS]`.
 * `<queue>` names a queue in the transport's one queue table (a value of its `queue` column, so a new
 * queue needs no DDL): 1 to 200 characters among letters, digits and `. _ : - /`.
 */
export interface PgQueueTarget {
  readonly uri: string;
  readonly queue: string;
  /** Endpoint overrides of the transport options (consumers only). */
  readonly maxDeliveries: number | undefined;
  readonly visibilityTimeoutMs: number | undefined;
}

const QUEUE_NAME = /^[A-Za-z0-9._:/-]{1,200}$/;
const cache = new Map<string, PgQueueTarget>();

/**
 * Resolves (and validates, once per URI) a `pgqueue:` endpoint.
 * Throws `PostgresConfigurationError` for a bad queue name or an unknown/invalid option.
 * @example resolvePgQueueTarget(parseEndpoint('pgqueue:orders?maxDeliveries=3')).queue // 'orders'
 */
export function resolvePgQueueTarget(endpoint: Endpoint): PgQueueTarget {
  const cached = cache.get(endpoint.uri);
  if (cached !== undefined) return cached;
  const queue = endpoint.path;
  if (!QUEUE_NAME.test(queue)) throw new PostgresConfigurationError(`'${endpoint.uri}': a pgqueue name is 1 to 200 letters, digits and . _ : - / (pgqueue:<queue>)`);
  validatePgQueueEndpointOptions(endpoint.uri, endpoint.options);
  const { maxDeliveries, visibilityTimeoutMs } = endpoint.options;
  if (visibilityTimeoutMs !== undefined && Number(visibilityTimeoutMs) < 100) throw new PostgresConfigurationError(`'${endpoint.uri}': visibilityTimeoutMs must be at least 100`);
  const target: PgQueueTarget = Object.freeze({
    uri: endpoint.uri,
    queue,
    maxDeliveries: maxDeliveries === undefined ? undefined : Number(maxDeliveries),
    visibilityTimeoutMs: visibilityTimeoutMs === undefined ? undefined : Number(visibilityTimeoutMs),
  });
  if (cache.size < 10_000) cache.set(endpoint.uri, target);
  return target;
}

/**
 * The `NOTIFY` channel of one queue of one table: `pgq_` and 24 hex digits of a hash of
 * `<schema>.<table>` and the queue name (a valid unquoted identifier whatever the queue is called).
 * A publish notifies it in its own transaction, so consumers of that queue alone wake, at commit.
 */
export function pgQueueChannel(schema: string, table: string, queue: string): string {
  return `pgq_${createHash('sha256').update(`${schema}.${table}\0${queue}`).digest('hex').slice(0, 24)}`;
}
