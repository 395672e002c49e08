import type { Subscription } from 'rxjs';
import { combineMessages, createDelivery, InterchangeError, joinDeliveries, RouteDefinitionError, stepSpec, type Delivery, type Message, type StepFactory, type StepSpec } from '../src/core/index.ts';
import { stepLifecycle } from '../src/core/step-lifecycle.ts';
import { InMemoryAggregationRepository, type AggregationGroup, type AggregationRepository } from '../src/stores/aggregation-repository.ts';
import { isPersistentAggregationRepository, type PersistentAggregationRepository } from '../src/stores/persistent-aggregation-repository.ts';
import { persistentAggregate } from './aggregate-persistent.ts';

/** Camel's AggregationStrategy: folds the next message into the aggregate so far. */
export type AggregationStrategy<I, A> = (previous: A | undefined, next: Message<I>) => A;

export type CompletionReason = 'size' | 'sequence' | 'predicate' | 'timeout' | 'stop';

export interface AggregateOptions<I, A> {
  /**
   * The correlation key: messages with the same key are aggregated together. Required, except with
   * `sequence`, where it defaults to the split message's id (each part's `causationId`).
   */
  readonly correlate?: (message: Message<I>) => string;
  readonly strategy: AggregationStrategy<I, A>;
  /** Complete when a group holds this many messages. */
  readonly size?: number;
  /**
   * Complete when every part of a split has arrived: the group holds as many messages as the parts'
   * `splitSize` header says (Spring's default release strategy, Camel's `CamelSplitComplete`). Parts
   * are folded in arrival order (`splitIndex` tells their place). A message without a positive integer
   * `splitSize` fails (`NOT_A_SPLIT_PART`, permanent). Parts keep their split's `causationId` unless a
   * step between the split and here derives new messages (then give `correlate`).
   */
  readonly sequence?: boolean;
  /** Complete a group after this long without a new message (inactivity, on the step's scheduler). */
  readonly timeoutMs?: number;
  /** Complete when this holds for the aggregate after adding a message. */
  readonly predicate?: (aggregate: A, size: number) => boolean;
  /**
   * Where open groups live. Default: an `InMemoryAggregationRepository` per subscription. A
   * `PersistentAggregationRepository` (PostgreSQL, Redis) makes the aggregator durable and shared:
   * open groups survive a crash and several instances of the route aggregate the same keys. Then:
   * - each input is acked once it is folded into its stored group (`settleInputs` is always
   *   on arrival; `'on-completion'` is a `RouteDefinitionError`); a redelivered input already folded
   *   in is acked without change; a store error or a write lost `MAX_CONFLICT_RETRIES` times to other
   *   instances fails the input as transient (never acked; the route's policy retries or rejects it);
   * - inputs of one key are folded one at a time in arrival order, different keys concurrently;
   * - an aggregate is kept in the store until it is settled downstream: acked, it is confirmed;
   *   rejected, it is released and emitted again by recovery (`recoveryIntervalMs`), which also
   *   emits those whose instance died (after `leaseMs`), fails those claimed more than
   *   `maxRedeliveries` times permanently (`AGGREGATE_UNDELIVERABLE`, for the dead-letter channel)
   *   and, with `timeoutMs`, completes groups left idle that long by any instance;
   * - the values must survive JSON (the store keeps them as JSON).
   */
  readonly repository?: AggregationRepository<A> | PersistentAggregationRepository<A>;
  /**
   * When the route stops: emit open groups (default) or reject their inputs for redelivery.
   * With a `PersistentAggregationRepository`: by default open groups stay in the store (they are
   * picked up after the restart, or by another instance); `'complete'` completes those this instance
   * wrote to; `'reject'` is a `RouteDefinitionError` (their inputs are already acked).
   */
  readonly onStop?: 'complete' | 'reject';
  /** Persistent repository only: how long an instance holds an aggregate it completed before others may emit it again (default 30 s). */
  readonly leaseMs?: number;
  /** Persistent repository only: recovery runs when the step starts and then this often, on the step's scheduler (default 5 s). */
  readonly recoveryIntervalMs?: number;
  /**
   * Persistent repository only: how many times an aggregate is emitted in all, its first emission
   * included (the store's `attempts`); recovery fails one claimed beyond that permanently
   * (`AGGREGATE_UNDELIVERABLE`), for the dead-letter channel, and confirms it once that settles it (default 5).
   */
  readonly maxRedeliveries?: number;
  /**
   * When the inputs are settled (Camel completes an input exchange once it is in the repository):
   * - `'on-completion'` (default): together with the aggregate, once it is settled downstream —
   *   at-least-once for the aggregate, but every open group holds its inputs unsettled, so the
   *   route's prefetch (an MQTT receive maximum, an AMQP prefetch) must exceed groups × size or the
   *   route stalls.
   * - `'on-arrival'`: each input is acked as soon as it has been added to its group, so open groups
   *   hold no prefetch. The repository then owns the group: with the in-memory repository, open
   *   groups are lost on a crash (their inputs are already acked, never redelivered), and an
   *   aggregate rejected downstream is lost too (logged). `onStop: 'reject'` drops open groups
   *   (logged), as their inputs can no longer be rejected.
   */
  readonly settleInputs?: 'on-completion' | 'on-arrival';
}

