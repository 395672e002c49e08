import {
  isPermanentFailure,
  isTemplate,
  PartialPublishError,
  resolveEndpointTemplate,
  RouteDefinitionError,
  stepSpec,
  toError,
  type Delivery,
  type Message,
  type StepContext,
  type StepFactory,
  type StepSpec,
} from '../src/core/index.ts';
import { stepLifecycle } from '../src/core/step-lifecycle.ts';

/**
 * How the load balancer picks the first endpoint for a message (Camel's balancers):
 * - `roundRobin` — each in turn;
 * - `weighted` — in proportion to `weights`, spread evenly (smooth weighted round-robin);
 * - `random` — uniformly at random;
 * - `sticky` — by a hash of `key(message)`: one key, one endpoint (while the list is unchanged);
 * - `failover` — always the first: the others are backups, tried in order (`maxFailovers` defaults
 *   to all of them).
 */
export type LoadBalanceStrategy = 'roundRobin' | 'weighted' | 'random' | 'sticky' | 'failover';

export interface LoadBalanceOptions<T> {
  /** Default `roundRobin`. */
  readonly strategy?: LoadBalanceStrategy;
  /** `weighted`: one non-negative integer per endpoint, at least one positive (`[4, 2, 1]`: 4 of 7 messages go to the first). */
  readonly weights?: readonly number[];
  /** `sticky`: the key whose hash chooses the endpoint (a customer id, a device id). A throw fails that message only. */
  readonly key?: (message: Message<T>) => string;
  /**
   * After a failed send, try this many other endpoints in list order, wrapping around (Camel's
   * `maxFailoverAttempts`; 0 to endpoints − 1). Default 0, or endpoints − 1 for `failover`.
   */
  readonly maxFailovers?: number;
  /** Which failures fail over (default: any but a permanent one — a message another endpoint cannot take either). */
  readonly failoverOn?: (error: Error) => boolean;
  /** `random`: the source of randomness, a number in [0, 1) (default `Math.random`). */
  readonly random?: () => number;
}

/**
 * Load balancer (Camel's `loadBalance`): sends each message to one of `uris`, chosen by `strategy`,
 * and passes it on once that endpoint confirmed. With failover (`maxFailovers`, or the `failover`
 * strategy) a failed send is tried on the next endpoint, and so on, up to `maxFailovers` more.
 * URIs may be templates (`{name}` from headers or body); static ones are checked when the integration
 * is built.
 *
 * At-least-once: the source is acked only once the chosen (or a failover) endpoint confirmed and the
 * rest of the route settled the message. Failover exhausted, or a failure `failoverOn` refuses: the
 * message fails with the last endpoint's error, unchanged, for the route's error handler (a retry
 * picks an endpoint afresh). A throwing `key` fails the message. A failed send that failed over may
 * still have reached its endpoint (a lost confirm): the backup then gets a duplicate, as with any
 * at-least-once retry.
 * Counts `sent:<uri>` per endpoint (its declared URI) once confirmed, `failed:<uri>` per failed send,
 * `failover` per send tried on a next endpoint.
 * Stop: in-flight sends finish while the route drains; once the step is unsubscribed no failover is
 * tried and the message stays unsettled, for the source to redeliver.
 * @example from('amqp:queue/jobs').loadBalance(['amqp:queue/worker-a', 'amqp:queue/worker-b'])
 * @example from('memory:orders').loadBalance(['amqp:queue/primary', 'amqp:queue/backup'], { strategy: 'failover' })
 * @example from('memory:orders').loadBalance(['memory:a', 'memory:b'], { strategy: 'weighted', weights: [3, 1], maxFailovers: 1 })
 */
