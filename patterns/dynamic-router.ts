import { InterchangeError, isPermanentFailure, PartialPublishError, RouteDefinitionError, stepSpec, toError, type Delivery, type Message, type Step, type StepContext, type StepFactory, type StepSpec } from '../src/core/index.ts';
import { stepLifecycle } from '../src/core/step-lifecycle.ts';

/** The default bound on the endpoints one message is sent to by a dynamic router or routing slip. */
export const DEFAULT_MAX_HOPS = 32;

/**
 * A dynamic router or routing slip named more endpoints for one message than its `maxHops`: a loop
 * in the router, or a slip nobody meant. Permanent (the same message routes the same way again):
 * never retried, dead-lettered by a dead-letter channel.
 */
export class HopLimitError extends InterchangeError {
  override readonly name = 'HopLimitError';
  constructor(
    /** `dynamicRouter` or `routingSlip`. */
    readonly pattern: string,
    readonly maxHops: number,
    /** The endpoints the message was routed to (dynamic router) or named (routing slip) when it failed. */
    readonly hops: number,
    messageId: string,
  ) {
    super('HOP_LIMIT', `${pattern}: message ${messageId} was routed to more than maxHops (${maxHops}) endpoints (${hops} hops) — a routing loop?`, { permanent: true });
  }
}

/**
 * A send of a dynamic router or routing slip failed at one hop: which endpoint, at which position
 * (0-based), and why (`cause`). Its `code` and `permanent` are the cause's, so an error handler
 * deciding on `code` (`NOT_CONNECTED` → retry) sees through it.
 */
export class HopFailedError extends InterchangeError {
  override readonly name = 'HopFailedError';
  constructor(
    readonly pattern: string,
    readonly uri: string,
    /** The endpoint's position in the message's route: 0 for the first. */
    readonly hop: number,
    cause: unknown,
  ) {
    const inner = toError(cause);
    super(inner instanceof InterchangeError ? inner.code : 'HOP_FAILED', `${pattern}: send to '${uri}' (hop ${hop}) failed: ${inner.message}`, { cause: inner, permanent: isPermanentFailure(inner) });
  }
}

/** What a hop router needs to know of one message: the endpoint of each hop, `undefined` once done. */
export type HopPlan = (hop: number) => string | undefined;

/** How `hopRouter` sends: which pattern it is (errors, counts), its bound, what each copy carries. */
export interface HopRouterOptions<T> {
  readonly pattern: string;
  readonly maxHops: number;
  /** The message to send at `hop` (default: the message as it is). */
  readonly stamp?: (message: Message<T>, hop: number) => Message;
}

/**
 * The engine of the dynamic router and the routing slip (Camel implements the one with the other):
 * for each message, sends it to `plan(message)(0)`, waits for the confirm, then to `plan(…)(1)`, …
 * until the plan returns `undefined`; then passes the message on, unchanged. Messages go through
 * their hops concurrently, each one's hops in sequence.
 *
 * Failures: a throwing plan or a failed send fails the message (a send as `HopFailedError` naming the
 * hop); a retry the error handler asks for resumes at the hop that failed — the ones before it were
 * confirmed. A plan that goes past `maxHops` fails it with `HopLimitError` (permanent).
 * Stop: when the source completes, messages in flight finish their hops; once the step is
 * unsubscribed no further hop is sent and the message stays unsettled, for the source to redeliver.
 * Counts `hops` (confirmed sends).
 * @internal shared by `dynamicRouter` and `routingSlip`
 * @example hopRouter<T>(context, (message) => (hop) => slipOf(message)[hop], { pattern: 'routingSlip', maxHops: 32 })
 */