/**
 * Aggregator: folds correlated messages into one, completing a group by size, split sequence,
 * inactivity timeout or predicate (at least one is required). The aggregate's id is derived from its
 * inputs' ids and its header `aggregationCompletedBy` says why it completed.
 *
 * Settlement (`settleInputs`): by default inputs stay unsettled until the aggregate they joined is
 * settled, then are settled with it — so the route's prefetch must exceed the messages held open at
 * once (groups × size). With `'on-arrival'` each input is acked once added to its group.
 * A throwing `correlate` or `strategy` fails that input only; its group is left as it was.
 * With a `PersistentAggregationRepository` the aggregator is durable and shared by the route's
 * instances (see `repository`; the durable mode lives in `aggregate-persistent.ts`).
 * @example aggregate({ correlate: (m) => m.body.deviceId, strategy: (s = [], m) => [...s, m.body], size: 10, timeoutMs: 5000 })
 * @example aggregate({ correlate: (m) => m.body.orderId, strategy: (s = [], m) => [...s, m.body], size: 3, timeoutMs: 60_000, repository: await PostgresAggregationRepository.open(database, { name: 'order-batches' }) })
 * @example from('memory:orders').split((m) => m.body.lines).enrich(price, merge).aggregate({ sequence: true, strategy: (s = [], m) => [...s, m.body] })
 */
export function aggregate<I, A>(options: AggregateOptions<I, A>): StepFactory<I, A> {
  const { strategy, size, sequence = false, timeoutMs, predicate, onStop = 'complete', settleInputs = 'on-completion' } = options;
  const onArrival = settleInputs === 'on-arrival';
  if (size === undefined && !sequence && timeoutMs === undefined && predicate === undefined) {
    throw new RouteDefinitionError('aggregate needs a completion condition: size, sequence, timeoutMs or predicate');
  }
  const correlate = options.correlate ?? (sequence ? splitOf : undefined);
  if (correlate === undefined) throw new RouteDefinitionError('aggregate needs correlate (only sequence: true has a default, the split message)');
  /** Why a group of `count` messages, `message` the last, completes; decided before the group is stored, so a throw leaves it as it was. */
  const completedByOf = (value: A, count: number, message: Message<I>): CompletionReason | undefined =>
    size !== undefined && count >= size ? 'size' : sequence && count >= splitSizeOf(message) ? 'sequence' : predicate?.(value, count) === true ? 'predicate' : undefined;
  const { repository: given } = options;
  if (isPersistentAggregationRepository(given)) {
    return persistentAggregate<I, A>({ ...persistentOptions(options), repository: given as PersistentAggregationRepository<A>, correlate, strategy, completes: completedByOf, timeoutMs });
  }
  return (context) =>
    stepLifecycle<I, A>(context, (step) => {
      const repository = given ?? new InMemoryAggregationRepository<A>();
      const timers = new Map<string, Subscription>();

      const complete = (key: string, reason: CompletionReason): void => {
        const group = repository.get(key);
        timers.get(key)?.unsubscribe();
        timers.delete(key);
        if (group === undefined) return;
        repository.remove(key);
        const message = combineMessages(
          group.inputs.map((input) => input.message),
          group.value,
          { aggregationKey: key, aggregationSize: group.inputs.length, aggregationCompletedBy: reason },
        );
        step.emit(onArrival ? detached(message) : joinDeliveries(group.inputs, message));
      };

      /** An aggregate whose inputs were settled on arrival: nobody is left to reject to. */
      const detached = <T>(message: Message<T>): Delivery<T> =>
        createDelivery(message, {
          ack: () => {},
          nack: (reason) => {
            context.log.warn('aggregate rejected after its inputs were settled on arrival: it is lost', { route: context.routeId, step: context.stepId, messageId: message.id, error: reason });
          },
        });

      /** Once the source has completed: emits open groups or rejects their inputs, per `onStop`. */
      const stopOpenGroups = (): void => {
        for (const key of repository.keys()) {
          if (onStop === 'complete') complete(key, 'stop');
          else {
            const group = repository.get(key);
            repository.remove(key);
            timers.get(key)?.unsubscribe();
            timers.delete(key);
            if (onArrival && group !== undefined) {
              context.log.warn('route stopped with an open group whose inputs were settled on arrival: it is dropped', { route: context.routeId, step: context.stepId, key, size: group.inputs.length });
            }
            for (const input of group?.inputs ?? []) input.nack(new InterchangeError('AGGREGATOR_STOPPED', `route '${context.routeId}' stopped with this message in an open group of step '${context.stepId}'`));
          }
        }
      };

      const add = (delivery: Delivery<I>, attempt: number): void => {
        let key: string;
        let group: AggregationGroup<A>;
        try {
          key = correlate(delivery.message);
          const previous = repository.get(key);
          group = {
            key,
            value: strategy(previous?.value, delivery.message),
            inputs: [...(previous?.inputs ?? []), delivery],
            firstAt: previous?.firstAt ?? context.scheduler.now(),
          };
          // Decided before the group is stored, so a throwing predicate leaves the group as it was.
          const completedBy = completedByOf(group.value, group.inputs.length, delivery.message);
          repository.put(group);
          if (onArrival) delivery.ack();
          if (completedBy !== undefined) return complete(key, completedBy);
        } catch (error) {
          step.fail(delivery, error, attempt, add);
          return;
        }
        if (timeoutMs !== undefined) {
          timers.get(key)?.unsubscribe();
          timers.set(
            key,
            context.scheduler.schedule(() => {
              timers.delete(key);
              complete(key, 'timeout');
            }, timeoutMs),
          );
        }
      };

      return {
        next: (delivery) => add(delivery, 1),
        // Once the source has completed, open groups are emitted or rejected (`onStop`); groups a
        // retry opens after that are, once no retry is left.
        drain: stopOpenGroups,
        teardown: () => {
          for (const timer of timers.values()) timer.unsubscribe();
        },
      };
    });
}

