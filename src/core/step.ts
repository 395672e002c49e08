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
  /**
   * Request-reply through the endpoint's transport (`Transport.request`): resolves with the reply,
   * rejects with `TimeoutError` after `timeoutMs`, `EndpointError` when the transport has no request-reply.
   */
  request(uri: string, message: Message, options: { readonly timeoutMs: number; readonly signal?: AbortSignal }): Promise<Message>;
  /** Adds to one of this step's own counters (shed messages, circuit openings…): `step_counter_total{route,step,kind,name}`. */
  count(name: string, by?: number): void;
  /** Sets one of this step's own current values (circuit state, queue depth, concurrency…): `step_gauge{route,step,kind,name}`. */
  gauge(name: string, value: number): void;
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

/**
 * Builds a step from the route's context and its compiled branches, in the order of
 * `StepSpec.branches`. A plain `StepFactory` is one (it ignores the branches).
 */
export type BranchingStepFactory<I = unknown, O = I> = (context: StepContext, branches: readonly AnyStep[]) => Step<I, O>;

/**
 * A pattern's DSL entry: what one use of the pattern is — its kind, the endpoints it sends to, its
 * branches — beside how to build it. Each pattern file exports a function returning one
 * (`filterStep`, `toStep`, …); the DSL only adds the step's id and place, so a route definition is
 * this data, which a graph, a linter or a YAML loader read as the runtime does.
 */
export interface StepSpec<I = unknown, O = I> {
  readonly kind: string;
  /** Static endpoint URIs the step sends to (not templates), validated when the integration is built. */
  readonly sendsTo: readonly string[];
  /** Whether the step itself delivers messages out of the route (`to`, recipient list); branches that send count on their own. */
  readonly sends: boolean;
  /** Nested step lists (choice, multicast branches), compiled with the route and handed to `factory` in this order. */
  readonly branches: readonly (readonly DeclaredStep[])[];
  readonly factory: BranchingStepFactory<I, O>;
  /** The contract of the bodies the step passes on, where it knows it (`validate`, `.to(uri, { contract })`): the graph's edge label. */
  readonly contract?: string | undefined;
  /** Every endpoint the step sends to as declared, templates included (`sendsTo` holds the static ones): the graph draws them. */
  readonly destinations?: readonly string[] | undefined;
}

/** A step as the DSL declared it, before the route numbers it: its spec, its explicit id if any, where. */
export interface DeclaredStep extends StepSpec {
  readonly id: string | undefined;
  readonly declaredAt: string;
}

/**
 * A `StepSpec`, with no destinations and no branches unless given.
 * @example stepSpec('filter', filter(predicate))
 * @example stepSpec('to', to(uri), { sends: true, sendsTo: [uri] })
 */
export function stepSpec<I, O>(
  kind: string,
  factory: BranchingStepFactory<I, O>,
  {
    sends = false,
    sendsTo = [],
    branches = [],
    contract,
    destinations,
  }: { readonly sends?: boolean; readonly sendsTo?: readonly string[]; readonly branches?: readonly (readonly DeclaredStep[])[]; readonly contract?: string | undefined; readonly destinations?: readonly string[] | undefined } = {},
): StepSpec<I, O> {
  return { kind, sendsTo, sends, branches, factory, contract, destinations };
}

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
  /** The contract of the bodies the step passes on, where declared (see `StepSpec.contract`). */
  readonly contract?: string | undefined;
  /** Every endpoint the step sends to as declared, templates included (see `StepSpec.destinations`). */
  readonly destinations?: readonly string[] | undefined;
  build(context: StepContext): AnyStep;
}
