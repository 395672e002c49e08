import { defineOptions, positiveIntegerOption } from '../../src/core/index.ts';
import { ZeroMqConfigurationError } from './zeromq-errors.ts';

/** The largest message (all frames) `publish` writes, and a socket that connects or is local (ipc, inproc) takes, by default: 16 MiB. */
export const DEFAULT_MAX_MESSAGE_BYTES = 16 * 1024 * 1024;
/**
 * The largest message a receiving socket bound on TCP takes by default: 1 MiB. Anyone who reaches the
 * port may connect, and each connected peer may fill the socket's queue: up to receive `hwm` ×
 * `maxMessageBytes` per peer (1,000 × 1 MiB by default).
 */
export const DEFAULT_BOUND_TCP_MAX_MESSAGE_BYTES = 1024 * 1024;
/** Each socket's high-water mark (messages queued per peer, each direction) by default. */
export const DEFAULT_HWM = 1000;

export interface ZeroMqTransportOptions {
  /**
   * The largest message, all frames, in bytes. `publish` refuses a larger one (`ZeroMqUnencodableError`);
   * a receiving socket gets it as `maxMessageSize`, so ZeroMQ disconnects a peer that sends a larger one
   * (the message never arrives; the peer reconnects). Unset: 16 MiB, but 1 MiB for a receiving socket
   * bound on TCP (`DEFAULT_BOUND_TCP_MAX_MESSAGE_BYTES`: each peer may queue receive `hwm` × this).
   */
  readonly maxMessageBytes?: number;
  /** Default for endpoints without `?maxDeliveries=`: deliveries of a nacked message, in this process, before it is dropped (default 5). */
  readonly maxDeliveries?: number;
  /** Default for endpoints without `?hwm=`: each socket's send and receive high-water mark (default 1000). */
  readonly hwm?: number;
  /**
   * How long one message of a `publish` may wait for room (a PUSH socket whose peers are all at their
   * high-water mark) before the publish rejects with `TimeoutError` (default 30,000 ms).
   */
  readonly publishTimeoutMs?: number;
  /** How long a bind is retried, with backoff, while its address is in use, before failing with `ZeroMqBindError` (default 10,000 ms). */
  readonly bindTimeoutMs?: number;
  /** How long `close` lets a socket flush what it still queues to connected peers; the rest is dropped (default 1,000 ms). */
  readonly lingerMs?: number;
  /** ZeroMQ's own reconnect of connecting sockets: first interval and ceiling in ms, doubling in between (defaults 100, 10,000). */
  readonly reconnect?: { readonly initialDelayMs?: number; readonly maxDelayMs?: number };
}

/** The options' JSON Schema (draft 2020-12): the one source for validation and docs. */
export const zeroMqOptionsSchema = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  title: 'ZeroMQ transport options',
  type: 'object',
  additionalProperties: false,
  properties: {
    maxMessageBytes: { type: 'integer', minimum: 1, maximum: 1073741824, description: 'largest message, all frames (unset: 16 MiB; 1 MiB for a receiving socket bound on TCP, where each peer may queue hwm × this)' },
    maxDeliveries: { type: 'integer', minimum: 1, default: 5 },
    hwm: { type: 'integer', minimum: 1, default: 1000 },
    publishTimeoutMs: { type: 'integer', minimum: 1, default: 30000 },
    bindTimeoutMs: { type: 'integer', minimum: 1, default: 10000 },
    lingerMs: { type: 'integer', minimum: 0, default: 1000 },
    reconnect: {
      type: 'object',
      additionalProperties: false,
      properties: { initialDelayMs: { type: 'integer', minimum: 1, default: 100 }, maxDelayMs: { type: 'integer', minimum: 1, default: 10000 } },
    },
  },
} as const;

/** The query options a `zmq:<address>` URI accepts (strings in the URI), as JSON Schema. */
export const zeroMqEndpointOptionsSchema = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  title: 'ZeroMQ endpoint options',
  type: 'object',
  additionalProperties: false,
  properties: {
    pattern: { enum: ['pipeline', 'pubsub'], description: 'pipeline (default): PUSH → PULL, each message to one consumer; pubsub: PUB → SUB, each message to every subscriber connected at the time' },
    bind: { enum: ['true', 'false'], description: 'whether this side binds the address (true) or connects to it (false). Default: the consumer binds in a pipeline, the publisher binds in pubsub' },
    hwm: positiveIntegerOption("this side's socket high-water mark, messages queued per peer (default: the transport's, 1000)", 9),
    topic: { type: 'string', maxLength: 1024, description: "pubsub only. Publishing: the topic frame every message carries (default empty). Consuming: the prefix filter (default empty: every message)" },
    headers: { enum: ['standard', 'all', 'none'], description: "consuming: what of a peer's envelope is taken — standard (default, an untrusted peer): a fresh id and its headers but reserved ones (x-interchange-*, id, correlation, trace, expiry, schema, type, priority, attempt, replyTo, receiptTo, receiptOn); all: a trusted Interchange peer, every header; none: the body alone" },
    maxDeliveries: positiveIntegerOption("deliveries of a nacked message in this process before it is dropped (default: the transport's, 5)", 6),
  },
} as const;

/** An endpoint's query options as validated: strings, as in the URI. */
export interface ZeroMqEndpointOptions {
  readonly pattern?: 'pipeline' | 'pubsub';
  readonly bind?: 'true' | 'false';
  readonly hwm?: string;
  readonly topic?: string;
  readonly headers?: 'standard' | 'all' | 'none';
  readonly maxDeliveries?: string;
}

const configurationError = (message: string): Error => new ZeroMqConfigurationError(message);
const transportOptions = defineOptions<ZeroMqTransportOptions>(zeroMqOptionsSchema, { error: configurationError });
const endpointOptions = defineOptions<ZeroMqEndpointOptions>(zeroMqEndpointOptionsSchema, { error: configurationError });

/** Checks transport options against `zeroMqOptionsSchema`; throws `ZeroMqConfigurationError` listing every problem. */
export function validateZeroMqOptions(options: ZeroMqTransportOptions): void {
  transportOptions.validate(options, 'ZeroMQ transport options');
}

/** Checks an endpoint's query options; throws `ZeroMqConfigurationError` naming the URI and every problem ("did you mean"). */
export function validateZeroMqEndpointOptions(uri: string, options: Readonly<Record<string, string>>): ZeroMqEndpointOptions {
  return endpointOptions.validate(options, { uri });
}
