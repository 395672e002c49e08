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
import { circuitBreakerStep, type CircuitBreakerOptions } from '../patterns/circuit-breaker.ts';
import { processStep, type ProcessContext } from '../patterns/process.ts';
import { recipientListStep } from '../patterns/recipient-list.ts';
import { routingSlipStep, type RoutingSlipOptions, type SlipExpression } from '../patterns/routing-slip.ts';
import { dynamicRouterStep, type DynamicRoute, type DynamicRouterOptions } from '../patterns/dynamic-router.ts';
import { loadBalanceStep, type LoadBalanceOptions } from '../patterns/load-balance.ts';
import { requestReplyStep } from '../patterns/request-reply.ts';
import { scatterGatherStep, type ScatterGatherOptions, type ScatterRecipients } from '../patterns/scatter-gather.ts';
import { setHeadersStep } from '../patterns/set-headers.ts';
import { splitStep } from '../patterns/split.ts';
import { toStep, type Destination } from '../patterns/to.ts';
import { transformStep } from '../patterns/transform.ts';
import { upcastStep } from '../patterns/upcast.ts';
import { validateStep } from '../patterns/validate.ts';
import { wireTapStep } from '../patterns/wire-tap.ts';
import { claimCheckInStep, claimCheckOutStep, type ClaimCheckInOptions, type ClaimCheckInPartOptions, type ClaimCheckOutOptions, type ClaimCheckOutPartOptions, type Claimed, type ClaimTicket } from '../patterns/claim-check.ts';
import { messageHistoryStep, type MessageHistoryOptions } from '../patterns/message-history.ts';
import { storeMessageStep, type StoreMessageOptions } from '../patterns/message-store.ts';
import { delayStep, type DelayOptions, type DelayValue } from '../patterns/delay.ts';
import { throttleStep, type ThrottleOptions } from '../patterns/throttle.ts';
import { sampleStep, type SampleOptions } from '../patterns/sample.ts';
import { resequenceStep, type ResequenceOptions } from '../patterns/resequence.ts';
import { stageStep, type StageOptions } from '../patterns/stage.ts';
import { encryptStep, type EncryptOptions } from '../patterns/encrypt.ts';
import { decryptStep, type DecryptOptions } from '../patterns/decrypt.ts';
import { signStep, type SignStepOptions } from '../patterns/sign.ts';
import { verifyStep, type VerifyStepOptions } from '../patterns/verify.ts';
import { protectStep, type ProtectOptions } from '../patterns/protect.ts';
import type { ContractCheck, ContractName, ContractType, ContractVersion } from '../src/schema/contract-types.ts';
import type { RouteDefinition, RouteSource, SourceOptions } from '../src/dsl/route-definition.ts';
import { IDEMPOTENT_CONSUMER_KIND, sourceOptionsOf } from '../src/dsl/route-definition.ts';
import { idempotentConsumer } from '../patterns/idempotent-consumer.ts';

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

  /**
   * Circuit breaker around `branch` (closed → open on a failure rate over the last calls → half-open
   * trials after `openMs`): while open, messages go to `fallback`, else fail with `CircuitOpenError`
   * through the route's error handler. What leaves the branch (or fallback) continues after it.
   * @example .circuitBreaker((b) => b.to('amqp:queue/orders'), { fallback: (b) => b.to('memory:parked'), openMs: 10_000 })
   */
  circuitBreaker<O, F = O>(branch: Branch<T, O>, options: StepOptions & CircuitBreakerOptions & { readonly fallback?: Branch<T, F> } = {}): RouteBuilder<O | F> {
    const { fallback, id: _id, contract: _contract, ...breaker } = options;
    return this.add(circuitBreakerStep<T, O | F>(branchSteps(branch), { ...breaker, fallback: fallback === undefined ? undefined : branchSteps(fallback) }), options);
  }

  /** Recipient list: sends to every endpoint named for the message, waits for all confirms. */
  recipientList(recipients: (message: Message<T>) => readonly string[], options?: StepOptions): RouteBuilder<T> {
    return this.add(recipientListStep(recipients), options);
  }

  /**
   * Routing slip: sends to each endpoint the message's slip names, in turn, each confirmed before the
   * next — the slip from a header (default `routingSlip`, comma-separated) or a function. At most
   * `maxHops` endpoints (default 32); a failed send fails the message with `HopFailedError` (its index).
   * @example .routingSlip() // header routingSlip: 'memory:check,memory:pack'
   * @example .routingSlip((m) => m.body.steps, { maxHops: 8 })
   */
  routingSlip(slip?: string | SlipExpression<T>, options?: StepOptions & RoutingSlipOptions): RouteBuilder<T> {
    return this.add(routingSlipStep(slip, options), options);
  }

  /**
   * Dynamic router: `route(message, hop)` names the next endpoint until it returns `undefined`; each is
   * sent to and confirmed in turn. More than `maxHops` (default 32) fail the message with `HopLimitError`.
   * @example .dynamicRouter((m, hop) => ['memory:check', 'memory:ship'][hop])
   */
  dynamicRouter(route: DynamicRoute<T>, options?: StepOptions & DynamicRouterOptions): RouteBuilder<T> {
    return this.add(dynamicRouterStep(route, options), options);
  }

  /**
   * Load balancer: each message to one of `uris` (round-robin, weighted, random, sticky by key, or
   * failover), passed on once confirmed; `maxFailovers` tries the next endpoints on failure.
   * @example .loadBalance(['amqp:queue/primary', 'amqp:queue/backup'], { strategy: 'failover' })
   */
  loadBalance(uris: readonly string[], options?: StepOptions & LoadBalanceOptions<T>): RouteBuilder<T> {
    return this.add(loadBalanceStep(uris, options), options);
  }

  /** Splitter: one message per item; the source settles once every part has. */
  split<P>(items: (message: Message<T>) => Iterable<P>, options?: StepOptions): RouteBuilder<P> {
    return this.add(splitStep(items), options);
  }

  /** Aggregator: folds correlated messages into one, by size, inactivity timeout or predicate. */
  aggregate<A>(aggregation: AggregateOptions<T, A>, options?: StepOptions): RouteBuilder<A> {
    return this.add(aggregateStep(aggregation), options);
  }

  /**
   * Throttler: a token bucket of `rate` per `periodMs` (bursts up to `burst`), global or per `key`;
   * excess messages wait unsettled (bounded by the route's prefetch), or are filtered with `onExcess: 'drop'`.
   * @example from('amqp:queue/orders').throttle({ rate: 100, periodMs: 1_000 }).to('memory:out')
   */
  throttle(throttling: ThrottleOptions<T>, options?: StepOptions): RouteBuilder<T> {
    return this.add(throttleStep(throttling), options);
  }

  /**
   * Sampler: the first message per `intervalMs` (or of every `every` messages), optionally per `key`;
   * the others are filtered (counted `sampled-out`).
   * @example from('memory:ticks').sample({ intervalMs: 1_000 }).to('memory:out')
   */
  sample(sampling: SampleOptions<T>, options?: StepOptions): RouteBuilder<T> {
    return this.add(sampleStep(sampling), options);
  }

  /**
   * Resequencer: back in order of a sequence number (a header or an expression), by batch or as a
   * stream with a bounded wait for gaps; held messages stay unsettled until emitted and settled.
   * @example from('memory:ledger').resequence({ mode: 'stream', sequence: 'seq' }).to('memory:ordered')
   */
  resequence(resequencing: ResequenceOptions<T>, options?: StepOptions): RouteBuilder<T> {
    return this.add(resequenceStep(resequencing), options);
  }

  /**
   * Delayer: holds each message `ms`, or as long as a function of the message says (milliseconds or
   * an absolute `Date`), then passes it on. In memory its source stays unsettled meanwhile; with
   * `{ store }` the store owns it (source acked once stored) and a restart resumes it.
   * @example .delay((m) => Number(m.headers.delayMs ?? 0), { id: 'hold' })
   */
  delay(value: DelayValue<T>, options?: StepOptions & DelayOptions): RouteBuilder<T> {
    return this.add(delayStep<T>(value, options), options);
  }

  /** Wire tap: a copy to `uri`, not waited for; the message continues at once. */
  wireTap(uri: string, options?: StepOptions): RouteBuilder<T> {
    return this.add(wireTapStep<T>(uri), options);
  }

  /**
   * Claim check, check-in: stores the body (or the `part` chosen) in a `ClaimCheckStore` and, once the
   * write completed, passes on its ticket `{ claimCheck: <id> }` (typed `ClaimTicket<T>`), or the body
   * `replace` makes with it. See `claimCheckIn` for ids, retries and expiry.
   * @example .claimCheckIn({ store, ttlMs: 86_400_000 }).to('amqp:queue/ocr')
   */
  claimCheckIn(options?: StepOptions & ClaimCheckInOptions): RouteBuilder<ClaimTicket<T>>;
  claimCheckIn<P, R>(options: StepOptions & ClaimCheckInPartOptions<T, P, R>): RouteBuilder<R>;
  claimCheckIn<P, R>(options?: StepOptions & (ClaimCheckInOptions | ClaimCheckInPartOptions<T, P, R>)): RouteBuilder<ClaimTicket<T> | R> {
    return this.add<ClaimTicket<T> | R>(claimCheckInStep<T, P, R>(options as ClaimCheckInPartOptions<T, P, R>), options);
  }

  /**
   * Claim check, check-out: fetches the claim of the ticket in the body (or the `ticket` picked from
   * it) and passes on the stored body, typed back (`Claimed<T>`, or `O` given explicitly after a
   * transport), or the body `restore` makes with the stored part. The claim is removed once the message
   * is acked downstream (unless `remove: false`); a missing or expired claim fails the message with
   * `ClaimNotFoundError` (permanent). See `claimCheckOut`.
   * @example from('amqp:queue/ocr').claimCheckOut<Scan>({ store }).process(ocr)
   */
  claimCheckOut<O = Claimed<T>>(options?: StepOptions & ClaimCheckOutOptions): RouteBuilder<O>;
  claimCheckOut<P, O>(options: StepOptions & ClaimCheckOutPartOptions<T, P, O>): RouteBuilder<O>;
  claimCheckOut<P, O>(options?: StepOptions & (ClaimCheckOutOptions | ClaimCheckOutPartOptions<T, P, O>)): RouteBuilder<O> {
    return this.add<O>(claimCheckOutStep<T, P, O>(options as ClaimCheckOutPartOptions<T, P, O>), options);
  }

  /**
   * Envelope encryption (`interchange-eip/security`): the whole body, or each of `fields` (JSON
   * pointers), sealed with a fresh AES-256-GCM data key wrapped by the keyring's active key, bound to
   * the message id and field. See `encrypt`.
   * @example .encrypt({ keys, fields: ['/patient/name', '/card'] }).to('amqp:queue/records')
   */
  encrypt(options: StepOptions & EncryptOptions): RouteBuilder<unknown> {
    return this.add(encryptStep<T>(options), options);
  }

  /**
   * Decrypts what `.encrypt()` made (active or retiring key, by the envelope's key id); anything
   * tampered, moved, unknown or malformed fails permanently — dead-lettered with the reason, never
   * processed. `O` is the body type from here on. See `decrypt`.
   * @example from('amqp:queue/records').decrypt<PatientRecord>({ keys, fields: ['/patient/name', '/card'] })
   */
  decrypt<O = unknown>(options: StepOptions & DecryptOptions): RouteBuilder<O> {
    return this.add(decryptStep<O, T>(options), options);
  }

  /**
   * Signer (`interchange-eip/security`): a detached JWS over the body and the `headers` named, by the
   * keyring's active key, in the `signature` header. See `sign`.
   * @example .sign({ keys: signingKeys, headers: ['deviceId'] }).to('amqp:exchange/readings')
   */
  sign(options: StepOptions & SignStepOptions<T>): RouteBuilder<T> {
    return this.add(signStep<T>(options), options);
  }

  /**
   * Verifier: only validly signed, recent, not replayed messages go on; unsigned, tampered, `alg:
   * none`, algorithm-swapped, unknown-key, expired or replayed ones fail permanently — dead-lettered
   * with `x-interchange-signature-rejected`, never processed. `O` is the body type from here on. See `verify`.
   * @example from('amqp:queue/readings').verify({ keys: verifyingKeys, headers: ['deviceId'] }).deadLetterChannel('amqp:queue/rejected')
   */
  verify<O = T>(options: StepOptions & VerifyStepOptions<O>): RouteBuilder<O> {
    return this.add<O>(verifyStep<O>(options), options);
  }

  /**
   * Field-level protection before an endpoint outside the trust zone (`interchange-eip/security`):
   * the message's classified fields (`x-classification` in its contract) encrypted each into an
   * envelope (`keys`) or dropped (`drop: true`); a message without classified fields goes on
   * untouched. `contract` here is the contract of the incoming bodies (default: the `schema` header). See `protect`.
   * @example .validate('customer.registered@1').protect({ keys }).to('amqp:exchange/partner')
   */
  protect(options: Omit<StepOptions, 'contract'> & ProtectOptions): RouteBuilder<unknown> {
    return this.add(protectStep<T>(options), { id: options.id });
  }

  /**
   * Message history: appends `{ route, step, at }` to the `x-interchange-history` header (last
   * `maxHops`, default 20), body untouched. Name the point with the step's id.
   * @example .validate('order@1').history({ id: 'validated' })
   */
  history(options?: StepOptions & MessageHistoryOptions): RouteBuilder<T> {
    return this.add(messageHistoryStep<T>(options), options);
  }

  /**
   * Message store, for debugging: keeps each passing message in a `MessageStore` (a bounded ring by
   * default), queryable by id or route; outside the message's guarantee, like the wire tap.
   * @example .storeMessage({ store: debugStore })
   */
  storeMessage(options?: StepOptions & StoreMessageOptions): RouteBuilder<T> {
    return this.add(storeMessageStep<T>(options), options);
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
   * Stage (SEDA): a bounded priority queue in front of the rest of the route, which runs `concurrency`
   * messages at once; when full: wait, shed the lowest priority (`ShedError`), or reject (`CapacityError`).
   * `targetP99Ms` moves the concurrency to hold the downstream p99.
   * @example .stage({ capacity: 200, concurrency: 16, whenFull: 'shed', targetP99Ms: 250 })
   */
  stage(stage: StageOptions<T>, options?: StepOptions): RouteBuilder<T> {
    return this.add(stageStep(stage), options);
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

  /**
   * Request-reply (Camel's InOut `to`, Spring's outbound gateway): sends each message to `uri` with a
   * reply address of the transport's own, waits up to `timeoutMs` (`TimeoutError`, retryable) and passes
   * the reply on instead. With `reply`, the reply is validated and typed by that contract; else `R`.
   * At most `concurrency` (default 16) requests wait at once. See `requestReply`.
   * @example .request('amqp:queue/prices', { timeoutMs: 2_000, reply: 'backend.reading@1' })
   */
  request<R = unknown, N extends ContractName = never>(uri: string, options: StepOptions & { readonly timeoutMs: number; readonly reply?: N; readonly concurrency?: number }): RouteBuilder<ContractBody<N, R>> {
    return this.add(requestReplyStep<T, ContractBody<N, R>>(uri, options), options);
  }

  /**
   * Scatter-gather: a request to every recipient at once; the replies that came within `timeoutMs` are
   * folded by `aggregate` into the body passed on (header `scatterGatherPartial: true` when some are
   * missing). No reply at all fails with `ScatterGatherError`. See `scatterGather`.
   * @example .scatterGather(['amqp:queue/vendor-a', 'amqp:queue/vendor-b'], { timeoutMs: 1_000, aggregate: ({ replies }) => replies.map((r) => r.message.body) })
   */
  scatterGather<R, A>(recipients: ScatterRecipients<T>, options: StepOptions & ScatterGatherOptions<T, R, A>): RouteBuilder<A> {
    return this.add(scatterGatherStep(recipients, options), options);
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
    return { id, source, sourceOptions: sourceOptionsOf(options), steps: define(withDeliveryPolicy(steps, options, declaredAt)), errorHandler, declaredAt };
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

/**
 * The route's steps under its delivery policy: `effectively-once` starts with the idempotent consumer
 * on `idempotency.store` (id and kind `idempotent-consumer`); without a store the route is left as it
 * is, for the build-time check to name the missing option.
 */
function withDeliveryPolicy(steps: readonly DeclaredStep[], { delivery, idempotency }: SourceOptions, declaredAt: string): readonly DeclaredStep[] {
  if (delivery !== 'effectively-once' || idempotency === undefined) return steps;
  const consumer = idempotentConsumer({ store: idempotency.store, ...(idempotency.key === undefined ? {} : { key: idempotency.key }) });
  return [{ ...stepSpec(IDEMPOTENT_CONSUMER_KIND, consumer), id: IDEMPOTENT_CONSUMER_KIND, declaredAt }, ...steps];
}

function sendsAnywhere(step: StepDefinition): boolean {
  return step.sends || step.branches.some((branch) => branch.some(sendsAnywhere));
}

/** Typed service lookup helper for steps, re-exported for users. */
export type { ServiceIdentifier };
