import type { Endpoint } from '../../src/core/index.ts';
import { CoapConfigurationError } from './coap-errors.ts';
import { validateCoapEndpointOptions } from './coap-options.ts';

/** Header names a path parameter may not take: whoever sends the request chooses its value, and these are Interchange's own. */
const RESERVED_PARAMETER = /^(x-interchange-.*|attempt|timestamp|expiresat|coappeer|coappath|contenttype|id|__proto__)$/i;

/**
 * A `coap:` path with named wildcards, MQTT style: `devices/+deviceId/telemetry` matches
 * `devices/d1/telemetry` and captures `{ deviceId: 'd1' }`; a last `#rest` matches any remaining
 * segments (`/`-joined in the header). A `+`/`#` without a name matches without capturing.
 */
export class PathPattern {
  /** The pattern as written (without leading or trailing `/`). */
  readonly source: string;
  private readonly segments: readonly { readonly literal?: string; readonly name?: string; readonly rest: boolean }[];

  constructor(path: string) {
    this.source = trimSlashes(path);
    const parts = this.source.split('/');
    this.segments = parts.map((part, index) => {
      if (part === '') throw new CoapConfigurationError(`'${path}': an empty path segment`);
      if (part.startsWith('+') || part.startsWith('#')) {
        const rest = part[0] === '#';
        if (rest && index !== parts.length - 1) throw new CoapConfigurationError(`'${path}': '#' must be the last path segment`);
        const name = part.slice(1);
        if (name === '') return { rest };
        if (!/^[A-Za-z_$][\w$-]*$/.test(name)) throw new CoapConfigurationError(`'${path}': path parameter '${name}' must be an identifier`);
        if (RESERVED_PARAMETER.test(name)) throw new CoapConfigurationError(`'${path}': path parameter '${name}' would let a device set a header only Interchange sets`);
        return { name, rest };
      }
      if (part.includes('+') || part.includes('#')) throw new CoapConfigurationError(`'${path}': a wildcard must fill a whole path segment`);
      return { literal: part, rest: false };
    });
  }

  /** Whether the pattern has no wildcard (an exact path wins over a pattern when both match). */
  get exact(): boolean {
    return this.segments.every((segment) => segment.literal !== undefined);
  }

  /** The captured parameters when `path` (its segments) matches, else undefined. */
  match(path: readonly string[]): Record<string, string> | undefined {
    const captured: Record<string, string> = {};
    for (let index = 0; index < this.segments.length; index += 1) {
      const segment = this.segments[index] as (typeof this.segments)[number];
      if (segment.rest) {
        if (index >= path.length) return undefined;
        if (segment.name !== undefined) captured[segment.name] = path.slice(index).join('/');
        return captured;
      }
      const value = path[index];
      if (value === undefined) return undefined;
      if (segment.literal !== undefined) {
        if (segment.literal !== value) return undefined;
      } else if (segment.name !== undefined) captured[segment.name] = value;
    }
    return path.length === this.segments.length ? captured : undefined;
  }
}

/** A `coap:<path>` endpoint: a resource of this transport's embedded server. */
export interface LocalTarget {
  readonly kind: 'local';
  readonly path: string;
  readonly options: Readonly<Record<string, string>>;
}

/** A `coap://host[:port]/path` endpoint: a resource of another CoAP server. */
export interface RemoteTarget {
  readonly kind: 'remote';
  readonly host: string;
  readonly port: number;
  readonly path: string;
  readonly options: Readonly<Record<string, string>>;
}

export type CoapTarget = LocalTarget | RemoteTarget;

/**
 * The target of a `coap:` endpoint, its query options validated (typo → `CoapConfigurationError`
 * with "did you mean"): `coap:<path>` is the embedded server's resource, `coap://host[:port]/<path>`
 * another server's (port 5683 by default; IPv6 literals in brackets).
 * @example resolveCoapTarget(parseEndpoint('coap://10.0.0.7/sensors/temp?observe=true')) // { kind: 'remote', host: '10.0.0.7', port: 5683, path: 'sensors/temp', … }
 */
export function resolveCoapTarget(endpoint: Endpoint): CoapTarget {
  validateCoapEndpointOptions(endpoint.uri, endpoint.options);
  if (/^coap:\/\//i.test(endpoint.uri)) {
    let url: URL;
    try {
      url = new URL(endpoint.uri.replace(/^coap:/i, 'http:'));
    } catch (cause) {
      throw new CoapConfigurationError(`'${endpoint.uri}' is not a coap://host[:port]/path URI`, { cause });
    }
    if (url.hostname === '') throw new CoapConfigurationError(`'${endpoint.uri}' has no host`);
    if (url.username !== '' || url.password !== '') throw new CoapConfigurationError(`'${endpoint.uri.replace(/\/\/[^@/]*@/, '//***@')}': CoAP has no user info (credentials belong to DTLS, not supported)`);
    const path = trimSlashes(decodeURIComponent(url.pathname));
    if (path === '') throw new CoapConfigurationError(`'${endpoint.uri}' has no resource path`);
    const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
    return { kind: 'remote', host, port: url.port === '' ? 5683 : Number(url.port), path, options: endpoint.options };
  }
  const path = trimSlashes(endpoint.path);
  if (path === '') throw new CoapConfigurationError(`'${endpoint.uri}' has no resource path`);
  return { kind: 'local', path, options: endpoint.options };
}

function trimSlashes(path: string): string {
  return path.replace(/^\/+|\/+$/g, '');
}
