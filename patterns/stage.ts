import {
  CapacityError,
  InterchangeError,
  RouteDefinitionError,
  relayDelivery,
  stepLifecycle,
  stepSpec,
  type Delivery,
  type Message,
  type StepFactory,
  type StepSpec,
} from '../src/core/index.ts';
import { LatencyController, type LatencyControllerOptions } from './latency-controller.ts';

/** What a stage does with a message arriving while its queue holds `capacity` messages. */
export type WhenFull = 'wait' | 'shed' | 'reject';

export interface StageOptions<T> {
  /** Messages the stage queues while `concurrency` are downstream (in flight after it, not yet settled). */
  readonly capacity: number;
  /** Messages downstream at once (default 1). With `targetP99Ms`: the most the controller may allow. */
  readonly concurrency?: number;
  /**
   * A message arriving at a full queue (default `'wait'`):
   * - `'wait'`: it is queued anyway — backpressure: the source's prefetch bounds what the stage holds;
   * - `'shed'`: the lowest-priority message of the queue and the arriving one (ties: the newest) fails
   *   with `ShedError` (permanent: never retried; a dead-letter channel dead-letters it), counted `shed`;
   * - `'reject'`: the arriving one fails with `CapacityError` at once (the error handler decides:
   *   by default rejected to the source, which redelivers it), counted `rejected`.
   */
  readonly whenFull?: WhenFull;
  /** A message's priority, higher first (default: its `priority` header when a number, else 0). */
  readonly priority?: (message: Message<T>) => number;
  /**
   * SEDA's response-time controller: holds the p99 of the downstream latency (from leaving the stage
   * to settling) at this many milliseconds by moving the concurrency between `minConcurrency` and
   * `concurrency` (see `LatencyController`).
   */
  readonly targetP99Ms?: number;
  /** The controller's lowest concurrency, and where it starts (default 1). */
  readonly minConcurrency?: number;
  /** The controller's window and steps (defaults: 100 samples or 1,000 ms; +1 under 90% of the target, ×0.75 over it). */
  readonly controller?: Pick<LatencyControllerOptions, 'windowSamples' | 'windowMs' | 'increaseBy' | 'increaseBelow' | 'decreaseFactor'>;
}

/** A stage shed this message to make room for higher-priority ones: permanent (retrying would meet the same full queue). */
export class ShedError extends InterchangeError {
  override readonly name = 'ShedError';
  constructor(
    /** The priority of the message shed. */
    readonly priority: number,
    /** The stage's capacity. */
    readonly capacity: number,
  ) {
    super('STAGE_SHED', `stage full: shed lowest priority (p=${priority})`, { permanent: true });
  }
}

/** A message waiting in a stage's queue. */
interface Queued<T> {
  readonly delivery: Delivery<T>;
  readonly attempt: number;
  readonly priority: number;
}

/**
 * A stage's default priority: the message's `priority` header when it is a number, else 0.
 * @example stage({ capacity: 100, priority: (m) => priorityHeader(m) + (m.body.vip ? 10 : 0) })
 */
export const priorityHeader = (message: Message): number => (typeof message.headers.priority === 'number' ? message.headers.priority : 0);

/**
 * Stage (SEDA's admission control; Camel's `seda:` endpoint, Spring's `QueueChannel` with a
 * capacity): a bounded priority queue in front of the rest of the route, which runs at most
 * `concurrency` messages at once — a message counts from when the stage passes it on until it
 * settles (reaches the route's end, is filtered, dead-lettered or rejected; after an aggregator,
 * until its group completes). Queued messages go on highest priority first, in arrival order within
 * a priority.
 * Settlement: a queued message stays unsettled (in flight for the source) until processed; a shed
 * one is failed with `ShedError` and settled by the route's error handler (a dead-letter channel
 * dead-letters it with the reason in `x-interchange-error` and acks it once confirmed; the default
 * handler rejects it to the source); a rejected one is failed with `CapacityError`, likewise.
 * A failure downstream is handled there, and frees the message's place.
 * `'shed'`/`'reject'` only matter if the source can deliver more than `capacity + concurrency`
 * messages: give the route a prefetch above that (`from(uri, { prefetch })`).
 * Stop: as elsewhere in a route, queued messages keep going downstream while the route drains; those
 * still queued at the stop deadline are left unsettled and the source redelivers them.
 * Figures: counters `shed`, `rejected`; gauges `queued`, `concurrency` (the current limit).
 * Steps after a stage are not followed one by one by the tracing probes (the stage settles through a
 * delivery of its own, as a split's parts do); how a message ended after it (filtered, dead-lettered,
 * discarded) is told on to the source's delivery, so the execution's outcome, its receipt and a
 * replay say so.
 * @example
 * from('amqp:queue/orders', { prefetch: 300 })
 *   .stage({ capacity: 200, concurrency: 16, whenFull: 'shed', targetP99Ms: 250 })
 *   .enrich(lookupCustomer, merge)
 *   .to('amqp:queue/enriched')
 */
