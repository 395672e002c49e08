import { defineOptions, InvalidOptionsError } from '../../src/core/index.ts';

/** A JetStream stream the transport creates on `connect` when absent (an existing one is left as it is). */
export interface NatsStreamDeclaration {
  /** 1-64 of A-Z a-z 0-9 _ -. */
  readonly name: string;
  /** Subjects it captures (wildcards allowed). */
  readonly subjects: readonly string[];
  /** `file` (default: survives a server restart) or `memory`. */
  readonly storage?: 'file' | 'memory';
  /** Messages older than this are removed (default: kept). */
  readonly maxAgeMs?: number;
  readonly maxMessages?: number;
  readonly maxBytes?: number;
  /** Publishes with a `Nats-Msg-Id` seen within this window are dropped as duplicates (server default 2 min). */
  readonly duplicateWindowMs?: number;
}

/** TLS material for `tls://` servers (PEM strings). Never logged. */
export interface NatsTlsOptions {
  readonly ca?: string;
  readonly cert?: string;
  readonly key?: string;
}

export interface NatsTransportOptions {
  /** Server URL(s), comma-separated (`nats://127.0.0.1:4222`). Default: `NATS_URL` (module), else `nats://127.0.0.1:4222`. */
  readonly url?: string;
  /** Connection name the server shows (default `interchange`). */
  readonly name?: string;
  readonly username?: string;
  readonly password?: string;
  readonly token?: string;
  readonly tls?: NatsTlsOptions;
  /** How long `connect` keeps trying before it rejects with `NotConnectedError` (default 10,000 ms). */
  readonly connectTimeoutMs?: number;
  /** Reconnect backoff: first delay, ceiling (ms), ±50 % jitter (defaults 250, 30,000). Reconnects never give up. */
  readonly reconnect?: { readonly initialDelayMs?: number; readonly maxDelayMs?: number };
  /** JetStream: deliveries of a nacked message before it goes to the dead-letter subject (default 5; endpoint `maxDeliveries`). */
  readonly maxDeliveries?: number;
  /** JetStream: the delay of the n-th redelivery of a nacked message, `backoffDelay(n - 1)` (defaults 100, 30,000 ms), sent with the nak. */
  readonly redelivery?: { readonly initialDelayMs?: number; readonly maxDelayMs?: number };
  /** JetStream: a consumer the adapter creates redelivers a message unacknowledged this long (default 30,000; endpoint `ackWaitMs`). */
  readonly ackWaitMs?: number;
  /** JetStream: how long `publish` waits for each stream acknowledgement (default 10,000 ms). */
  readonly publishTimeoutMs?: number;
  /** An inbound message over this many bytes (payload and headers) is refused at intake (default 1 MiB; endpoint `maxMessageBytes`). */
  readonly maxMessageBytes?: number;
  /**
   * JetStream dead letters: `<prefix>.<stream>.<original subject>` (default prefix `interchange.dead`),
   * kept by the stream `stream` (default `INTERCHANGE_DEAD`, created on first use, capturing `<prefix>.>`).
   */
  readonly deadLetter?: { readonly prefix?: string; readonly stream?: string };
  /** Streams created on `connect` when absent. */
  readonly streams?: readonly NatsStreamDeclaration[];
}

const positive = { type: 'integer', minimum: 1 } as const;
const delays = { type: 'object', additionalProperties: false, properties: { initialDelayMs: { type: 'integer', minimum: 0 }, maxDelayMs: positive } } as const;

const transportOptions = defineOptions<NatsTransportOptions>(
  {
    type: 'object',
    additionalProperties: false,
    properties: {
      url: { type: 'string', pattern: '^(nats|tls|ws|wss)://[^\\s]+$' },
      name: { type: 'string', minLength: 1, maxLength: 200 },
      username: { type: 'string' },
      password: { type: 'string' },
      token: { type: 'string' },
      tls: { type: 'object', additionalProperties: false, properties: { ca: { type: 'string' }, cert: { type: 'string' }, key: { type: 'string' } } },
      connectTimeoutMs: positive,
      reconnect: delays,
      maxDeliveries: { type: 'integer', minimum: 1, maximum: 10_000 },
      redelivery: delays,
      ackWaitMs: positive,
      publishTimeoutMs: positive,
      maxMessageBytes: positive,
      deadLetter: {
        type: 'object',
        additionalProperties: false,
        properties: { prefix: { type: 'string', pattern: '^[A-Za-z0-9_-]+(\\.[A-Za-z0-9_-]+)*$' }, stream: { type: 'string', pattern: '^[A-Za-z0-9_-]{1,64}$' } },
      },
      streams: {
        type: 'array',
        items: {
          type: 'object',
          additionalProperties: false,
          required: ['name', 'subjects'],
          properties: {
            name: { type: 'string', pattern: '^[A-Za-z0-9_-]{1,64}$' },
            subjects: { type: 'array', minItems: 1, items: { type: 'string', minLength: 1 } },
            storage: { enum: ['file', 'memory'] },
            maxAgeMs: positive,
            maxMessages: positive,
            maxBytes: positive,
            duplicateWindowMs: positive,
          },
        },
      },
    },
  },
  { secrets: ['password', 'token', 'key'], error: (message) => new InvalidOptionsError(message) },
);

/**
 * Returns the options typed, or throws `InvalidOptionsError` naming every problem (secrets masked).
 * @example validateNatsOptions({ url: 'nats://127.0.0.1:4222', maxDeliveries: 3 })
 */
export function validateNatsOptions(options: unknown): NatsTransportOptions {
  return transportOptions.validate(options, 'NATS options');
}

/** The schema of the transport's options (docs and validation from one source). */
export const natsOptionsSchema = transportOptions.schema;
