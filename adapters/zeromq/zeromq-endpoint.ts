import type { Endpoint } from '../../src/core/index.ts';
import { ZeroMqConfigurationError } from './zeromq-errors.ts';
import { validateZeroMqEndpointOptions } from './zeromq-options.ts';

/** pipeline: PUSH → PULL (each message to one consumer); pubsub: PUB → SUB (each message to every subscriber). */
export type ZeroMqPattern = 'pipeline' | 'pubsub';

/** What of an inbound envelope a consumer takes (endpoint option `headers`, see `decodeFrames`). */
export type ZeroMqInboundHeaders = 'standard' | 'all' | 'none';

/** A `zmq:` endpoint resolved: its address, pattern, and each side's settings. */
export interface ZeroMqTarget {
  /** The ZeroMQ address: `tcp://host:port`, `ipc:///path` or `inproc://name`. */
  readonly address: string;
  readonly pattern: ZeroMqPattern;
  /** Whether the consuming side (PULL, SUB) binds the address; else it connects. */
  readonly consumerBinds: boolean;
  /** Whether the publishing side (PUSH, PUB) binds the address; else it connects. */
  readonly publisherBinds: boolean;
  readonly hwm: number;
  /** pubsub: the topic frame published, and the prefix a subscriber filters on. */
  readonly topic: string;
  readonly headers: ZeroMqInboundHeaders;
  readonly maxDeliveries: number;
}

const TCP = /^tcp:\/\/(\*|\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]{0,252}))(?::([0-9]{1,5}))$/;
/** The longest `ipc://` path: a Unix socket path (sun_path) holds 107 bytes and a NUL. */
const MAX_IPC_PATH = 107;

/**
 * Resolves `zmq:<address>?options`, validating both: the address is `tcp://host:port` (host `*` only on
 * a side that binds), `ipc://<path>` or `inproc://<name>`; the options are those of
 * `zeroMqEndpointOptionsSchema`. Throws `ZeroMqConfigurationError` naming the URI.
 * @example resolveZeroMqEndpoint(parseEndpoint('zmq:tcp://127.0.0.1:5556?pattern=pubsub&topic=orders.'), { hwm: 1000, maxDeliveries: 5 })
 */
export function resolveZeroMqEndpoint(endpoint: Endpoint, defaults: { readonly hwm: number; readonly maxDeliveries: number }): ZeroMqTarget {
  const options = validateZeroMqEndpointOptions(endpoint.uri, endpoint.options);
  const address = endpoint.path;
  checkAddress(endpoint.uri, address);
  const pattern = options.pattern ?? 'pipeline';
  if (options.topic !== undefined && pattern !== 'pubsub') throw new ZeroMqConfigurationError(`invalid options in '${endpoint.uri}': option 'topic' needs pattern=pubsub`);
  if (options.topic !== undefined && Buffer.byteLength(options.topic) > 1024) throw new ZeroMqConfigurationError(`invalid options in '${endpoint.uri}': the topic is over 1024 bytes`);
  const bind = options.bind === undefined ? undefined : options.bind === 'true';
  return {
    address,
    pattern,
    consumerBinds: bind ?? pattern === 'pipeline',
    publisherBinds: bind ?? pattern === 'pubsub',
    hwm: options.hwm === undefined ? defaults.hwm : Number(options.hwm),
    topic: options.topic ?? '',
    headers: options.headers ?? 'standard',
    maxDeliveries: options.maxDeliveries === undefined ? defaults.maxDeliveries : Number(options.maxDeliveries),
  };
}

/** Throws `ZeroMqConfigurationError` unless `address` may be connected to (not a wildcard host). */
export function checkConnectable(uri: string, address: string): void {
  if (address.startsWith('tcp://*:')) throw new ZeroMqConfigurationError(`'${uri}': a side that connects needs a host, not '*' (bind=true binds it)`);
}

function checkAddress(uri: string, address: string): void {
  if (address.startsWith('tcp://')) {
    const match = TCP.exec(address);
    const port = match?.[2] === undefined ? Number.NaN : Number(match[2]);
    if (match === null || !(port >= 1 && port <= 65535)) throw new ZeroMqConfigurationError(`'${uri}': '${address.slice(0, 200)}' is not tcp://host:port (port 1–65535)`);
    return;
  }
  if (address.startsWith('ipc://')) {
    const path = address.slice(6);
    if (path === '' || Buffer.byteLength(path) > MAX_IPC_PATH) throw new ZeroMqConfigurationError(`'${uri}': an ipc:// path must have 1–${MAX_IPC_PATH} bytes`);
    return;
  }
  if (address.startsWith('inproc://')) {
    const name = address.slice(9);
    if (name === '' || name.length > 256) throw new ZeroMqConfigurationError(`'${uri}': an inproc:// name must have 1–256 characters`);
    return;
  }
  throw new ZeroMqConfigurationError(`'${uri}': the address must start with tcp://, ipc:// or inproc:// (got '${address.slice(0, 200)}')`);
}