export function stage<T>(options: StageOptions<T>): StepFactory<T, T> {
  const { capacity, concurrency = 1, whenFull = 'wait', priority = priorityHeader, targetP99Ms, minConcurrency = 1, controller: tuning = {} } = options;
  checkStageOptions(options);
  const controllerOptions = targetP99Ms === undefined ? undefined : { ...tuning, targetP99Ms, min: minConcurrency, max: concurrency };
  if (controllerOptions !== undefined) new LatencyController(controllerOptions); // refuses bad tuning when the route is declared
  return (context) =>
    stepLifecycle<T, T>(context, (step) => {
      const controller = controllerOptions === undefined ? undefined : new LatencyController(controllerOptions);
      /** Highest priority first, arrival order within one: the last is the lowest and newest. */
      const queue: Queued<T>[] = [];
      let limit = controller?.concurrency ?? concurrency;
      let active = 0;
      let pumping = false;
      context.gauge('concurrency', limit);
      context.gauge('queued', 0);

      const priorityOf = (message: Message<T>): number => {
        const value = priority(message);
        return Number.isFinite(value) ? value : 0;
      };

      const enqueue = (entry: Queued<T>): void => {
        let low = 0;
        let high = queue.length;
        while (low < high) {
          const middle = (low + high) >>> 1;
          if ((queue[middle] as Queued<T>).priority >= entry.priority) low = middle + 1;
          else high = middle;
        }
        queue.splice(low, 0, entry);
        step.begin();
      };

      const fail = (delivery: Delivery<T>, error: Error, attempt: number): void => step.fail(delivery, error, attempt, admit);

      const admit = (delivery: Delivery<T>, attempt: number): void => {
        let rank: number;
        try {
          rank = priorityOf(delivery.message);
        } catch (error) {
          fail(delivery, error instanceof Error ? error : new Error(String(error)), attempt);
          return;
        }
        if (active < limit && queue.length === 0) {
          run(delivery);
          return;
        }
        const entry: Queued<T> = { delivery, attempt, priority: rank };
        if (queue.length < capacity || whenFull === 'wait') enqueue(entry);
        else if (whenFull === 'reject') {
          context.count('rejected');
          fail(delivery, new CapacityError(`stage full (capacity ${capacity}): rejected (p=${rank})`), attempt);
        } else {
          const lowest = queue[queue.length - 1] as Queued<T>;
          let shed = entry;
          if (lowest.priority < rank) {
            enqueue(entry);
            queue.pop();
            step.end();
            shed = lowest;
          }
          context.count('shed');
          fail(shed.delivery, new ShedError(shed.priority, capacity), shed.attempt);
        }
        context.gauge('queued', queue.length);
        pump();
      };

      /** Passes queued messages on while there is room; re-entrant calls (a synchronous settlement) fold into the loop. */
      const pump = (): void => {
        if (pumping) return;
        pumping = true;
        try {
          while (active < limit && queue.length > 0 && !step.closed) {
            const entry = queue.shift() as Queued<T>;
            context.gauge('queued', queue.length);
            run(entry.delivery);
            step.end();
          }
        } finally {
          pumping = false;
        }
      };

      const run = (delivery: Delivery<T>): void => {
        active += 1;
        const started = context.scheduler.now();
        const done = (): void => {
          active -= 1;
          if (controller !== undefined) {
            const now = context.scheduler.now();
            const decision = controller.observe(now - started, now, queue.length);
            if (decision !== undefined && decision.concurrency !== limit) {
              limit = decision.concurrency;
              context.gauge('concurrency', limit);
            }
          }
          pump();
        };
        // settles the source, then frees the place; how a later step let it go still reaches the route
        step.emit(relayDelivery(delivery, delivery.message, { ack: done, nack: done }));
      };

      return {
        next: (delivery) => admit(delivery, 1),
        // unsubscribed (the stop deadline passed): what is still queued stays unsettled, for the source to redeliver
        teardown: () => {
          queue.length = 0;
          context.gauge('queued', 0);
        },
      };
    });
}

/** `.stage(options)`: the stage's DSL entry (kind `stage`). */
export function stageStep<T>(options: StageOptions<T>): StepSpec<T, T> {
  return stepSpec('stage', stage(options));
}

function checkStageOptions<T>({ capacity, concurrency = 1, whenFull = 'wait', minConcurrency = 1, targetP99Ms }: StageOptions<T>): void {
  if (!Number.isInteger(capacity) || capacity < 1) throw new RouteDefinitionError(`stage: capacity must be a positive integer (is ${capacity})`);
  if (!Number.isInteger(concurrency) || concurrency < 1) throw new RouteDefinitionError(`stage: concurrency must be a positive integer (is ${concurrency})`);
  if (whenFull !== 'wait' && whenFull !== 'shed' && whenFull !== 'reject') throw new RouteDefinitionError(`stage: whenFull must be 'wait', 'shed' or 'reject' (is '${String(whenFull)}')`);
  if (targetP99Ms === undefined && minConcurrency !== 1) throw new RouteDefinitionError('stage: minConcurrency applies with targetP99Ms only');
}
