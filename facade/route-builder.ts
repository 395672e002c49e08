import type { ServiceIdentifier } from 'inversify';
import {
  declaredAt as callerLocation,
  RouteDefinitionError,
  rejectToSource,
  stepSpec,
  type DeclaredStep,
  type ErrorHandler,
  type FailurePolicy,
  type Headers,
  type Message,
  type StepDefinition,
  type StepFactory,
  type StepFailure,
  type StepSpec,
} from '../src/core/index.ts';
// Each pattern brings its own DSL entry (`…Step`: kind, destinations, branches, factory); a method here is sugar over it.
import { aggregateStep, type AggregateOptions } from '../patterns/aggregate.ts';
import { choiceStep } from '../patterns/choice.ts';
import { deadLetterChannel, type DeadLetterChannelOptions } from '../patterns/dead-letter-channel.ts';
import { enrichStep, type EnrichContext, type EnrichOptions } from '../patterns/enrich.ts';
import { filterStep } from '../patterns/filter.ts';
import { multicastStep } from '../patterns/multicast.ts';
import { processStep, type ProcessContext } from '../patterns/process.ts';
import { recipientListStep } from '../patterns/recipient-list.ts';
import { setHeadersStep } from '../patterns/set-headers.ts';
import { splitStep } from '../patterns/split.ts';
import { toStep, type Destination } from '../patterns/to.ts';
import { transformStep } from '../patterns/transform.ts';
import { upcastStep } from '../patterns/upcast.ts';
import { validateStep } from '../patterns/validate.ts';
import { wireTapStep } from '../patterns/wire-tap.ts';
import type { ContractCheck, ContractName, ContractType, ContractVersion } from '../src/schema/contract-types.ts';
import type { RouteDefinition, RouteSource, SourceOptions } from '../src/dsl/route-definition.ts';

export interface StepOptions {
  /** A stable id for the step (default `<kind>-<n>`), used in metrics, errors and dead-letter headers. */
  readonly id?: string;
  /**
   * The contract of the bodies this step passes on (`subject@version`), for the console's graph, which
   * labels the edge after the step with it. Declarative only: `.validate()` and `.to(uri, { contract })` check.
   */
  readonly contract?: string;
}

export interface FromOptions extends SourceOptions {
  /** A stable id for the route (default: the source URI). */
  readonly id?: string;
}

/** `from(uri, { contract })`: every inbound message is validated first (a `validate` step). */
export interface FromContractOptions<N extends ContractName> extends FromOptions {
  /** The inbound contract, `subject@version`; the route's body type is its generated type. */
  readonly contract?: N;
}

/** `.to(uri, { contract })`: every outbound message is validated before it is sent. */
export interface ToOptions<N extends ContractName> extends StepOptions {
  /** The outbound contract; the body type must match it (compile time) and the body must satisfy it (run time). */
  readonly contract?: N;
}

/** The body type after a step that may name a contract: the contract's type, else `Otherwise`. */
export type ContractBody<N extends ContractName, Otherwise> = [N] extends [never] ? Otherwise : ContractType<N>;

/** A branch of a choice or multicast: a function from a fresh builder to the built branch. */
export type Branch<T, O> = (branch: RouteBuilder<T>) => RouteBuilder<O>;

interface RouteState {
  readonly source: string | undefined;
  readonly options: FromOptions;
  readonly steps: readonly DeclaredStep[];
  readonly errorHandler: ErrorHandler;
  readonly declaredAt: string;
}

/**
 * The route DSL. Immutable: every call returns a new builder whose type parameter is the body type
 * at that point of the route, so each step's functions are checked against what really arrives.
 * Build-time checks run when the integration is created (`RouteDefinitionError` naming route and step).
 */
export class RouteBuilder<T> implements RouteSource {
  /** @internal use `from()` */
  constructor(private readonly state: RouteState) {}

