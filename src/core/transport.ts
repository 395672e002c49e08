import type { Observable } from 'rxjs';
import type { Delivery } from './delivery.ts';
import type { Endpoint } from './endpoint.ts';
import type { Message } from './message.ts';

export interface ConsumeOptions {
  /** At most this many deliveries unsettled at once (AMQP prefetch, MQTT receive maximum). Routes always pass one (see `Transport.defaultPrefetch`). */
  readonly prefetch?: number;
  /**
   * Aborting stops the intake: no new deliveries are emitted (best effort for brokers whose cancel is
   * asynchronous). The Observable does not complete — completing would run its teardown at once —;
   * deliveries already emitted may still be settled, and unsubscribing later hands back whatever is
   * still unsettled.
   */
  readonly signal?: AbortSignal;
}

/** DI token for the transport multi-binding: every adapter binds one per scheme. */
export const Transport: unique symbol = Symbol.for('interchange.Transport');

/**
 * The SPI every adapter implements (Watermill's Publisher + Subscriber, with settlement on each delivery).
 *
 * Contract:
 * - `consume` emits deliveries with at most `prefetch` unsettled; unsettled deliveries left when the
 *   subscriber unsubscribes go back to the source (redelivered later, `attempt` incremented).
 *   `error` on the Observable means the transport itself failed (fatal), never a bad message.
 * - `publish` resolves when the destination has confirmed every message (broker confirm, channel
 *   accepted), and waits while a bounded destination is full; it rejects with a typed error.
 * - `close` stops consuming, lets in-flight publishes finish and disconnects. Idempotent.
 */
export interface Transport {
  readonly scheme: string;
  /**
   * The prefetch a route consuming from this transport gets when it sets none (default 100). A transport
   * whose flow control needs a wider window says so: MQTT's 1,000, since a PUBLISH is acknowledged only after
   * its route settled it and the window must cover the device rate times that round trip.
   */
  readonly defaultPrefetch?: number;
  connect(): Promise<void>;
  consume(endpoint: Endpoint, options?: ConsumeOptions): Observable<Delivery>;
  publish(endpoint: Endpoint, messages: readonly Message[]): Promise<void>;
  /**
   * Request-reply (optional): sends `message` to `endpoint` with a reply address of the transport's own
   * (AMQP direct reply-to, an MQTT 5 response topic, a memory reply channel) and resolves with the first
   * reply carrying its correlation id; rejects with `TimeoutError` after `timeoutMs`. A transport without
   * it cannot be the target of a request-reply step (`EndpointError` when the route is built or run).
   */
  request?(endpoint: Endpoint, message: Message, options: RequestOptions): Promise<Message>;
  close(): Promise<void>;
}

/** Options of one `Transport.request`. */
export interface RequestOptions {
  /** How long to wait for the reply before rejecting with `TimeoutError`. */
  readonly timeoutMs: number;
  /** Aborts the wait (the route is stopping): rejects at once. */
  readonly signal?: AbortSignal;
}
