import { Container, type ContainerModule, type ServiceIdentifier } from 'inversify';
import { Subject, type Observable, type SchedulerLike } from 'rxjs';
import { Lifecycle, Logger, RouteDefinitionError, type Transport } from '../core/index.ts';
import { coreModule } from '../di/core.module.ts';
import { Scheduler } from '../di/tokens.ts';
import { validateRoutes, type RouteSource } from '../dsl/route-definition.ts';
import { MemoryTransport } from '../channel/memory-transport.ts';
import { memoryModule } from '../channel/memory.module.ts';
import type { RouteMetrics } from './route-metrics.ts';
import { RouteObserver } from './route-observer.ts';
import { RouteRuntime } from './route-runtime.ts';
import { TransportRegistry } from './transport-registry.ts';

export interface IntegrationParts {
  readonly routes: readonly RouteSource[];
  readonly transports: TransportRegistry;
  readonly scheduler: SchedulerLike;
  readonly log: Logger;
  readonly service: <T>(id: ServiceIdentifier<T>) => T;
  /** Components started after the routes and stopped before them (see `Lifecycle`). */
  readonly lifecycles?: readonly Lifecycle[];
  /** Observers of every route (metrics, tracing, the console): see `RouteObserver`. */
  readonly observers?: readonly RouteObserver[];
}

export interface StopOptions {
  /** How long in-flight messages may take to settle before routes detach anyway (default 10 s). */
  readonly drainTimeoutMs?: number;
}

/** A route whose source ended with an error while it ran (a fatal transport failure). */
export interface RouteFailure {
  readonly routeId: string;
  readonly error: Error;
}

/** How long the routes already running may drain when another one fails to start. */
const FAILED_START_DRAIN_MS = 1_000;
const NOT_STARTED = 'integration not started: await integration.start() first';

/**
 * A set of routes over a set of transports, started and stopped together (Camel's CamelContext).
 * Routes are validated when it is constructed: a bad route never gets to run.
 *
 * Lifecycle: `start` connects every transport, starts every route, then the `Lifecycle` components
 * (an outbox relay…). If a route fails to start (its transport refuses the endpoint) or a component
 * does, `start` stops what it started, closes the transports and rejects with that error (the route's
 * `failure` holds it). `stop` stops those components first, then every route (intake first, then drain
 * up to the deadline), and only then closes the transports, so in-flight messages can still be
 * confirmed and acked. `transports.publish` rejects with `NotStartedError` until `start` has
 * connected the transports.
 */
export class Integration {
  readonly transports: TransportRegistry;
  private readonly runtimes = new Map<string, RouteRuntime>();
  private readonly log: Logger;
  private readonly lifecycles: readonly Lifecycle[];
  private readonly observers: RouteObserver[];
  private readonly failures = new Subject<RouteFailure>();
  /** Each route that fails while running (its source ended with an error); the route is then `failed`. */
  readonly failures$: Observable<RouteFailure> = this.failures.asObservable();

  constructor(parts: IntegrationParts) {
    this.transports = parts.transports;
    this.log = parts.log;
    this.lifecycles = parts.lifecycles ?? [];
    this.observers = [...(parts.observers ?? [])];
    const observers = (): readonly RouteObserver[] => this.observers;
    const definitions = parts.routes.map((route) => route.definition());
    validateRoutes(definitions, parts.transports.schemes);
    const onFailed = (route: RouteRuntime, error: Error): void => this.failures.next({ routeId: route.id, error });
    for (const definition of definitions) {
      this.runtimes.set(definition.id, new RouteRuntime(definition, { transports: parts.transports, scheduler: parts.scheduler, log: parts.log, service: parts.service, onFailed, observers }));
    }
    this.transports.refusePublishes(NOT_STARTED);
  }

  get routes(): readonly RouteRuntime[] {
    return [...this.runtimes.values()];
  }

  route(id: string): RouteRuntime {
    const runtime = this.runtimes.get(id);
    if (runtime === undefined) throw new RouteDefinitionError(`no route with this id (have: ${[...this.runtimes.keys()].join(', ')})`, id);
    return runtime;
  }