  /** Message filter: drops (acks, counts as filtered) messages for which `predicate` is false. */
  filter(predicate: (message: Message<T>) => boolean, options?: StepOptions): RouteBuilder<T> {
    return this.add(filterStep(predicate), options);
  }

  /** Message translator: a new body from the message. */
  transform<O>(translate: (message: Message<T>) => O, options?: StepOptions): RouteBuilder<O> {
    return this.add(transformStep(translate), options);
  }

  /** Adds or replaces headers computed from the message. */
  setHeaders(compute: (message: Message<T>) => Headers, options?: StepOptions): RouteBuilder<T> {
    return this.add(setHeadersStep(compute), options);
  }

  /**
   * Content-based router: the first `when` whose predicate holds takes the message, else `otherwise`;
   * unmatched messages without `otherwise` continue unchanged. Branch outputs continue after the choice.
   * @example .choice((c) => c.when((m) => m.body.hot, (b) => b.to('memory:alerts')).otherwise((b) => b.to('memory:readings')))
   */
  choice<O, Open extends boolean>(build: (choice: ChoiceBuilder<T, never, true>) => ChoiceBuilder<T, O, Open>, options?: StepOptions): RouteBuilder<Open extends true ? O | T : O> {
    return this.add(build(new ChoiceBuilder<T, never, true>([], undefined)).spec(), options);
  }

  /** Multicast: every message goes through every branch; the source settles once all copies have. */
  multicast<O>(branches: readonly Branch<T, O>[], options?: StepOptions): RouteBuilder<O> {
    return this.add(multicastStep<T, O>(branches.map((branch) => branchSteps(branch))), options);
  }

  /** Recipient list: sends to every endpoint named for the message, waits for all confirms. */
  recipientList(recipients: (message: Message<T>) => readonly string[], options?: StepOptions): RouteBuilder<T> {
    return this.add(recipientListStep(recipients), options);
  }

  /** Splitter: one message per item; the source settles once every part has. */
  split<P>(items: (message: Message<T>) => Iterable<P>, options?: StepOptions): RouteBuilder<P> {
    return this.add(splitStep(items), options);
  }

  /** Aggregator: folds correlated messages into one, by size, inactivity timeout or predicate. */
  aggregate<A>(aggregation: AggregateOptions<T, A>, options?: StepOptions): RouteBuilder<A> {
    return this.add(aggregateStep(aggregation), options);
  }

  /** Wire tap: a copy to `uri`, not waited for; the message continues at once. */
  wireTap(uri: string, options?: StepOptions): RouteBuilder<T> {
    return this.add(wireTapStep<T>(uri), options);
  }

  /** Content enricher: asynchronous lookup (bounded concurrency) merged into the body. */
  enrich<E, O>(fetch: (message: Message<T>, context: EnrichContext) => Promise<E>, merge: (message: Message<T>, extra: E) => O, options?: StepOptions & EnrichOptions): RouteBuilder<O> {
    return this.add(enrichStep(fetch, merge, options), options);
  }

  /** Service activator: a side effect per message, passed on when it resolves. */
  process(handle: (message: Message<T>, context: ProcessContext) => Promise<void> | void, options?: StepOptions & { concurrency?: number }): RouteBuilder<T> {
    return this.add(processStep(handle, options), options);
  }

  /**
   * Sends to an endpoint and continues once it confirmed. `{name}` placeholders come from headers or body.
   * With `{ contract }`, each body is validated first and an invalid one never reaches the transport:
   * it fails with `SchemaValidationError` (never retried); valid ones go out with the `schema` header.
   * The body type must match the contract's generated type, or the call does not compile and the
   * diagnostic on the options names the field (`ContractCheck`: "`temperatureF` is missing for backend.reading@1").
   * @example .to('amqp:exchange/readings', { contract: 'backend.reading@1' })
   */
  to<N extends ContractName = never>(destination: Destination<T>, options?: ToOptions<N> & ContractCheck<T, N>): RouteBuilder<T> {
    return this.add(toStep(destination, options), options);
  }

