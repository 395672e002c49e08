import type { Observable } from 'rxjs';
import type { Endpoint } from './endpoint.ts';
import type { Message } from './message.ts';
import type { Transport } from './transport.ts';

/**
 * An optional ability, apart from the `Transport` SPI: watching what is published to an endpoint
 * without consuming it (a wire tap on the channel itself). The test kit's mock endpoints use it so
 * that a mock on a channel a route consumes never competes with the route for its messages.
 *
 * Contract: `observe` emits each message the transport accepted for the endpoint (its `publish`
 * resolved) while subscribed, in acceptance order. Observing takes no message, holds no prefetch,
 * settles nothing and changes no delivery; it never errors because of a message.
 */
export interface ObservableTransport {
  observe(endpoint: Endpoint): Observable<Message>;
}

/** Whether a transport can be observed (see `ObservableTransport`). */
export function isObservableTransport(transport: Transport): transport is Transport & ObservableTransport {
  return typeof (transport as Partial<ObservableTransport>).observe === 'function';
}
