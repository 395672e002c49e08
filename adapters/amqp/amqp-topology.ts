import type { Channel, Options } from 'amqplib';

/** An exchange to declare. `durable` defaults to true. */
export interface ExchangeSpec {
  readonly name: string;
  readonly type: 'direct' | 'topic' | 'fanout' | 'headers';
  readonly durable?: boolean;
  readonly autoDelete?: boolean;
  readonly internal?: boolean;
  /** Where messages this exchange cannot route go (`alternate-exchange`). */
  readonly alternateExchange?: string;
  readonly arguments?: Readonly<Record<string, string | number | boolean>>;
}

/** A queue to declare. `type` defaults to classic, `durable` to true (quorum queues are always durable). */
export interface QueueSpec {
  readonly name: string;
  readonly type?: 'classic' | 'quorum';
  readonly durable?: boolean;
  readonly exclusive?: boolean;
  readonly autoDelete?: boolean;
  /** `x-message-ttl`: messages older than this are dropped or dead-lettered. */
  readonly messageTtlMs?: number;
  /** `x-expires`: the queue is deleted after being unused this long. */
  readonly expiresMs?: number;
  readonly maxLength?: number;
  readonly maxLengthBytes?: number;
  /** What a full queue does (`x-overflow`). `reject-publish` makes publishes reject with `PublishRejectedError`. */
  readonly overflow?: 'drop-head' | 'reject-publish' | 'reject-publish-dlx';
  /** `x-dead-letter-exchange`: where rejected (nack without requeue), expired and dropped messages go. */
  readonly deadLetterExchange?: string;
  readonly deadLetterRoutingKey?: string;
  /** Quorum only (`x-delivery-limit`): deliveries after which the broker dead-letters a message by itself. */
  readonly deliveryLimit?: number;
  readonly maxPriority?: number;
  readonly arguments?: Readonly<Record<string, string | number | boolean>>;
}

/** A binding from an exchange to a queue (or to another exchange, with `toExchange`). */
export interface BindingSpec {
  readonly exchange: string;
  readonly queue?: string;
  readonly toExchange?: string;
  /** Routing (binding) key; default ''. */
  readonly routingKey?: string;
  readonly arguments?: Readonly<Record<string, string | number | boolean>>;
}

/** Broker topology as data: declared idempotently at connect and again after every reconnect. */
export interface Topology {
  readonly exchanges?: readonly ExchangeSpec[];
  readonly queues?: readonly QueueSpec[];
  readonly bindings?: readonly BindingSpec[];
}

/** The `assertQueue` options for a queue spec (RabbitMQ's `x-` arguments from the typed fields). */
export function queueOptions(spec: QueueSpec): Options.AssertQueue {
  const args: Record<string, string | number | boolean> = { ...spec.arguments };
  if (spec.type === 'quorum') args['x-queue-type'] = 'quorum';
  if (spec.messageTtlMs !== undefined) args['x-message-ttl'] = spec.messageTtlMs;
  if (spec.expiresMs !== undefined) args['x-expires'] = spec.expiresMs;
  if (spec.maxLength !== undefined) args['x-max-length'] = spec.maxLength;
  if (spec.maxLengthBytes !== undefined) args['x-max-length-bytes'] = spec.maxLengthBytes;
  if (spec.overflow !== undefined) args['x-overflow'] = spec.overflow;
  if (spec.deadLetterExchange !== undefined) args['x-dead-letter-exchange'] = spec.deadLetterExchange;
  if (spec.deadLetterRoutingKey !== undefined) args['x-dead-letter-routing-key'] = spec.deadLetterRoutingKey;
  if (spec.deliveryLimit !== undefined) args['x-delivery-limit'] = spec.deliveryLimit;
  if (spec.maxPriority !== undefined) args['x-max-priority'] = spec.maxPriority;
  return {
    durable: spec.type === 'quorum' ? true : (spec.durable ?? true),
    exclusive: spec.exclusive ?? false,
    autoDelete: spec.autoDelete ?? false,
    arguments: args,
  };
}

/**
 * Declares the topology on `channel`: exchanges, then queues, then bindings. Idempotent when the
 * broker's objects match the specs; a mismatch (406 PRECONDITION_FAILED) rejects and closes the channel.
 */
export async function declareTopology(channel: Channel, topology: Topology): Promise<void> {
  for (const exchange of topology.exchanges ?? []) {
    await channel.assertExchange(exchange.name, exchange.type, {
      durable: exchange.durable ?? true,
      autoDelete: exchange.autoDelete ?? false,
      internal: exchange.internal ?? false,
      ...(exchange.alternateExchange === undefined ? {} : { alternateExchange: exchange.alternateExchange }),
      arguments: { ...exchange.arguments },
    });
  }
  for (const queue of topology.queues ?? []) await channel.assertQueue(queue.name, queueOptions(queue));
  for (const binding of topology.bindings ?? []) {
    const key = binding.routingKey ?? '';
    if (binding.queue !== undefined) await channel.bindQueue(binding.queue, binding.exchange, key, { ...binding.arguments });
    if (binding.toExchange !== undefined) await channel.bindExchange(binding.toExchange, binding.exchange, key, { ...binding.arguments });
  }
}
