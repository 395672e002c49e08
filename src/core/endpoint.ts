import { EndpointError } from './errors.ts';

/**
 * A parsed endpoint URI, Camel style: `scheme:path?option=value`.
 * `memory:orders?capacity=100` → `{ scheme: 'memory', path: 'orders', options: { capacity: '100' } }`.
 */
export interface Endpoint {
  readonly uri: string;
  readonly scheme: string;
  readonly path: string;
  readonly options: Readonly<Record<string, string>>;
}

const cache = new Map<string, Endpoint>();

/**
 * Parses an endpoint URI with the WHATWG URL parser (standard percent-encoding and `?` rules; `#` is
 * taken literally, for MQTT wildcards). Throws `EndpointError` on a URI without a scheme or path.
 * @example parseEndpoint('amqp:exchange/telemetry?routingKey=reading.{deviceId}')
 */
export function parseEndpoint(uri: string): Endpoint {
  const cached = cache.get(uri);
  if (cached !== undefined) return cached;
  let url: URL;
  try {
    // `#` is data here (MQTT's multi-level wildcard), never a URL fragment.
    url = new URL(uri.replaceAll('#', '%23'));
  } catch (cause) {
    throw new EndpointError(`'${uri}' is not an endpoint URI (expected scheme:path?options)`, { cause });
  }
  const scheme = url.protocol.slice(0, -1);
  const path = decodeURIComponent(url.host === '' ? url.pathname : `${url.host}${url.pathname}`).replace(/^\/\//, '');
  if (path === '') throw new EndpointError(`'${uri}' has no path after '${scheme}:'`);
  const endpoint: Endpoint = Object.freeze({ uri, scheme, path, options: Object.freeze(Object.fromEntries(url.searchParams)) });
  if (cache.size < 10_000) cache.set(uri, endpoint);
  return endpoint;
}

/** Reads a positive integer option, or the default; throws `EndpointError` on anything else. */
export function integerOption(endpoint: Endpoint, name: string, fallback: number): number {
  const raw = endpoint.options[name];
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value <= 0) throw new EndpointError(`option '${name}' of '${endpoint.uri}' must be a positive integer, got '${raw}'`);
  return value;
}