export function hopRouter<T>(context: StepContext, plan: (message: Message<T>) => HopPlan, { pattern, maxHops, stamp }: HopRouterOptions<T>): Step<T, T> {
  return stepLifecycle<T, T>(context, (step) => {
    // where a failed message's retry starts: its hops before that one were confirmed
    const resumeAt = new WeakMap<Delivery<T>, number>();
    const route = async (delivery: Delivery<T>, attempt: number): Promise<void> => {
      let hop = attempt > 1 ? (resumeAt.get(delivery) ?? 0) : 0;
      try {
        const next = plan(delivery.message);
        for (let uri = next(hop); uri !== undefined; uri = next(hop)) {
          if (step.closed) return; // unsubscribed: no further hop; the source redelivers
          if (hop >= maxHops) throw new HopLimitError(pattern, maxHops, hop, delivery.message.id);
          const message = stamp === undefined ? delivery.message : stamp(delivery.message, hop);
          try {
            await context.publish(uri, [message]);
          } catch (error) {
            // a one-message publish: a PartialPublishError stands for that message's own error
            throw new HopFailedError(pattern, uri, hop, error instanceof PartialPublishError && error.failures.size === 1 ? error.failures.values().next().value : error);
          }
          context.count('hops');
          hop += 1;
        }
      } catch (error) {
        resumeAt.set(delivery, hop);
        throw error;
      }
      resumeAt.delete(delivery);
      step.emit(delivery);
    };
    const run = (delivery: Delivery<T>, attempt: number): void => {
      step.begin();
      route(delivery, attempt).then(
        () => step.end(),
        (error: unknown) => {
          step.fail(delivery, error, attempt, run);
          step.end();
        },
      );
    };
    return { next: (delivery) => run(delivery, 1) };
  });
}

/**
 * Checks a `maxHops` option when the route is declared: a positive integer, else `RouteDefinitionError`.
 * @internal shared by `dynamicRouter` and `routingSlip`
 * @example checkMaxHops('routingSlip', maxHops)
 */
export function checkMaxHops(pattern: string, maxHops: number): void {
  if (!Number.isSafeInteger(maxHops) || maxHops < 1) throw new RouteDefinitionError(`${pattern}: maxHops must be a positive integer, got ${String(maxHops)}`);
}

/** Decides the next endpoint of a message: `hop` is 0 for the first; `undefined` ends the routing. */
export type DynamicRoute<T> = (message: Message<T>, hop: number) => string | undefined;

export interface DynamicRouterOptions {
  /** At most this many endpoints per message (default 32); one more fails it with `HopLimitError`. */
  readonly maxHops?: number;
}

/**
 * Dynamic router (Camel's `dynamicRouter`): calls `route(message, hop)` with hop 0, 1, 2, … and sends
 * the message to each endpoint it returns, waiting for each confirm before asking for the next, until
 * it returns `undefined`; then the message goes on unchanged (so the step may be the route's last
 * sender, or be followed by more steps).
 *
 * At-least-once: the source is acked only once every hop was confirmed (and the rest of the route
 * has settled the message). A failed send fails the message with `HopFailedError` (the hop and the
 * endpoint; `code` is the cause's); a throwing `route` fails it as it threw. A retry resumes at the
 * failed hop — `route` is called again for it, so it must be a function of the message and the hop
 * (Camel's router reads the same from the exchange). More than `maxHops` endpoints (default 32) fail
 * it with `HopLimitError`: a router that never returns `undefined` cannot loop forever.
 * Endpoints are computed per message, so none is checked at build time; an unknown scheme fails the
 * message (`EndpointError`). Counts `hops` (confirmed sends).
 * Stop: in-flight messages finish their hops while the route drains; after that no hop is sent.
 * @example from('memory:orders').dynamicRouter((m, hop) => ['memory:check', 'memory:pack', 'memory:ship'][hop])
 */
export function dynamicRouter<T>(route: DynamicRoute<T>, { maxHops = DEFAULT_MAX_HOPS }: DynamicRouterOptions = {}): StepFactory<T, T> {
  checkMaxHops('dynamicRouter', maxHops);
  return (context) => hopRouter<T>(context, (message) => (hop) => route(message, hop), { pattern: 'dynamicRouter', maxHops });
}

/** `.dynamicRouter(route, options)`: the dynamic router's DSL entry (kind `dynamicRouter`; sends, to endpoints computed per message). */
export function dynamicRouterStep<T>(route: DynamicRoute<T>, options?: DynamicRouterOptions): StepSpec<T, T> {
  return stepSpec('dynamicRouter', dynamicRouter(route, options), { sends: true });
}