  /**
   * Validator: checks each body against a contract of the `SchemaRegistry` (`schemaModule`); from
   * here on the body has the contract's generated type. Invalid messages fail with
   * `SchemaValidationError` — never retried, dead-lettered with `x-interchange-validation-errors` by
   * a dead-letter channel. Without a contract, each message is checked against its `schema` header.
   * @example from('memory:telemetry').validate('device.telemetry@1').filter((m) => m.body.temperature > -50)
   */
  validate<N extends ContractName = never>(contract?: N, options?: StepOptions): RouteBuilder<ContractBody<N, unknown>> {
    return this.add(validateStep<ContractBody<N, unknown>>(contract), options);
  }

  /**
   * Message translator between versions of a subject, through the registry's upcasters (defaults of
   * new fields filled where none is registered); the body downstream is the `to` version's type.
   * @example from('memory:telemetry', { contract: 'device.telemetry@1' }).upcast('device.telemetry', 1, 2)
   */
  upcast<S extends string, F extends ContractVersion<S>, V extends ContractVersion<S>>(subject: S, from: F, to: V, options?: StepOptions): RouteBuilder<ContractType<`${S}@${V}` & ContractName>> {
    return this.add(upcastStep<ContractType<`${S}@${V}` & ContractName>>(subject, from, to), options);
  }

  /** Any step factory, for patterns outside the DSL's own methods. */
  step<O>(kind: string, factory: StepFactory<T, O>, options?: StepOptions & { sends?: boolean }): RouteBuilder<O> {
    return this.add(stepSpec(kind, factory, { sends: options?.sends ?? false }), options);
  }

  /**
   * The route's error handler: `decide` returns a typed policy for each failure; `maxAttempts`
   * bounds retries whatever `decide` says (default 3).
   * `deadLetterLabel` names the dead letters in the route's metrics and live line (e.g. `invalid`);
   * `prepareDeadLetter` chooses what is dead-lettered, e.g. the original message (see `ErrorHandler`).
   * @example .onError((f) => f.error.code === 'NOT_CONNECTED' ? retryAfter(1000) : deadLetter(), { deadLetterUri: 'memory:dlq' })
   */
  onError(
    decide: (failure: StepFailure) => FailurePolicy,
    {
      maxAttempts = 3,
      deadLetterUri,
      deadLetterLabel,
      prepareDeadLetter,
    }: { maxAttempts?: number; deadLetterUri?: string; deadLetterLabel?: string; prepareDeadLetter?: ErrorHandler['prepareDeadLetter'] } = {},
  ): RouteBuilder<T> {
    return this.routeLevel('onError', { errorHandler: { decide, maxAttempts, deadLetterUri, deadLetterLabel, ...(prepareDeadLetter === undefined ? {} : { prepareDeadLetter }) } });
  }

  /** Dead letter channel, with optional in-process retry first. */
  deadLetterChannel(uri: string, options?: DeadLetterChannelOptions): RouteBuilder<T> {
    return this.routeLevel('deadLetterChannel', { errorHandler: deadLetterChannel(uri, options) });
  }

  definition(): RouteDefinition {
    const { source, options, steps, errorHandler, declaredAt } = this.state;
    if (source === undefined) throw new RouteDefinitionError('a branch is not a route: start routes with from()', undefined, undefined, declaredAt);
    const id = options.id ?? source;
    const counters = new Map<string, number>();
    const define = (declared: readonly DeclaredStep[]): StepDefinition[] =>
      declared.map((step) => {
        const n = (counters.get(step.kind) ?? 0) + 1;
        counters.set(step.kind, n);
        const branches = step.branches.map(define);
        const { factory } = step;
        return {
          id: step.id ?? `${step.kind}-${n}`,
          kind: step.kind,
          declaredAt: step.declaredAt,
          sendsTo: step.sendsTo,
          sends: step.sends || branches.some((branch) => branch.some(sendsAnywhere)),
          branches,
          contract: step.contract,
          destinations: step.destinations ?? step.sendsTo,
          build: (context) => factory(context, branches.map((branch) => context.compile(branch))),
        };
      });
    return { id, source, sourceOptions: { prefetch: options.prefetch }, steps: define(steps), errorHandler, declaredAt };
  }

