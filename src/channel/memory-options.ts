import { defineOptions, positiveIntegerOption, type Endpoint } from '../core/index.ts';

/** The query options a `memory:` endpoint URI accepts (all strings in the URI), as JSON Schema. */
export const memoryEndpointOptionsSchema = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  title: 'memory endpoint options',
  type: 'object',
  additionalProperties: false,
  properties: {
    type: { enum: ['queue', 'pubsub'], description: '`queue`: point-to-point, competing consumers (default); `pubsub`: every subscriber gets every message published while it is subscribed' },
    capacity: positiveIntegerOption("messages a queue (each subscriber's, for pub-sub) holds before publishers wait (default: the transport's, else 1,000)"),
    maxDeliveries: positiveIntegerOption("consume: deliveries of a nacked message before it moves to `<name>.dead` (default: the transport's, else 5)"),
  },
} as const;

/** A `memory:` endpoint's options, validated. */
export interface MemoryEndpointOptions {
  readonly type?: 'queue' | 'pubsub';
  readonly capacity?: string;
  readonly maxDeliveries?: string;
}

const memoryEndpointOptions = defineOptions<MemoryEndpointOptions>(memoryEndpointOptionsSchema);

/**
 * Checks a `memory:` endpoint's options against `memoryEndpointOptionsSchema`; throws `EndpointError`
 * naming the URI and every problem (`memory:orders?tpye=pubsub` → option 'tpye' is unknown).
 */
export function validateMemoryEndpointOptions(endpoint: Endpoint): MemoryEndpointOptions {
  // most memory: endpoints have no options: nothing to check, and no validator to load
  if (Object.keys(endpoint.options).length === 0) return endpoint.options;
  return memoryEndpointOptions.validate(endpoint.options, endpoint);
}
