import type { Endpoint } from '../../src/core/index.ts';
import { parseBrokerHeaders } from './amqp-broker-headers.ts';
import { AmqpConfigurationError } from './amqp-errors.ts';
import { validateAmqpEndpointOptions } from './amqp-options.ts';

export type ExchangeType = 'direct' | 'topic' | 'fanout' | 'headers';

/**
 * An `amqp:` endpoint, resolved:
 * - `amqp:queue/<name>` — consume from the queue; publish through the default exchange with routing key `<name>`.
 * - `amqp:exchange/<name>?routingKey=<key>` — publish to the exchange; consuming gives a private
 *   (exclusive, auto-delete) queue bound with `bindingKey` (publish-subscribe).
 * `<name>` may be empty for the default exchange (`amqp:exchange/?routingKey=q`) only when publishing.
 */
export interface AmqpTarget {
  readonly uri: string;
  readonly kind: 'queue' | 'exchange';
  readonly name: string;
  /** Exchange to publish to ('' = default exchange). */
  readonly exchange: string;
  readonly routingKey: string;
  readonly bindingKey: string | undefined;
  /** Declare the exchange with this type on first use. */
  readonly exchangeType: ExchangeType | undefined;
  readonly mandatory: boolean;
  readonly persistent: boolean;
  readonly maxDeliveries: number | undefined;
  /** Broker headers (`?brokerHeaders=CC,x-delay`) published messages may carry; others are dropped. */
  readonly brokerHeaders: ReadonlySet<string> | undefined;
}

const cache = new Map<string, AmqpTarget>();

/** Resolves (and validates, once per URI) an `amqp:` endpoint; throws `AmqpConfigurationError`. */
export function resolveTarget(endpoint: Endpoint): AmqpTarget {
  const cached = cache.get(endpoint.uri);
  if (cached !== undefined) return cached;
  const slash = endpoint.path.indexOf('/');
  const kind = slash < 0 ? endpoint.path : endpoint.path.slice(0, slash);
  const name = slash < 0 ? '' : endpoint.path.slice(slash + 1);
  if (kind !== 'queue' && kind !== 'exchange') throw new AmqpConfigurationError(`'${endpoint.uri}': expected amqp:queue/<name> or amqp:exchange/<name>`);
  if (kind === 'queue' && name === '') throw new AmqpConfigurationError(`'${endpoint.uri}': the queue name is missing`);
  const options = endpoint.options;
  validateAmqpEndpointOptions(endpoint.uri, options);
  // AMQP short strings: amqplib throws on longer ones at publish time, after it took the confirm slot
  if (Buffer.byteLength(name, 'utf8') > 255) throw new AmqpConfigurationError(`'${endpoint.uri}': names are at most 255 bytes of UTF-8`);
  if (options.routingKey !== undefined && Buffer.byteLength(options.routingKey, 'utf8') > 255) throw new AmqpConfigurationError(`'${endpoint.uri}': the routing key is over 255 bytes of UTF-8`);
  if (options.bindingKey !== undefined && Buffer.byteLength(options.bindingKey, 'utf8') > 255) throw new AmqpConfigurationError(`'${endpoint.uri}': the binding key is over 255 bytes of UTF-8`);
  if (kind === 'queue' && (options.routingKey !== undefined || options.bindingKey !== undefined || options.type !== undefined)) {
    throw new AmqpConfigurationError(`'${endpoint.uri}': routingKey, bindingKey and type apply to exchange endpoints only`);
  }
  const target: AmqpTarget = Object.freeze({
    uri: endpoint.uri,
    kind,
    name,
    exchange: kind === 'queue' ? '' : name,
    routingKey: kind === 'queue' ? name : (options.routingKey ?? ''),
    bindingKey: options.bindingKey,
    exchangeType: options.type as ExchangeType | undefined,
    // RabbitMQ (3.x) answers a mandatory publish to a direct reply-to address with basic.return even
    // when it delivered it: replies go non-mandatory (a requester that is gone cannot be helped anyway).
    mandatory: options.mandatory !== 'false' && !(kind === 'queue' && name.startsWith('amq.rabbitmq.reply-to')),
    persistent: options.persistent !== 'false',
    maxDeliveries: options.maxDeliveries === undefined ? undefined : Number(options.maxDeliveries),
    brokerHeaders: parseBrokerHeaders(options.brokerHeaders),
  });
  if (cache.size < 10_000) cache.set(endpoint.uri, target);
  return target;
}
