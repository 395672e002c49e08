import { parseEndpoint, RouteDefinitionError, type ErrorHandler, type Message, type StepDefinition } from '../core/index.ts';
import { missingTransportHint } from '../runtime/transport-hints.ts';
import type { IdempotencyStore } from '../stores/idempotency-store.ts';

/**
 * What a route promises about each source message across failures and crashes (docs/delivery.md):
 * - `at-least-once` (default): the source delivery is acked only once every output is confirmed, or
 *   it was filtered or dead-lettered; a crash redelivers what was in flight (duplicates possible, no loss).
 * - `at-most-once`: the source delivery is acked as the route takes it, before any step runs; a
 *   failure is dead-lettered or discarded as the error handler says, a rejection drops the message
 *   (logged and counted as rejected), and a crash or a stop past its deadline loses what was in
 *   flight — never redelivered, never duplicated.
 * - `effectively-once`: at-least-once with an idempotent consumer (on `idempotency.store`) as the
 *   route's first step: a message whose execution completed is never processed again (its
 *   redeliveries and upstream duplicates are dropped before the first step). An execution a crash
 *   cut short runs again once its claim's lease expires: its effects are once only where they are
 *   idempotent or committed with the record (`PostgresInbox.handle`).
 */
export type DeliveryPolicy = 'at-most-once' | 'at-least-once' | 'effectively-once';

/** The idempotent consumer of an `effectively-once` route. */
export interface IdempotencyOptions {
  /** Where processed keys are kept: a durable, shared one (`RedisIdempotencyStore`, `PostgresInbox`) for a promise across processes. */
  readonly store: IdempotencyStore;
  /** The message's identity (default its id, kept end to end by the outbox and the AMQP and MQTT adapters). */
  readonly key?: (message: Message) => string;
}

/**
 * Which receipt destinations a route honours. `receiptTo` comes from the sender — untrusted — so a
 * route sends receipts only where it opted in: a predicate over the URI, or URI prefixes
 * (`['amqp:queue/receipts.']`). A message asking for a receipt elsewhere gets none.
 */
export interface ReceiptOptions {
  /**
   * The destinations a sender may name in `receiptTo`: a predicate, or URI prefixes (end them at a name
   * boundary: `'amqp:queue/receipts.'`). Checked against the destination as `scheme:path`: a `receiptTo`
   * with endpoint options (`?…`) or a `{placeholder}` is refused whatever `allow` says — a sender must
   * not choose how an endpoint is declared, bounded or trimmed.
   */
  readonly allow: ((uri: string) => boolean) | readonly string[];
  /** How long a receipt may take to be confirmed before it is given up (logged) and the message settles anyway (default 10,000 ms). */
  readonly timeoutMs?: number;
}

export interface SourceOptions {
  /**
   * Deliveries unsettled at once for this route: the route's admission control. Default: the source
   * transport's `defaultPrefetch` (MQTT 1,000), else 100.
   */
  readonly prefetch?: number;
  /** The route's delivery policy (default `at-least-once`): see `DeliveryPolicy`. */
  readonly delivery?: DeliveryPolicy;
  /** Required by (and only allowed with) `delivery: 'effectively-once'`: the store of its idempotent consumer. */
  readonly idempotency?: IdempotencyOptions;
  /** Opt-in to delivery receipts (a message's `receiptTo` header): see `ReceiptOptions` and docs/delivery.md. */
  readonly receipts?: ReceiptOptions;
}

/** The kind (and id) of the idempotent consumer an `effectively-once` route starts with. */
export const IDEMPOTENT_CONSUMER_KIND = 'idempotent-consumer';

const POLICIES: ReadonlySet<string> = new Set<DeliveryPolicy>(['at-most-once', 'at-least-once', 'effectively-once']);

/**
 * The source options of a route's options (`from(uri, options)` holds the route's id and contract too).
 * @example sourceOptionsOf({ id: 'orders', prefetch: 10 }) // { prefetch: 10 }
 */
export function sourceOptionsOf({ prefetch, delivery, idempotency, receipts }: SourceOptions): SourceOptions {
  return { prefetch, ...(delivery === undefined ? {} : { delivery }), ...(idempotency === undefined ? {} : { idempotency }), ...(receipts === undefined ? {} : { receipts }) };
}

/** A route as data: what the DSL builds and the runtime compiles. */
export interface RouteDefinition {
  readonly id: string;
  readonly source: string;
  readonly sourceOptions: SourceOptions;
  readonly steps: readonly StepDefinition[];
  readonly errorHandler: ErrorHandler;
  readonly declaredAt: string;
}

