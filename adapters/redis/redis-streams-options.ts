import { defineOptions, positiveIntegerOption } from '../../src/core/index.ts';
import { RedisStreamsConfigurationError } from './redis-streams-errors.ts';

/** The largest entry (body plus headers) `publish` writes and a consumer takes, by default: 16 MiB. */
export const DEFAULT_MAX_ENTRY_BYTES = 16 * 1024 * 1024;

export interface RedisStreamsTransportOptions {
  /** `redis://[user:pass@]host:port[/db]` or `rediss://…`. Default: `REDIS_URL`, else `redis://127.0.0.1:6379`. Never logged unredacted. */
  readonly url?: string;
  /** How long `connect()` keeps trying before it rejects with `NotConnectedError` (default 15,000 ms). */
  readonly connectTimeoutMs?: number;
  /** Reconnect backoff: first delay and ceiling in ms, ±50 % jitter each (defaults 100, 10,000). */
  readonly reconnect?: { readonly initialDelayMs?: number; readonly maxDelayMs?: number };
  /**
   * A publish Redis has not answered within this time (across reconnects: ioredis resends it after
   * one) rejects with `TimeoutError` (default 30,000 ms). It may still be written later.
   */
  readonly publishTimeoutMs?: number;
  /** Default for endpoints without `?maxDeliveries=`: deliveries of an entry before it goes to the dead-letter stream (default 5). */
  readonly maxDeliveries?: number;
  /** Default for endpoints without `?minIdleMs=`: how long another consumer's unsettled entry stays with it before it is claimed (default 30,000 ms). */
  readonly minIdleMs?: number;
  /** How often a group consumer looks for entries idle past `minIdleMs` (XAUTOCLAIM; default 5,000 ms). */
  readonly claimIntervalMs?: number;
  /** The longest an XREAD/XREADGROUP blocks waiting for entries (default 5,000 ms; a claim round ends it sooner). */
  readonly blockMs?: number;
  /** Default for endpoints without `?maxLen=`: publish trims the stream to about this many entries (`MAXLEN ~`). Default: no trimming. */
  readonly maxLen?: number;
  /** The largest entry published or consumed, body and headers, in bytes (default 16 MiB). */
  readonly maxMessageBytes?: number;
  /** Consumer name in groups when an endpoint gives no `?consumer=` (default `<hostname>-<pid>-<random>`, one per transport). */
  readonly consumerName?: string;
}

/** The options' JSON Schema (draft 2020-12): the one source for validation and docs. */
export const redisStreamsOptionsSchema = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  title: 'Redis Streams transport options',
  type: 'object',
  additionalProperties: false,
  properties: {
    url: { type: 'string', pattern: '^rediss?://', description: 'Redis URL; default REDIS_URL, else redis://127.0.0.1:6379.' },
    connectTimeoutMs: { type: 'integer', minimum: 1, default: 15000 },
    reconnect: {
      type: 'object',
      additionalProperties: false,
      properties: { initialDelayMs: { type: 'integer', minimum: 1, default: 100 }, maxDelayMs: { type: 'integer', minimum: 1, default: 10000 } },
    },
    publishTimeoutMs: { type: 'integer', minimum: 1, default: 30000 },
    maxDeliveries: { type: 'integer', minimum: 1, default: 5 },
    minIdleMs: { type: 'integer', minimum: 1, default: 30000 },
    claimIntervalMs: { type: 'integer', minimum: 1, default: 5000 },
    blockMs: { type: 'integer', minimum: 1, maximum: 60000, default: 5000 },
    maxLen: { type: 'integer', minimum: 1, description: 'approximate MAXLEN trimming on publish; default none' },
    maxMessageBytes: { type: 'integer', minimum: 1, maximum: 536870912, default: 16777216, description: 'largest entry, body and headers; Redis takes at most 512 MB per value' },
    consumerName: { type: 'string', minLength: 1, maxLength: 200, pattern: '^[^\\s]+$' },
  },
} as const;

/** The query options a `redis:stream/<key>` URI accepts (strings in the URI), as JSON Schema. */
export const redisStreamsEndpointOptionsSchema = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  title: 'Redis Streams endpoint options',
  type: 'object',
  additionalProperties: false,
  properties: {
    group: { type: 'string', minLength: 1, maxLength: 200, pattern: '^[^\\s]+$', description: 'consume as this consumer group (created with MKSTREAM if absent): at-least-once, competing consumers. Without it: every subscriber reads every new entry, at most once' },
    consumer: { type: 'string', minLength: 1, maxLength: 200, pattern: '^[^\\s]+$', description: 'consumer name in the group (default: the transport\'s); a stable name re-reads its own pending entries after a restart' },
    start: { enum: ['0', '$'], description: 'where a new group (or a subscriber without a group) starts: 0 = the first entry, $ = entries added from now. Default 0 with a group, $ without' },
    maxLen: positiveIntegerOption('publish trims the stream to about this many entries (XADD MAXLEN ~); default: the transport\'s, else none', 15),
    maxDeliveries: positiveIntegerOption('deliveries of an entry before it goes to the dead-letter stream (default: the transport\'s, 5)', 6),
    minIdleMs: positiveIntegerOption('how long an unsettled entry of another consumer stays with it before it is claimed (default: the transport\'s, 30000)', 10),
    deadLetter: { type: 'string', minLength: 1, description: 'the dead-letter stream\'s key (default <key>:dead)' },
    headers: { enum: ['all', 'none'], description: 'consuming: what of an entry becomes headers — none (default: whoever can XADD writes any field; the id is <key>/<entry id>, headers only the fields named by `fields`) or all (only trusted Interchange peers write the stream: their id and every header, x-interchange-* fields included)' },
    fields: { type: 'string', pattern: '^[^,\\s]+(,[^,\\s]+)*$', description: 'consuming, not with headers=all: comma-separated entry fields that become string headers (never reserved names)' },
  },
} as const;

const configurationError = (message: string): Error => new RedisStreamsConfigurationError(message);
const transportOptions = defineOptions<RedisStreamsTransportOptions>(redisStreamsOptionsSchema, { error: configurationError });
const endpointOptions = defineOptions(redisStreamsEndpointOptionsSchema, { error: configurationError });

/** Checks transport options against `redisStreamsOptionsSchema`; throws `RedisStreamsConfigurationError` listing every problem (URL passwords redacted). */
export function validateRedisStreamsOptions(options: RedisStreamsTransportOptions): void {
  transportOptions.validate(options, 'Redis Streams transport options');
}

/** Checks an endpoint's query options; throws `RedisStreamsConfigurationError` naming the URI and every problem. */
export function validateRedisStreamsEndpointOptions(uri: string, options: Readonly<Record<string, string>>): void {
  endpointOptions.validate(options, { uri });
}