  /** @internal the declared steps of a branch */
  get declaredSteps(): readonly DeclaredStep[] {
    return this.state.steps;
  }

  /** Appends a pattern's step (its spec, from the pattern's file) with its id and where it was declared. */
  private add<O>(spec: StepSpec<T, O>, options: StepOptions | undefined): RouteBuilder<O> {
    // the builder's type parameter checked the step's input; the route holds steps with types erased
    const step: DeclaredStep = { ...(spec as unknown as StepSpec), id: options?.id, declaredAt: callerLocation(), ...(options?.contract === undefined ? {} : { contract: options.contract }) };
    return new RouteBuilder<O>({ ...this.state, steps: [...this.state.steps, step] });
  }

  private routeLevel(method: string, change: Partial<RouteState>): RouteBuilder<T> {
    if (this.state.source === undefined) throw new RouteDefinitionError(`.${method}() applies to a whole route, not to a branch`, undefined, undefined, callerLocation());
    return new RouteBuilder<T>({ ...this.state, ...change });
  }
}

/**
 * Builds the `when`/`otherwise` branches of a content-based router. `O` collects the branches'
 * output types; `Open` is true while unmatched messages still pass through (no `otherwise` yet).
 */
export class ChoiceBuilder<T, O, Open extends boolean> {
  /** @internal */
  constructor(
    readonly whens: readonly { predicate: (message: Message<T>) => boolean; branch: Branch<T, unknown> }[],
    readonly otherwiseBranch: Branch<T, unknown> | undefined,
  ) {}

  when<B>(predicate: (message: Message<T>) => boolean, branch: Branch<T, B>): ChoiceBuilder<T, O | B, Open> {
    return new ChoiceBuilder<T, O | B, Open>([...this.whens, { predicate, branch: branch as Branch<T, unknown> }], this.otherwiseBranch);
  }

  otherwise<B>(branch: Branch<T, B>): ChoiceBuilder<T, O | B, false> {
    return new ChoiceBuilder<T, O | B, false>(this.whens, branch as Branch<T, unknown>);
  }

  /** @internal the choice step these branches make */
  spec(): StepSpec<T, Open extends true ? O | T : O> {
    const otherwise = this.otherwiseBranch === undefined ? undefined : branchSteps(this.otherwiseBranch);
    return choiceStep(
      this.whens.map(({ predicate, branch }) => ({ when: predicate, steps: branchSteps(branch) })),
      otherwise,
    );
  }
}

/**
 * Starts a route at an endpoint.
 * @example from('memory:orders').filter((m) => m.body.total > 0).to('memory:billing')
 */
export function from<T = unknown, N extends ContractName = never>(uri: string, options: FromContractOptions<N> = {}): RouteBuilder<ContractBody<N, T>> {
  const route = new RouteBuilder<unknown>({ source: uri, options, steps: [], errorHandler: rejectToSource, declaredAt: callerLocation() });
  return (options.contract === undefined ? route : route.validate(options.contract)) as RouteBuilder<ContractBody<N, T>>;
}

function branchSteps<T, O>(branch: Branch<T, O>): readonly DeclaredStep[] {
  return branch(new RouteBuilder<T>({ source: undefined, options: {}, steps: [], errorHandler: rejectToSource, declaredAt: callerLocation() })).declaredSteps;
}

function sendsAnywhere(step: StepDefinition): boolean {
  return step.sends || step.branches.some((branch) => branch.some(sendsAnywhere));
}

/** Typed service lookup helper for steps, re-exported for users. */
export type { ServiceIdentifier };