  transport<T extends Transport = Transport>(scheme: string): T {
    return this.transports.forScheme(scheme) as T;
  }

  metrics(): Readonly<Record<string, Readonly<RouteMetrics>>> {
    return Object.fromEntries(
      this.routes.map((route) => [route.id, { ...route.metrics, sent: { ...route.metrics.sent }, steps: Object.fromEntries(Object.entries(route.metrics.steps).map(([id, step]) => [id, { ...step }])) }]),
    );
  }

  /**
   * Adds an observer of every route (metrics, tracing, the console). It sees each route from that
   * route's next start on: add observers before `start`.
   */
  observe(observer: RouteObserver): void {
    this.observers.push(observer);
  }

  async start(): Promise<void> {
    await Promise.all(this.transports.all.map((transport) => transport.connect()));
    this.transports.refusePublishes(undefined);
    const started: Lifecycle[] = [];
    try {
      for (const route of this.routes) route.start();
      for (const component of this.lifecycles) {
        await component.start();
        started.push(component);
      }
    } catch (error) {
      await this.shutdown(FAILED_START_DRAIN_MS, started);
      this.transports.refusePublishes(NOT_STARTED);
      throw error;
    }
  }

  startRoute(id: string): void {
    this.route(id).start();
  }

  async stopRoute(id: string, { drainTimeoutMs }: StopOptions = {}): Promise<void> {
    await this.route(id).stop(drainTimeoutMs);
  }

  /**
   * Stops everything. Deliveries still unsettled at the drain deadline go back to their source for
   * redelivery: each route counts them in its `handedBack` metric.
   */
  stop({ drainTimeoutMs = 10_000 }: StopOptions = {}): Promise<void> {
    return this.shutdown(drainTimeoutMs, this.lifecycles);
  }

  private async shutdown(drainTimeoutMs: number, components: readonly Lifecycle[]): Promise<void> {
    for (const component of [...components].reverse()) {
      await component.stop().catch((error: unknown) => this.log.warn('lifecycle component failed to stop', { error }));
    }
    await Promise.all(this.routes.map((route) => route.stop(drainTimeoutMs)));
    const closed = await Promise.allSettled(this.transports.all.map((transport) => transport.close()));
    for (const result of closed) {
      if (result.status === 'rejected') this.log.warn('transport close failed', { error: result.reason });
    }
  }
}

export interface IntegrationOptions {
  readonly routes: readonly RouteSource[];
  /** Adapter and service modules (the memory transport is always loaded). */
  readonly modules?: readonly ContainerModule[];
  /** Your own container, if you have one; the modules are loaded into it. */
  readonly container?: Container;
  readonly scheduler?: SchedulerLike;
  readonly logger?: Logger;
  /** Observers of every route (also bound as `RouteObserver` multi-bindings by modules). */
  readonly observers?: readonly RouteObserver[];
}

/**
 * An integration from routes and DI modules, for users who never touch inversify directly.
 * Throws `RouteDefinitionError` if a route is invalid.
 * @example
 * const app = createIntegration({ routes: [from('memory:in').to('memory:out')] });
 * await app.start();
 */
export function createIntegration({ routes, modules = [], container = new Container(), scheduler, logger, observers = [] }: IntegrationOptions): Integration & { readonly container: Container } {
  container.load(coreModule, ...modules);
  // the given logger is the container's too, so transports resolved from DI log through it
  if (logger !== undefined) container.rebind<Logger>(Logger).toConstantValue(logger);
  if (!container.isBound(MemoryTransport)) container.load(memoryModule());
  const integration = new Integration({
    routes,
    transports: container.get(TransportRegistry),
    scheduler: scheduler ?? container.get<SchedulerLike>(Scheduler),
    log: logger ?? container.get<Logger>(Logger),
    service: (id) => container.get(id),
    lifecycles: container.getAll<Lifecycle>(Lifecycle, { optional: true }),
    observers: [...container.getAll<RouteObserver>(RouteObserver, { optional: true }), ...observers],
  });
  return Object.assign(integration, { container });
}
