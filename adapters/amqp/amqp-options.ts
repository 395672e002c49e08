import { defineOptions, positiveIntegerOption } from '../../src/core/index.ts';
import { BROKER_HEADERS_PATTERN } from './amqp-broker-headers.ts';
import { AmqpConfigurationError } from './amqp-errors.ts';
import type { Topology } from './amqp-topology.ts';

/** TLS material for `amqps://` (PEM strings or buffers). Never logged. */
export interface AmqpTlsOptions {
  readonly ca?: string | Buffer | readonly (string | Buffer)[];
  readonly cert?: string | Buffer;
  readonly key?: string | Buffer;
  readonly passphrase?: string;
  readonly servername?: string;
  readonly rejectUnauthorized?: boolean;
}

export interface AmqpTransportOptions {
  /** Broker URL (`amqp://user:pass@host:5672/vhost`, `amqps://…`). Default: `AMQP_URL`, else `amqp://127.0.0.1:5672`. Never logged unredacted. */
  readonly url?: string;
  readonly tls?: AmqpTlsOptions;
  /** Declared at connect and after every reconnect. */
  readonly topology?: Topology;
  /** Heartbeat in seconds (default 10): a dead link is noticed within about two of them. */
  readonly heartbeatSeconds?: number;
  /** How long `connect()` keeps trying before it rejects with `NotConnectedError` (default 15,000). */
  readonly connectTimeoutMs?: number;
  /** Reconnect backoff: first delay and ceiling in ms, each delay with ±50 % jitter (defaults 100, 10,000). */
  readonly reconnect?: { readonly initialDelayMs?: number; readonly maxDelayMs?: number };
  /**
   * A publish that is not confirmed within this time (across reconnects: it is retried on the new
   * channel meanwhile) rejects with `TimeoutError` (default 30,000). Every publish settles within it.
   */
  readonly publishTimeoutMs?: number;
  /** Default for endpoints without `?maxDeliveries=`: deliveries of a nacked message before it is rejected to the queue's dead-letter exchange (default 5). */
  readonly maxDeliveries?: number;
  /** Declare `amqp:queue/<name>` queues that are not in the topology on first use, as durable classic queues (default true). */
  readonly declareQueues?: boolean;
  /** Request-reply default timeout in ms (default 30,000). */
  readonly requestTimeoutMs?: number;
  /**
   * The largest body `publish` sends, in bytes (default 16 MiB, RabbitMQ 4's default
   * `max_message_size`; set it to the broker's). A bigger message fails alone with
   * `AmqpUnencodableError` — sent, it would make the broker close the channel.
   */
  readonly maxMessageBytes?: number;
}

