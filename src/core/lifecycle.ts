/** DI token for the lifecycle multi-binding: components the integration starts and stops with its routes. */
export const Lifecycle: unique symbol = Symbol.for('interchange.Lifecycle');

/**
 * A component with a life of its own beside the routes — an outbox relay, a poller, a scheduler
 * (Spring's `SmartLifecycle`, Camel's `Service`). Bound with `bind(Lifecycle).toService(…)` in a
 * module, it is started by `Integration.start` once the transports are connected and the routes run,
 * and stopped by `Integration.stop` first — before the routes drain and the transports close — so
 * whatever it has in flight can still be confirmed. Both calls must be idempotent.
 */
export interface Lifecycle {
  start(): Promise<void>;
  stop(): Promise<void>;
}
