import type { ServiceIdentifier } from 'inversify';
import type { OperatorFunction, SchedulerLike } from 'rxjs';
import type { Delivery } from './delivery.ts';
import type { Logger } from './logger.ts';
import type { Message } from './message.ts';

/** A route step: an RxJS operator over deliveries. Patterns are factories returning one. */
export type Step<I = unknown, O = I> = OperatorFunction<Delivery<I>, Delivery<O>>;

/** A step with its types erased, as route definitions hold them. */
export type AnyStep = Step<unknown, unknown>;

/**
 * What the runtime gives a step when the route is compiled: where it is, time, output, services
 * and the route's failure handling.
 */
export interface StepContext {
  readonly routeId: string;
  readonly stepId: string;
  /** `file:line` of the DSL call that declared the step. */
  readonly declaredAt: string;
  /** Every delay and timer of the step runs on it, so tests can use virtual time. */
  readonly scheduler: SchedulerLike;
  readonly log: Logger;
  /** Publishes to an endpoint URI; resolves once the destination confirmed every message. */
  publish(uri: string, messages: readonly Message[]): Promise<void>;
  /** A service bound in the integration's DI container. */
  service<T>(id: ServiceIdentifier<T>): T;
  /** The delivery is intentionally dropped: acked and counted as filtered. */
  filtered(delivery: Delivery): void;
  /**
   * The step failed on this delivery. The route's error handler settles it (dead letter, discard,
   * reject) and returns `undefined`, or returns a delay after which the step must run again.
   * Never throws.
   */
  failed(delivery: Delivery, error: unknown, attempt: number): number | undefined;
  /** Compiles nested steps (choice branches, multicast branches) in this route. */
  compile(steps: readonly StepDefinition[]): AnyStep;
}

/** Builds a step once the route is compiled: what every pattern factory returns. */
export type StepFactory<I = unknown, O = I> = (context: StepContext) => Step<I, O>;

/** A step as a route definition holds it: data about the step plus how to build it. */
export interface StepDefinition {
  /** Unique within the route; explicit (`{ id }`) or `<kind>-<n>`. */
  readonly id: string;
  readonly kind: string;
  readonly declaredAt: string;
  /** Static endpoint URIs the step sends to, validated when the integration is built. */
  readonly sendsTo: readonly string[];
  /** Whether the step delivers messages out of the route (`to`, recipient list, …). */
  readonly sends: boolean;
  /** Nested step lists (branches), validated and compiled with the route. */
  readonly branches: readonly (readonly StepDefinition[])[];
  build(context: StepContext): AnyStep;
}
