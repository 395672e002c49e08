import type { Endpoint } from '../../src/core/index.ts';
import type { InboundProperties } from './amqp10-codec.ts';
import { Amqp10ConfigurationError } from './amqp10-errors.ts';
import { validateAmqp10EndpointOptions } from './amqp10-options.ts';

/**
 * An `amqp10:` endpoint, resolved to a RabbitMQ AMQP 1.0 address (the `rabbitmq_amqp1_0` plugin's forms):
 * - `amqp10:queue/<name>` → `/queue/<name>`: the plugin declares a durable classic queue of that name
 *   (without arguments: no dead-letter exchange; links carry terminus `durable: 2`, see `terminusDurability`). Point-to-point, competing consumers.
 * - `amqp10:amq/queue/<name>` → `/amq/queue/<name>`: an existing queue, declared elsewhere with its
 *   arguments (`x-dead-letter-exchange`, `x-queue-type: quorum`…) — the form to use for dead-lettering.
 * - `amqp10:exchange/<exchange>[/<routing key>]` → `/exchange/<exchange>/<key>`: publish with that
 *   routing key; consume = a private queue bound with it (publish-subscribe, at most once).
 * - `amqp10:topic/<key>` → `/topic/<key>` (`amq.topic`): publish-subscribe like an exchange.
 */
export interface Amqp10Target {
  readonly uri: string;
  readonly address: string;
  /** A queue (shared, persistent) or a subscription of its own (exchange, topic). */
  readonly kind: 'queue' | 'subscription';
  readonly maxDeliveries: number | undefined;
  readonly durable: boolean;
  readonly inbound: InboundProperties;
}

const MAX_ADDRESS_BYTES = 1024;

/**
 * The terminus `durable` of a link to `address`: 2 (unsettled-state) for `/queue/<name>`, which the
 * plugin then declares durable (with rhea's default 0 it declares a NON-durable queue, lost on a broker
 * restart, and attaching to a durable one fails with precondition-failed); 0 for every other form (a
 * topic or exchange subscription's private queue stays non-durable; `/amq/queue/` declares nothing).
 */
export function terminusDurability(address: string): 0 | 2 {
  return address.startsWith('/queue/') ? 2 : 0;
}
const cache = new Map<string, Amqp10Target>();

/**
 * Resolves (and validates, once per URI) an `amqp10:` endpoint; throws `Amqp10ConfigurationError`.
 * @example resolveAmqp10Target(parseEndpoint('amqp10:queue/orders')) // { address: '/queue/orders', kind: 'queue', … }
 */
export function resolveAmqp10Target(endpoint: Endpoint): Amqp10Target {
  const cached = cache.get(endpoint.uri);
  if (cached !== undefined) return cached;
  const path = endpoint.path;
  const form = /^(queue|amq\/queue|exchange|topic)\/(.+)$/.exec(path);
  if (form === null) throw new Amqp10ConfigurationError(`'${endpoint.uri}': expected amqp10:queue/<name>, amqp10:amq/queue/<name>, amqp10:exchange/<exchange>[/<key>] or amqp10:topic/<key>`);
  const [, kind, rest] = form as unknown as [string, string, string];
  if ((kind === 'queue' || kind === 'amq/queue') && rest.includes('/')) throw new Amqp10ConfigurationError(`'${endpoint.uri}': a queue name cannot contain '/'`);
  if (kind === 'exchange' && rest.split('/').length > 2) throw new Amqp10ConfigurationError(`'${endpoint.uri}': expected exchange/<exchange>[/<routing key>]`);
  const address = `/${path}`;
  if (Buffer.byteLength(address) > MAX_ADDRESS_BYTES) throw new Amqp10ConfigurationError(`'${endpoint.uri}': the address is over ${MAX_ADDRESS_BYTES} bytes`);
  const options = endpoint.options;
  validateAmqp10EndpointOptions(endpoint.uri, options);
  if (options.headers === 'all' && options.properties !== undefined) throw new Amqp10ConfigurationError(`'${endpoint.uri}': properties allow-lists application properties of an untrusted producer, not with headers=all`);
  const target: Amqp10Target = Object.freeze({
    uri: endpoint.uri,
    address,
    kind: kind === 'queue' || kind === 'amq/queue' ? 'queue' : 'subscription',
    maxDeliveries: options.maxDeliveries === undefined ? undefined : Number(options.maxDeliveries),
    durable: options.durable !== 'false',
    inbound: Object.freeze({ headers: options.headers === 'all' ? 'all' : 'none', allowed: options.properties === undefined ? undefined : new Set(options.properties.split(',')) }),
  });
  if (cache.size < 10_000) cache.set(endpoint.uri, target);
  return target;
}
