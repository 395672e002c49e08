import type { Endpoint } from '../../src/core/index.ts';
import { StompConfigurationError } from './stomp-errors.ts';
import { validateStompEndpointOptions } from './stomp-options.ts';

/** The destination kinds a `stomp:` URI may name: the brokers' common ones and RabbitMQ's own. */
const KINDS = ['queue', 'topic', 'exchange', 'amq/queue'] as const;
export type DestinationKind = (typeof KINDS)[number];

/**
 * A `stomp:` endpoint, resolved. The path is the STOMP destination without its leading `/`:
 * - `stomp:queue/<name>` → `/queue/<name>` (point to point, both brokers; RabbitMQ declares a durable queue),
 * - `stomp:topic/<name>` → `/topic/<name>` (publish-subscribe, non-durable subscriptions),
 * - RabbitMQ's `stomp:exchange/<exchange>[/<routing key>]` and `stomp:amq/queue/<name>` (an existing
 *   queue, not declared), passed through. `stomp:/queue/<name>` (with the slash) is the same endpoint.
 * Anything else is refused (`StompConfigurationError`): a destination STOMP brokers disagree on is a
 * configuration mistake, not something to guess.
 */
export interface StompTarget {
  readonly uri: string;
  readonly kind: DestinationKind;
  /** The STOMP `destination` header. */
  readonly destination: string;
  /** The name after the kind (`orders`, `amq.topic/alerts.*`). */
  readonly name: string;
  readonly inbound: 'standard' | 'all' | 'none';
  /** Publishing: `none` = body and content-type only. */
  readonly outbound: 'all' | 'none';
  readonly allowHeaders: ReadonlySet<string> | undefined;
  readonly queueType: 'classic' | 'quorum' | undefined;
  readonly maxDeliveries: number | undefined;
  /** RabbitMQ: where a message nacked `maxDeliveries` times is sent. */
  readonly deadLetter: string;
  readonly persistent: boolean;
}

/** A destination of more than 1 KiB is a mistake, not a name. */
const MAX_DESTINATION_CHARS = 1024;
// eslint-disable-next-line no-control-regex
const UNSAFE = /[\u0000-\u001f\u007f]/;

const cache = new Map<string, StompTarget>();

/**
 * Resolves (and validates, once per URI) a `stomp:` endpoint of any scheme; throws `StompConfigurationError`.
 * @example resolveStompTarget(parseEndpoint('stomp:queue/orders?queueType=quorum')) // { destination: '/queue/orders', deadLetter: '/queue/DLQ.orders', … }
 */
export function resolveStompTarget(endpoint: Endpoint): StompTarget {
  const cached = cache.get(endpoint.uri);
  if (cached !== undefined) return cached;
  const path = endpoint.path.replace(/^\/+/, '');
  const kind = KINDS.find((candidate) => path.startsWith(`${candidate}/`));
  const expected = `expected ${endpoint.scheme}:queue/<name>, ${endpoint.scheme}:topic/<name>, or RabbitMQ's ${endpoint.scheme}:exchange/<exchange>[/<key>] or ${endpoint.scheme}:amq/queue/<name>`;
  if (kind === undefined) throw new StompConfigurationError(`'${endpoint.uri}': ${expected}`);
  const name = path.slice(kind.length + 1);
  if (name === '' || name.startsWith('/')) throw new StompConfigurationError(`'${endpoint.uri}': the destination name is missing (${expected})`);
  if (name.length > MAX_DESTINATION_CHARS || UNSAFE.test(name)) throw new StompConfigurationError(`'${endpoint.uri}': the destination name is over ${MAX_DESTINATION_CHARS} characters or has control characters`);
  const options = validateStompEndpointOptions(endpoint.uri, endpoint.options);
  if (options.allowHeaders !== undefined && options.headers !== undefined && options.headers !== 'standard') throw new StompConfigurationError(`'${endpoint.uri}': allowHeaders allow-lists headers of an untrusted producer, only with headers=standard`);
  if (options.queueType !== undefined && kind !== 'queue') throw new StompConfigurationError(`'${endpoint.uri}': queueType declares a RabbitMQ queue; only for queue/ destinations`);
  const deadLetter = options.deadLetter ?? `/queue/DLQ.${name.replaceAll('/', '.')}`;
  if (deadLetter === `/${path}`) throw new StompConfigurationError(`'${endpoint.uri}': the dead-letter destination cannot be the destination itself`);
  const target: StompTarget = Object.freeze({
    uri: endpoint.uri,
    kind,
    destination: `/${kind}/${name}`,
    name,
    inbound: options.headers ?? 'standard',
    outbound: options.headers === 'none' ? 'none' : 'all',
    allowHeaders: options.allowHeaders === undefined ? undefined : new Set(options.allowHeaders.split(',')),
    queueType: options.queueType,
    maxDeliveries: options.maxDeliveries === undefined ? undefined : Number(options.maxDeliveries),
    deadLetter,
    persistent: options.persistent !== 'false',
  });
  if (cache.size < 10_000) cache.set(endpoint.uri, target);
  return target;
}
