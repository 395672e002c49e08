import type { Endpoint } from '../../src/core/index.ts';
import { RedisStreamsConfigurationError } from './redis-streams-errors.ts';
import { validateRedisStreamsEndpointOptions } from './redis-streams-options.ts';

/** What a consumer takes of an entry besides its body (endpoint options `headers` and `fields`). */
export interface InboundFields {
  /**
   * `all` (only when the endpoint says `headers=all`): a trusted Interchange peer wrote the entry (its
   * id, every header); `none` (the default: whoever can XADD writes any field): the id from the entry
   * id, only `fields`.
   */
  readonly headers: 'all' | 'none';
  /** With `none`: the entry fields that become string headers of the same name (reserved names never). */
  readonly fields: ReadonlySet<string> | undefined;
}

/**
 * A `redis:` endpoint, resolved (consuming, an entry's own id and headers are taken only with
 * `headers=all`; see `InboundFields`):
 * - `redis:stream/<key>` — publish: XADD to the stream `<key>`; consume without a group: every
 *   subscriber reads the entries added after it subscribed (XREAD from `$`), at most once.
 * - `redis:stream/<key>?group=<group>[&consumer=<name>]` — consume in a consumer group (created with
 *   MKSTREAM if absent, from the stream's first entry unless `start=$`): competing consumers,
 *   at-least-once (XACK after settlement), dead-letter stream `<key>:dead` after `maxDeliveries`.
 * The key is everything after `stream/` (percent-decoded; `/` and `:` allowed).
 */
export interface RedisStreamTarget {
  readonly uri: string;
  readonly key: string;
  readonly group: string | undefined;
  /** The consumer name the endpoint asks for, if any. */
  readonly consumer: string | undefined;
  readonly start: '0' | '$';
  readonly maxLen: number | undefined;
  readonly maxDeliveries: number | undefined;
  readonly minIdleMs: number | undefined;
  readonly deadLetterKey: string;
  readonly inbound: InboundFields;
}

/** Redis keys may be longer, but a stream key of more than 1 KiB is a mistake, not a name. */
const MAX_KEY_BYTES = 1024;

const cache = new Map<string, RedisStreamTarget>();

/**
 * Resolves (and validates, once per URI) a `redis:` endpoint; throws `RedisStreamsConfigurationError`.
 * @example resolveStreamTarget(parseEndpoint('redis:stream/orders?group=billing')) // { key: 'orders', group: 'billing', deadLetterKey: 'orders:dead', … }
 */
export function resolveStreamTarget(endpoint: Endpoint): RedisStreamTarget {
  const cached = cache.get(endpoint.uri);
  if (cached !== undefined) return cached;
  if (!endpoint.path.startsWith('stream/')) throw new RedisStreamsConfigurationError(`'${endpoint.uri}': expected redis:stream/<key>[?group=<group>]`);
  const key = endpoint.path.slice('stream/'.length);
  if (key === '') throw new RedisStreamsConfigurationError(`'${endpoint.uri}': the stream key is missing`);
  if (Buffer.byteLength(key, 'utf8') > MAX_KEY_BYTES) throw new RedisStreamsConfigurationError(`'${endpoint.uri}': the stream key is over ${MAX_KEY_BYTES} bytes`);
  const options = endpoint.options;
  validateRedisStreamsEndpointOptions(endpoint.uri, options);
  if (options.group === undefined && options.consumer !== undefined) throw new RedisStreamsConfigurationError(`'${endpoint.uri}': consumer needs a group`);
  if (options.headers === 'all' && options.fields !== undefined) throw new RedisStreamsConfigurationError(`'${endpoint.uri}': fields allow-lists entry fields of an untrusted producer, not with headers=all`);
  const deadLetterKey = options.deadLetter ?? `${key}:dead`;
  if (deadLetterKey === key) throw new RedisStreamsConfigurationError(`'${endpoint.uri}': the dead-letter stream cannot be the stream itself`);
  const target: RedisStreamTarget = Object.freeze({
    uri: endpoint.uri,
    key,
    group: options.group,
    consumer: options.consumer,
    start: (options.start as '0' | '$' | undefined) ?? (options.group === undefined ? '$' : '0'),
    maxLen: options.maxLen === undefined ? undefined : Number(options.maxLen),
    maxDeliveries: options.maxDeliveries === undefined ? undefined : Number(options.maxDeliveries),
    minIdleMs: options.minIdleMs === undefined ? undefined : Number(options.minIdleMs),
    deadLetterKey,
    inbound: Object.freeze({ headers: options.headers === 'all' ? 'all' : 'none', fields: options.fields === undefined ? undefined : new Set(options.fields.split(',')) }),
  });
  if (cache.size < 10_000) cache.set(endpoint.uri, target);
  return target;
}