/** The options' JSON Schema (draft 2020-12): the one source for validation and docs. */
export const amqpOptionsSchema = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  title: 'AMQP transport options',
  type: 'object',
  additionalProperties: false,
  properties: {
    url: { type: 'string', pattern: '^amqps?://', description: 'Broker URL; default AMQP_URL, else amqp://127.0.0.1:5672.' },
    tls: {
      type: 'object',
      additionalProperties: false,
      properties: { ca: {}, cert: {}, key: {}, passphrase: { type: 'string' }, servername: { type: 'string' }, rejectUnauthorized: { type: 'boolean' } },
    },
    topology: {
      type: 'object',
      additionalProperties: false,
      properties: {
        exchanges: {
          type: 'array',
          items: {
            type: 'object',
            additionalProperties: false,
            required: ['name', 'type'],
            properties: {
              name: { type: 'string', minLength: 1, maxLength: 255 },
              type: { enum: ['direct', 'topic', 'fanout', 'headers'] },
              durable: { type: 'boolean', default: true },
              autoDelete: { type: 'boolean' },
              internal: { type: 'boolean' },
              alternateExchange: { type: 'string' },
              arguments: { $ref: '#/$defs/arguments' },
            },
          },
        },
        queues: {
          type: 'array',
          items: {
            type: 'object',
            additionalProperties: false,
            required: ['name'],
            properties: {
              name: { type: 'string', minLength: 1, maxLength: 255 },
              type: { enum: ['classic', 'quorum'], default: 'classic' },
              durable: { type: 'boolean', default: true },
              exclusive: { type: 'boolean' },
              autoDelete: { type: 'boolean' },
              messageTtlMs: { type: 'integer', minimum: 0 },
              expiresMs: { type: 'integer', minimum: 1 },
              maxLength: { type: 'integer', minimum: 0 },
              maxLengthBytes: { type: 'integer', minimum: 0 },
              overflow: { enum: ['drop-head', 'reject-publish', 'reject-publish-dlx'] },
              deadLetterExchange: { type: 'string' },
              deadLetterRoutingKey: { type: 'string' },
              deliveryLimit: { type: 'integer', minimum: 1, description: 'quorum queues only' },
              maxPriority: { type: 'integer', minimum: 1, maximum: 255 },
              arguments: { $ref: '#/$defs/arguments' },
            },
            if: { properties: { type: { const: 'quorum' } }, required: ['type'] },
            then: { properties: { exclusive: { const: false }, durable: { const: true } } },
            else: { not: { required: ['deliveryLimit'] } },
          },
        },
        bindings: {
          type: 'array',
          items: {
            type: 'object',
            additionalProperties: false,
            required: ['exchange'],
            oneOf: [{ required: ['queue'] }, { required: ['toExchange'] }],
            properties: {
              exchange: { type: 'string' },
              queue: { type: 'string', minLength: 1 },
              toExchange: { type: 'string', minLength: 1 },
              routingKey: { type: 'string' },
              arguments: { $ref: '#/$defs/arguments' },
            },
          },
        },
      },
    },
    heartbeatSeconds: { type: 'integer', minimum: 0, maximum: 3600, default: 10 },
    connectTimeoutMs: { type: 'integer', minimum: 1, default: 15000 },
    reconnect: {
      type: 'object',
      additionalProperties: false,
      properties: { initialDelayMs: { type: 'integer', minimum: 1, default: 100 }, maxDelayMs: { type: 'integer', minimum: 1, default: 10000 } },
    },
    publishTimeoutMs: { type: 'integer', minimum: 1, default: 30000 },
    maxDeliveries: { type: 'integer', minimum: 1, default: 5 },
    declareQueues: { type: 'boolean', default: true },
    requestTimeoutMs: { type: 'integer', minimum: 1, default: 30000 },
    maxMessageBytes: { type: 'integer', minimum: 1, maximum: 536870912, default: 16777216, description: "largest body published, in bytes; set it to the broker's max_message_size (RabbitMQ 4 default 16 MiB, at most 512 MiB)" },
  },
  $defs: {
    arguments: { type: 'object', additionalProperties: { type: ['string', 'number', 'boolean'] } },
  },
} as const;

/** The query options an `amqp:` endpoint URI accepts (all strings in the URI), as JSON Schema. */
export const amqpEndpointOptionsSchema = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  title: 'AMQP endpoint options',
  type: 'object',
  additionalProperties: false,
  properties: {
    routingKey: { type: 'string', description: 'exchange endpoints: routing key of published messages (default "")' },
    bindingKey: { type: 'string', description: 'consuming from an exchange: binding key of the private queue (default "#" for topic, "" otherwise)' },
    type: { enum: ['direct', 'topic', 'fanout', 'headers'], description: 'exchange endpoints: declare the exchange (durable) with this type on first use' },
    mandatory: { enum: ['true', 'false'], description: 'publish mandatory: unroutable → UnroutableError (default true)' },
    persistent: { enum: ['true', 'false'], description: 'delivery mode 2 (default true)' },
    maxDeliveries: positiveIntegerOption('deliveries of a nacked message before it is rejected to the dead-letter exchange', 6),
    brokerHeaders: {
      type: 'string',
      pattern: BROKER_HEADERS_PATTERN,
      description: 'publishing: comma-separated broker headers (CC, BCC, x-delay, x-death…) this route may send; every other broker header is dropped (default none)',
    },
  },
} as const;

const configurationError = (message: string): Error => new AmqpConfigurationError(message);
const transportOptions = defineOptions<AmqpTransportOptions>(amqpOptionsSchema, { secrets: ['passphrase', 'key', 'cert', 'ca'], error: configurationError });
const endpointOptions = defineOptions(amqpEndpointOptionsSchema, { error: configurationError });

/** Checks adapter options against `amqpOptionsSchema`; throws `AmqpConfigurationError` listing every problem (TLS material and URL passwords never in it). */
export function validateAmqpOptions(options: AmqpTransportOptions): void {
  transportOptions.validate(options, 'AMQP transport options');
}

/** Checks an endpoint's query options; throws `AmqpConfigurationError` naming the URI and every problem. */
export function validateAmqpEndpointOptions(uri: string, options: Readonly<Record<string, string>>): void {
  endpointOptions.validate(options, { uri });
}
