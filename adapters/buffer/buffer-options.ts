import type { SchedulerLike } from 'rxjs';
import { defineOptions, EndpointError, positiveIntegerOption, type BackoffOptions, type Endpoint, type Logger } from '../../src/core/index.ts';

/** Default bound of one buffer's unacknowledged bytes (record bytes on disk): 1 GiB. */
export const DEFAULT_MAX_BYTES = 1024 ** 3;
/** Default bound of one buffer's unacknowledged entries. */
export const DEFAULT_MAX_ENTRIES = 1_000_000;
/** Default size at which a segment file is closed and the next one started: 64 MiB. */
export const DEFAULT_SEGMENT_BYTES = 64 * 1024 ** 2;
/** Default backoff of a nacked entry's redelivery: 100 ms doubling to 10 s, ±50 %. */
export const DEFAULT_REDELIVERY: BackoffOptions = Object.freeze({ initialMs: 100, maxMs: 10_000 });

export interface BufferTransportOptions {
  /** Where the buffers live: one subdirectory per buffer name (created when first used). Required. */
  readonly directory: string;
  /** Unacknowledged bytes a buffer holds before publishers wait (default 1 GiB); `?maxBytes=` overrides it per buffer. */
  readonly maxBytes?: number;
  /** Unacknowledged entries a buffer holds before publishers wait (default 1,000,000); `?maxEntries=` overrides it per buffer. */
  readonly maxEntries?: number;
  /** Size of a segment file before the next one is started (default 64 MiB); segments wholly acknowledged are deleted. */
  readonly segmentBytes?: number;
  /** Where the transport logs (full / room again, recovery, corruption); default: stderr. */
  readonly logger?: Logger;
  /** Backoff before a nacked entry is delivered again (default `DEFAULT_REDELIVERY`). */
  readonly redelivery?: BackoffOptions;
  /** Timers (redelivery backoff, cursor writes, status samples); default: RxJS `asyncScheduler`. */
  readonly scheduler?: SchedulerLike;
  /** How often at most the cursor file is rewritten while entries are acknowledged, ms (default 25). */
  readonly cursorIntervalMs?: number;
}

const positive = { type: 'integer', minimum: 1 } as const;

/** The transport options as JSON Schema: the one source of their validation. */
export const bufferTransportOptionsSchema = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  title: 'buffer transport options',
  type: 'object',
  additionalProperties: false,
  required: ['directory'],
  properties: {
    directory: { type: 'string', minLength: 1, description: 'where the buffers live, one subdirectory per buffer' },
    maxBytes: { ...positive, description: 'unacknowledged bytes per buffer before publishers wait (default 1 GiB)' },
    maxEntries: { ...positive, description: 'unacknowledged entries per buffer before publishers wait (default 1,000,000)' },
    segmentBytes: { type: 'integer', minimum: 64, description: 'segment file size before rotation (default 64 MiB)' },
    logger: { type: 'object' },
    redelivery: { type: 'object', required: ['initialMs', 'maxMs'], properties: { initialMs: { type: 'number', minimum: 0 }, maxMs: { type: 'number', minimum: 0 } } },
    scheduler: { type: 'object' },
    cursorIntervalMs: { type: 'integer', minimum: 1 },
  },
} as const;

const transportOptions = defineOptions<BufferTransportOptions>(bufferTransportOptionsSchema);

/** Checks the transport's options; throws `InvalidOptionsError` naming every problem. */
export function validateBufferTransportOptions(options: unknown): BufferTransportOptions {
  return transportOptions.validate(options, 'buffer transport options');
}

/** The query options a `buffer:<name>` endpoint accepts, as JSON Schema. */
export const bufferEndpointOptionsSchema = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  title: 'buffer endpoint options',
  type: 'object',
  additionalProperties: false,
  properties: {
    maxBytes: positiveIntegerOption("unacknowledged bytes this buffer holds before publishers wait (default: the transport's)", 16),
    maxEntries: positiveIntegerOption("unacknowledged entries this buffer holds before publishers wait (default: the transport's)", 15),
  },
} as const;

const endpointOptions = defineOptions<{ readonly maxBytes?: string; readonly maxEntries?: string }>(bufferEndpointOptionsSchema);

/** A buffer endpoint: its name and the limits its URI states (undefined: not stated). */
export interface BufferEndpoint {
  readonly name: string;
  readonly maxBytes?: number | undefined;
  readonly maxEntries?: number | undefined;
}

const NAME = /^[A-Za-z0-9._-]{1,100}$/;

/**
 * Reads `buffer:<name>?maxBytes=…&maxEntries=…`. Throws `EndpointError` for a name outside
 * `[A-Za-z0-9._-]{1,100}` (or made of dots only: it names a directory) and for unknown or invalid options.
 */
export function parseBufferEndpoint(endpoint: Endpoint): BufferEndpoint {
  if (!NAME.test(endpoint.path) || /^\.+$/.test(endpoint.path)) {
    throw new EndpointError(`'${endpoint.uri}': a buffer name is 1 to 100 of A-Z a-z 0-9 . _ - (not dots only)`);
  }
  const options = Object.keys(endpoint.options).length === 0 ? {} : endpointOptions.validate(endpoint.options, endpoint);
  return {
    name: endpoint.path,
    maxBytes: options.maxBytes === undefined ? undefined : Number(options.maxBytes),
    maxEntries: options.maxEntries === undefined ? undefined : Number(options.maxEntries),
  };
}
