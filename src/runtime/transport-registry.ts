import { EndpointError, parseEndpoint, type Message, type Transport } from '../core/index.ts';

/** Transports by scheme (the DI multi-binding, collected). */
export class TransportRegistry {
  private readonly byScheme = new Map<string, Transport>();

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

  /** The transport for a scheme; `EndpointError` naming the known schemes if there is none. */
  forScheme(scheme: string): Transport {
    const transport = this.byScheme.get(scheme);
    if (transport === undefined) throw new EndpointError(`no transport for scheme '${scheme}' (known: ${[...this.byScheme.keys()].sort().join(', ')})`);
    return transport;
  }

  /** Publishes to an endpoint URI through its transport; resolves on the destination's confirm. */
  publish(uri: string, messages: readonly Message[]): Promise<void> {
    const endpoint = parseEndpoint(uri);
    return this.forScheme(endpoint.scheme).publish(endpoint, messages);
  }
}
