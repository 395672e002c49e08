import type { Endpoint } from './endpoint.ts';
import type { Transport } from './transport.ts';

/**
 * An optional ability, apart from the `Transport` SPI: creating what an endpoint's future consumer
 * needs on the broker before it consumes (an MQTT persistent session and its subscription; a queue),
 * so that messages published before the consumer starts are kept for it.
 *
 * Contract: `provision` consumes nothing and acknowledges nothing; it is idempotent (an existing
 * session or queue is left as it is); it rejects with the endpoint's validation error or the
 * transport's connection error.
 */
export interface ProvisionableTransport {
  provision(endpoint: Endpoint): Promise<void>;
}

/** Whether a transport can provision endpoints ahead of their consumers (see `ProvisionableTransport`). */
export function isProvisionableTransport(transport: Transport): transport is Transport & ProvisionableTransport {
  return typeof (transport as Partial<ProvisionableTransport>).provision === 'function';
}