/** Anything that yields a route definition: a builder or a definition itself. */
export interface RouteSource {
  definition(): RouteDefinition;
}

/**
 * Build-time checks, all reported as `RouteDefinitionError` naming route and step:
 * empty or blank route and step ids (dead letters and errors could not name them), duplicate route
 * ids, duplicate step ids in a route, endpoints whose scheme no transport serves (source, static
 * destinations, dead-letter channel; saying what to set for a known one), and routes that never send anywhere.
 */
export function validateRoutes(routes: readonly RouteDefinition[], schemes: ReadonlySet<string>): void {
  const seen = new Map<string, RouteDefinition>();
  for (const route of routes) {
    if (isBlank(route.id)) {
      throw new RouteDefinitionError(`route id is empty: name the route with { id: 'orders' }, or leave id out to use its source URI ('${route.source}')`, undefined, undefined, route.declaredAt);
    }
    const twin = seen.get(route.id);
    if (twin !== undefined) {
      throw new RouteDefinitionError(`duplicate route id (also declared at ${twin.declaredAt}); give one of them { id }`, route.id, undefined, route.declaredAt);
    }
    seen.set(route.id, route);
    const checkUri = (uri: string, stepId?: string, declared = route.declaredAt): void => {
      let scheme: string;
      try {
        scheme = parseEndpoint(uri).scheme;
      } catch (error) {
        throw new RouteDefinitionError((error as Error).message, route.id, stepId, declared);
      }
      if (!schemes.has(scheme)) {
        throw new RouteDefinitionError(`unknown scheme '${scheme}' in '${uri}' (known: ${[...schemes].sort().join(', ') || 'none'})${missingTransportHint(scheme)}`, route.id, stepId, declared);
      }
    };
    checkUri(route.source);
    checkSourceOptions(route);
    if (route.errorHandler.deadLetterUri !== undefined) checkUri(route.errorHandler.deadLetterUri);
    const stepIds = new Set<string>();
    let sends = false;
    const walk = (steps: readonly StepDefinition[]): void => {
      for (const step of steps) {
        if (isBlank(step.id)) throw new RouteDefinitionError(`step id is empty: name the ${step.kind} step, or leave id out for a generated one`, route.id, undefined, step.declaredAt);
        if (stepIds.has(step.id)) throw new RouteDefinitionError('duplicate step id', route.id, step.id, step.declaredAt);
        stepIds.add(step.id);
        for (const uri of step.sendsTo) checkUri(uri, step.id, step.declaredAt);
        sends ||= step.sends;
        for (const branch of step.branches) walk(branch);
      }
    };
    walk(route.steps);
    if (!sends) throw new RouteDefinitionError("route has no .to(): its messages would be acknowledged and go nowhere", route.id, undefined, route.declaredAt);
  }
}

/** The delivery policy and receipt options of a route: each misuse is a `RouteDefinitionError`. */
function checkSourceOptions(route: RouteDefinition): void {
  const { delivery, idempotency, receipts } = route.sourceOptions;
  const fail = (text: string): never => {
    throw new RouteDefinitionError(text, route.id, undefined, route.declaredAt);
  };
  if (delivery !== undefined && !POLICIES.has(delivery)) fail(`unknown delivery policy '${String(delivery)}' (known: ${[...POLICIES].join(', ')})`);
  if (delivery === 'effectively-once') {
    if (typeof idempotency?.store?.claim !== 'function') fail("delivery 'effectively-once' needs an idempotency store: from(uri, { delivery: 'effectively-once', idempotency: { store } })");
    if (route.steps[0]?.kind !== IDEMPOTENT_CONSUMER_KIND) fail(`delivery 'effectively-once' needs an '${IDEMPOTENT_CONSUMER_KIND}' step first: from() adds it; a definition built by hand must start with one`);
  } else if (idempotency !== undefined) {
    fail("idempotency applies to delivery 'effectively-once' only: set it, or add an idempotentConsumer step yourself");
  }
  if (receipts !== undefined && typeof receipts.allow !== 'function' && !(Array.isArray(receipts.allow) && receipts.allow.every((prefix) => typeof prefix === 'string' && prefix !== ''))) {
    fail('receipts.allow must be a predicate over the receipt URI or a list of non-empty URI prefixes');
  }
}

/** An id that names nothing: not a string (a definition built by hand), empty or only whitespace. */
function isBlank(id: unknown): boolean {
  return typeof id !== 'string' || id.trim() === '';
}
