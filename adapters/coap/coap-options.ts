import { defineOptions, positiveIntegerOption } from '../../src/core/index.ts';
import { CoapConfigurationError } from './coap-errors.ts';

/** The largest request payload the embedded server takes by default (block-wise reassembled): 64 KiB. */
export const DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024;

export interface CoapTransportOptions {
  /** Address the embedded server listens on (default `127.0.0.1`; `0.0.0.0` or `::` to take devices from the network). */
  readonly host?: string;
  /** UDP port of the embedded server (default 5683, CoAP's; 0 = any free port, see `CoapTransport.port`). */
  readonly port?: number;
  /** Run the embedded server (default true); false = a client only (`to('coap://…')`, observe). */
  readonly server?: boolean;
  /**
   * How long the server waits for a confirmable request's settlement before it sends an empty ACK (the
   * device stops retransmitting) and later the response as a separate confirmable message (default
   * 1,000 ms: below CoAP's 2 s ACK_TIMEOUT, so a device does not retransmit meanwhile).
   */
  readonly piggybackMs?: number;
  /** Confirmable requests `publish` keeps in flight at once to one destination (default 8; RFC 7252's NSTART is 1); the rest wait their turn. */
  readonly publishConcurrency?: number;
  /** A publish not answered within this time rejects with `TimeoutError` (default 30,000 ms); it may still have been taken. */
  readonly publishTimeoutMs?: number;
  /** Deliveries of a request nacked with a transient reason before the device is answered 5.03 (default 3). */
  readonly maxDeliveries?: number;
  /** Max-Age (seconds) of a 5.03 Service Unavailable: when the device should retry (default 5). */
  readonly retryAfterSeconds?: number;
  /** Requests the server holds at once, waiting or in a route, all paths together (default 1,000); beyond, 5.03. */
  readonly capacity?: number;
  /** How long a request for a path no consumer takes (yet) waits for one before it is answered 4.04/5.03 (default 5,000 ms). */
  readonly holdMs?: number;
  /** The largest request payload taken, block-wise transfers reassembled (default 64 KiB); beyond: 4.13 or dropped. */
  readonly maxMessageBytes?: number;
}

/** The options' JSON Schema (draft 2020-12): the one source for validation and docs. */
export const coapOptionsSchema = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  title: 'CoAP transport options',
  type: 'object',
  additionalProperties: false,
  properties: {
    host: { type: 'string', minLength: 1, default: '127.0.0.1' },
    port: { type: 'integer', minimum: 0, maximum: 65535, default: 5683 },
    server: { type: 'boolean', default: true },
    piggybackMs: { type: 'integer', minimum: 0, maximum: 60000, default: 1000 },
    publishTimeoutMs: { type: 'integer', minimum: 1, default: 30000 },
    publishConcurrency: { type: 'integer', minimum: 1, maximum: 1024, default: 8 },
    maxDeliveries: { type: 'integer', minimum: 1, default: 3 },
    retryAfterSeconds: { type: 'integer', minimum: 0, maximum: 86400, default: 5 },
    capacity: { type: 'integer', minimum: 1, default: 1000 },
    holdMs: { type: 'integer', minimum: 0, default: 5000 },
    maxMessageBytes: { type: 'integer', minimum: 1, maximum: 1048576, default: 65536 },
  },
} as const;

/** The query options a `coap:` URI accepts (strings in the URI), as JSON Schema. */
export const coapEndpointOptionsSchema = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  title: 'CoAP endpoint options',
  type: 'object',
  additionalProperties: false,
  properties: {
    headers: { enum: ['all', 'none'], description: 'consuming coap:<path>: none (default: any device) — the id is the exchange\'s, the headers only path parameters, allow-listed query parameters, contentType and coapPeer; all (only trusted Interchange peers send here) — the id and headers an Interchange publisher carries in its options' },
    query: { type: 'string', pattern: '^[A-Za-z_][\\w-]*(,[A-Za-z_][\\w-]*)*$', description: 'consuming coap:<path>: comma-separated Uri-Query parameters that become string headers (never reserved names)' },
    method: { enum: ['POST', 'PUT'], description: 'publishing: the request method (default POST)' },
    observe: { enum: ['true'], description: 'consuming coap://host/path: register as an observer (RFC 7641) and deliver each notification' },
    timeoutMs: positiveIntegerOption('publishing: how long to wait for the response (default: the transport\'s publishTimeoutMs)', 7),
  },
} as const;

const configurationError = (message: string): Error => new CoapConfigurationError(message);
const transportOptions = defineOptions<CoapTransportOptions>(coapOptionsSchema, { error: configurationError });
const endpointOptions = defineOptions(coapEndpointOptionsSchema, { error: configurationError });

/** Checks transport options against `coapOptionsSchema`; throws `CoapConfigurationError` listing every problem. */
export function validateCoapOptions(options: CoapTransportOptions): void {
  transportOptions.validate(options, 'CoAP transport options');
}

/** Checks an endpoint's query options; throws `CoapConfigurationError` naming the URI and every problem ("did you mean"). */
export function validateCoapEndpointOptions(uri: string, options: Readonly<Record<string, string>>): void {
  endpointOptions.validate(options, { uri });
}
