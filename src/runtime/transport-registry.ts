import { EndpointError, NotStartedError, parseEndpoint, type Message, type RequestOptions, type Transport } from '../core/index.ts';
import { missingTransportHint } from './transport-hints.ts';

/** Transports by scheme (the DI multi-binding, collected). */
export class TransportRegistry {
  private readonly byScheme = new Map<string, Transport>();
  /** Why `publish` is refused, while the integration that owns this registry has not started. */
  private refusal: string | undefined;

  constructor(transports: Iterable<Transport>) {
    for (const transport of transports) {
      if (this.byScheme.has(transport.scheme)) throw new EndpointError(`two transports bound for scheme '${transport.scheme}'`);
      this.byScheme.set(transport.scheme, transport);
    }
  }

  get schemes(): ReadonlySet<string> {
    return new Set(this.byScheme.keys());
  }

  get all(): readonly Transport[] {
    return [...this.byScheme.values()];
  }

  /** The transport for a scheme; `EndpointError` naming the known schemes, and what to set for one, if there is none. */
  forScheme(scheme: string): Transport {
    const transport = this.byScheme.get(scheme);
    if (transport === undefined) throw new EndpointError(`no transport for scheme '${scheme}' (known: ${[...this.byScheme.keys()].sort().join(', ')})${missingTransportHint(scheme)}`);
    return transport;
  }

  /**
   * Makes `publish` reject with `NotStartedError` saying `reason` (undefined: accept again). The
   * integration owning the registry refuses until it has started: before, transports are not
   * connected and no route consumes, so a publish would wait or sit in a queue with no hint why.
   */
  refusePublishes(reason: string | undefined): void {
    this.refusal = reason;
  }

  /**
   * Publishes to an endpoint URI through its transport; resolves on the destination's confirm.
   * Rejects with `NotStartedError` while publishes are refused (see `refusePublishes`).
   */
  publish(uri: string, messages: readonly Message[]): Promise<void> {
    if (this.refusal !== undefined) return Promise.reject(new NotStartedError(`${this.refusal}; cannot publish to '${uri}'`));
    const endpoint = parseEndpoint(uri);
    return this.forScheme(endpoint.scheme).publish(endpoint, messages);
  }

  /**
   * Request-reply through the endpoint's transport; `EndpointError` when it has none (`Transport.request`
   * is optional), `NotStartedError` while publishes are refused.
   */
  request(uri: string, message: Message, options: RequestOptions): Promise<Message> {
    if (this.refusal !== undefined) return Promise.reject(new NotStartedError(`${this.refusal}; cannot send a request to '${uri}'`));
    const endpoint = parseEndpoint(uri);
    const transport = this.forScheme(endpoint.scheme);
    if (transport.request === undefined) return Promise.reject(new EndpointError(`the '${endpoint.scheme}' transport has no request-reply; cannot send a request to '${uri}'`));
    return transport.request(endpoint, message, options);
  }
}