export function loadBalance<T>(uris: readonly string[], options: LoadBalanceOptions<T> = {}): StepFactory<T, T> {
  const { strategy = 'roundRobin', maxFailovers = strategy === 'failover' ? uris.length - 1 : 0, failoverOn = (error: Error) => !isPermanentFailure(error) } = options;
  checkOptions(uris, strategy, maxFailovers, options);
  const targets = uris.map((uri) => ({ uri, resolve: isTemplate(uri) ? (message: Message) => resolveEndpointTemplate(uri, message) : () => uri }));
  return (context) =>
    stepLifecycle<T, T>(context, (step) => {
      const first = chooser(uris.length, strategy, options);
      const send = async (delivery: Delivery<T>): Promise<void> => {
        const start = first(delivery.message);
        for (let tried = 0; ; tried += 1) {
          const target = targets[(start + tried) % targets.length] as (typeof targets)[number];
          try {
            await publishOne(context, target.resolve(delivery.message), delivery.message);
            context.count(`sent:${target.uri}`);
            step.emit(delivery);
            return;
          } catch (error) {
            context.count(`failed:${target.uri}`);
            const failure = toError(error);
            if (tried >= maxFailovers || !failoverOn(failure)) throw failure;
            if (step.closed) return; // unsubscribed: no failover; the source redelivers
            context.count('failover');
          }
        }
      };
      const run = (delivery: Delivery<T>, attempt: number): void => {
        step.begin();
        send(delivery).then(
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

/** `.loadBalance(uris, options)`: the load balancer's DSL entry (kind `loadBalance`; sends, to its static `uris`). */
export function loadBalanceStep<T>(uris: readonly string[], options?: LoadBalanceOptions<T>): StepSpec<T, T> {
  return stepSpec('loadBalance', loadBalance(uris, options), { sends: true, sendsTo: uris.filter((uri) => !isTemplate(uri)), destinations: uris });
}

/** The index of the first endpoint to try for a message, by strategy; state per step subscription. */
function chooser<T>(count: number, strategy: LoadBalanceStrategy, { weights = [], key, random = Math.random }: LoadBalanceOptions<T>): (message: Message<T>) => number {
  switch (strategy) {
    case 'failover':
      return () => 0;
    case 'random':
      return () => Math.min(count - 1, Math.floor(random() * count));
    case 'sticky':
      return (message) => fnv1a((key as (message: Message<T>) => string)(message)) % count;
    case 'weighted': {
      // smooth weighted round-robin (nginx): the heaviest current weight wins, then pays the total
      const total = weights.reduce((sum, weight) => sum + weight, 0);
      const current = weights.map(() => 0);
      return () => {
        let best = 0;
        for (let index = 0; index < count; index += 1) {
          current[index] = (current[index] as number) + (weights[index] as number);
          if ((current[index] as number) > (current[best] as number)) best = index;
        }
        current[best] = (current[best] as number) - total;
        return best;
      };
    }
    case 'roundRobin': {
      let next = 0;
      return () => {
        const index = next;
        next = (next + 1) % count;
        return index;
      };
    }
  }
}

function checkOptions<T>(uris: readonly string[], strategy: LoadBalanceStrategy, maxFailovers: number, { weights, key }: LoadBalanceOptions<T>): void {
  const fail = (reason: string): never => {
    throw new RouteDefinitionError(`loadBalance: ${reason}`);
  };
  if (uris.length === 0) fail('needs at least one endpoint URI');
  if (uris.some((uri) => typeof uri !== 'string' || uri.trim() === '')) fail('an endpoint URI is empty');
  if (!['roundRobin', 'weighted', 'random', 'sticky', 'failover'].includes(strategy)) fail(`unknown strategy '${String(strategy)}'`);
  if (!Number.isSafeInteger(maxFailovers) || maxFailovers < 0 || maxFailovers > uris.length - 1) {
    fail(`maxFailovers must be an integer from 0 to ${uris.length - 1} (the other endpoints), got ${String(maxFailovers)}`);
  }
  if (strategy === 'weighted') {
    if (weights?.length !== uris.length) fail(`the weighted strategy needs one weight per endpoint (${uris.length}), got ${weights === undefined ? 'none' : String(weights.length)}`);
    if (weights?.some((weight) => !Number.isSafeInteger(weight) || weight < 0)) fail(`weights must be non-negative integers, got [${String(weights)}]`);
    if (weights?.every((weight) => weight === 0)) fail('at least one weight must be positive');
  } else if (weights !== undefined) fail(`weights apply to the weighted strategy only (strategy '${strategy}')`);
  if (strategy === 'sticky' && typeof key !== 'function') fail('the sticky strategy needs key (message) => string');
  if (strategy !== 'sticky' && key !== undefined) fail(`key applies to the sticky strategy only (strategy '${strategy}')`);
}

/** FNV-1a, 32 bits: a cheap, stable hash of the sticky key. */
function fnv1a(text: string): number {
  let hash = 0x811c9dc5;
  for (let index = 0; index < text.length; index += 1) {
    hash ^= text.charCodeAt(index);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}

/** One message to one endpoint; a `PartialPublishError` of its one message stands for that message's own error. */
async function publishOne(context: StepContext, uri: string, message: Message): Promise<void> {
  try {
    await context.publish(uri, [message]);
  } catch (error) {
    throw error instanceof PartialPublishError && error.failures.size === 1 ? error.failures.values().next().value : error;
  }
}