/** The durable mode's own options, checked: what a persistent repository rules out fails where the route is declared. */
function persistentOptions<I, A>(options: AggregateOptions<I, A>): { completeOnStop: boolean; leaseMs: number; recoveryIntervalMs: number; maxRedeliveries: number } {
  const { settleInputs, onStop, leaseMs = 30_000, recoveryIntervalMs = 5_000, maxRedeliveries = 5 } = options;
  if (settleInputs === 'on-completion') {
    throw new RouteDefinitionError("aggregate with a persistent repository settles its inputs on arrival (the store owns them): settleInputs 'on-completion' is not possible");
  }
  if (onStop === 'reject') {
    throw new RouteDefinitionError("aggregate with a persistent repository keeps open groups in the store when the route stops, or completes them: onStop 'reject' is not possible (their inputs are acked)");
  }
  for (const [name, value] of [['leaseMs', leaseMs], ['recoveryIntervalMs', recoveryIntervalMs]] as const) {
    if (!(value > 0)) throw new RouteDefinitionError(`aggregate: ${name} must be a positive number of milliseconds, got ${String(value)}`);
  }
  if (!Number.isInteger(maxRedeliveries) || maxRedeliveries < 1) throw new RouteDefinitionError(`aggregate: maxRedeliveries must be a positive integer, got ${String(maxRedeliveries)}`);
  return { completeOnStop: onStop === 'complete', leaseMs, recoveryIntervalMs, maxRedeliveries };
}

/** The default correlation of `sequence`: the split message, which every part names as its cause. */
function splitOf(message: Message): string {
  const parent = message.headers.causationId;
  if (parent === undefined) throw notASplitPart(message, 'no causationId');
  return parent;
}

function splitSizeOf(message: Message): number {
  const size = message.headers.splitSize;
  if (typeof size !== 'number' || !Number.isInteger(size) || size < 1) throw notASplitPart(message, `splitSize is ${String(size)}`);
  return size;
}

function notASplitPart(message: Message, why: string): InterchangeError {
  return new InterchangeError('NOT_A_SPLIT_PART', `aggregate (sequence): message '${message.id}' is not a part of a split (${why})`, { permanent: true });
}

/** `.aggregate(options)`: the aggregator's DSL entry (kind `aggregate`). Options are checked at once: a missing completion condition fails where the route is declared. */
export function aggregateStep<I, A>(options: AggregateOptions<I, A>): StepSpec<I, A> {
  return stepSpec('aggregate', aggregate(options));
}
