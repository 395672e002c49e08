import { Subject, VirtualTimeScheduler } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { aggregate, type AggregateOptions } from '../../patterns/aggregate.ts';
import { MAX_CONFLICT_RETRIES } from '../../patterns/aggregate-persistent.ts';
import { createIntegration, DeadLetterHeaders, from, silentLogger, type Integration } from '../../facade/index.ts';
import { TestKit } from '../../facade/testing/index.ts';
import { derivedMessageId, InterchangeError, RouteDefinitionError, type Delivery } from '../../src/core/index.ts';
import {
  InMemoryPersistentAggregationRepository,
  type CompletedAggregate,
  type PersistentAggregationRepository,
} from '../../src/stores/persistent-aggregation-repository.ts';
import { runUntil } from '../unit/virtual-time.ts';
import { collect, deferred, drive, Harness, settle, source, type HarnessOptions, type Source } from './harness.ts';

interface Reading {
  readonly device: string;
  readonly value: number;
}

const reading = (device: string, value: number): Source<Reading> => source({ device, value }, { id: `${device}-${value}` });
const byDevice = (m: { body: Reading }): string => m.body.device;
const collectValues = (previous: number[] | undefined, next: { body: Reading }): number[] => [...(previous ?? []), next.body.value];

/** A virtual clock, a store on that clock, and a factory of aggregator "instances" sharing the store. */
function setup(repositoryOverride?: (inner: PersistentAggregationRepository<number[]>) => PersistentAggregationRepository<number[]>) {
  const scheduler = new VirtualTimeScheduler();
  const store = new InMemoryPersistentAggregationRepository<number[]>({ now: () => scheduler.now() });
  const repository = repositoryOverride === undefined ? store : repositoryOverride(store);
  const instance = (options: Partial<AggregateOptions<Reading, number[]>> = {}, harnessOptions: HarnessOptions = {}) => {
    const harness = new Harness({ scheduler, ...harnessOptions });
    const step = harness.build(aggregate<Reading, number[]>({ correlate: byDevice, strategy: collectValues, repository, ...options }));
    return { harness, ...drive(step) };
  };
  return { scheduler, store, repository, instance };
}

/** Delegates every method to `inner`, except those given. */
function wrap<A>(inner: PersistentAggregationRepository<A>, overrides: Partial<PersistentAggregationRepository<A>>): PersistentAggregationRepository<A> {
  return {
    get: (key) => inner.get(key),
    add: (write) => inner.add(write),
    complete: (key, version, completion) => inner.complete(key, version, completion),
    confirm: (id) => inner.confirm(id),
    release: (id) => inner.release(id),
    expired: (before, limit) => inner.expired(before, limit),
    claimUnconfirmed: (leaseMs, limit) => inner.claimUnconfirmed(leaseMs, limit),
    counts: () => inner.counts(),
    ...overrides,
  };
}

/** Moves the virtual clock to `at` with nothing else happening. */
function advanceTo(scheduler: VirtualTimeScheduler, at: number): void {
  scheduler.schedule(() => {}, at - scheduler.now());
  scheduler.maxFrames = at;
  scheduler.flush();
}

describe('aggregate with a persistent repository: inputs', () => {
  it('acks each input only once its fold is durable, one input of a key at a time', async () => {
    const gate = deferred();
    let adds = 0;
    const { instance, store } = setup((inner) =>
      wrap(inner, {
        add: async (write) => {
          adds += 1;
          await gate.promise;
          return inner.add(write);
        },
      }),
    );
    const { output, send } = instance({ size: 3 });
    const inputs = [reading('a', 1), reading('a', 2), reading('a', 3)];
    send(...inputs);
    await settle();
    expect(adds).toBe(1); // the second input of key a waits for the first
    expect(inputs.map((i) => i.settlements)).toEqual([0, 0, 0]);
    expect(await store.counts()).toEqual({ open: 0, completed: 0 });
    gate.resolve();
    await settle();
    expect(inputs.map((i) => i.outcome)).toEqual(['acked', 'acked', 'acked']);
    expect(output.bodies).toEqual([[1, 2, 3]]);
    expect(output.messages[0]!.id).toBe(derivedMessageId(['a-1', 'a-2', 'a-3']));
    expect(output.messages[0]!.headers).toMatchObject({ aggregationKey: 'a', aggregationSize: 3, aggregationCompletedBy: 'size', causationId: 'a-1', correlationId: 'a-1' });
    expect(await store.counts()).toEqual({ open: 0, completed: 1 });
    output.ackAll();
    await settle();
    expect(await store.counts()).toEqual({ open: 0, completed: 0 });
  });

  it('folds the inputs of a key that waited for a write in one write, ending a batch at the input that completes the group', async () => {
    const gate = deferred();
    const writes: string[][] = [];
    const { instance } = setup((inner) =>
      wrap(inner, {
        add: async (write) => {
          writes.push([...write.inputIds]);
          await gate.promise;
          return inner.add(write);
        },
      }),
    );
    const { output, send } = instance({ size: 4 });
    const inputs = [1, 2, 3, 4, 5, 6].map((value) => reading('a', value));
    send(inputs[0]!);
    await settle();
    send(...inputs.slice(1)); // arrive while the first write is under way
    gate.resolve();
    await settle();
    expect(writes).toEqual([['a-1'], ['a-2', 'a-3', 'a-4'], ['a-5', 'a-6']]);
    expect(inputs.map((input) => input.outcome)).toEqual(['acked', 'acked', 'acked', 'acked', 'acked', 'acked']);
    expect(output.bodies).toEqual([[1, 2, 3, 4]]);
  });

  it('a batch with an input folded before (in the group as read): that one is acked, the others folded once, in order', async () => {
    const { instance, store } = setup();
    const first = instance({ size: 10 });
    first.send(reading('a', 2)); // folded by an instance that then died before acking it
    await settle();
    const gate = deferred();
    const writes: string[][] = [];
    const second = (() => {
      const harness = new Harness({});
      const step = harness.build(
        aggregate<Reading, number[]>({
          correlate: byDevice,
          strategy: collectValues,
          size: 10,
          repository: wrap(store, {
            add: async (write) => {
              writes.push([...write.inputIds]);
              await gate.promise;
              return store.add(write);
            },
          }),
        }),
      );
      return drive(step);
    })();
    const inputs = [reading('a', 0), reading('a', 1), reading('a', 2), reading('a', 3)];
    second.send(inputs[0]!);
    await settle();
    second.send(...inputs.slice(1));
    gate.resolve();
    await settle();
    expect(inputs.map((input) => input.outcome)).toEqual(['acked', 'acked', 'acked', 'acked']);
    // a-2 is in the group as read: left out of the write, acked with it (no round trip for the store to say so)
    expect(writes).toEqual([['a-0'], ['a-1', 'a-3']]);
    expect((await store.get('a'))?.value).toEqual([2, 0, 1, 3]);
  });

  it('the same input twice in one batch (delivered again while its first copy waited) is folded once, both copies acked with the write', async () => {
    const gate = deferred();
    const writes: string[][] = [];
    const { instance, store } = setup((inner) =>
      wrap(inner, {
        add: async (write) => {
          writes.push([...write.inputIds]);
          await gate.promise;
          return inner.add(write);
        },
      }),
    );
    const { send } = instance({ size: 10 });
    const inputs = [reading('a', 0), reading('a', 1), reading('a', 2), reading('a', 1), reading('a', 0)];
    send(inputs[0]!);
    await settle();
    send(...inputs.slice(1));
    await settle();
    expect(inputs.map((input) => input.settlements)).toEqual([0, 0, 0, 0, 0]); // nothing acked before its write is durable
    gate.resolve();
    await settle();
    expect(writes).toEqual([['a-0'], ['a-1', 'a-2']]);
    expect(inputs.map((input) => input.outcome)).toEqual(['acked', 'acked', 'acked', 'acked', 'acked']);
    expect((await store.get('a'))?.value).toEqual([0, 1, 2]);
  });

  it('an input of a group that has completed, delivered again: the store names it a duplicate, it is acked and not folded into the next group', async () => {
    const { instance, store } = setup();
    const { output, send } = instance({ size: 2 });
    send(reading('a', 1), reading('a', 2));
    await settle();
    expect(output.bodies).toEqual([[1, 2]]);
    const again = reading('a', 1);
    send(again, reading('a', 3));
    await settle();
    expect(again.outcome).toBe('acked');
    expect((await store.get('a'))?.value).toEqual([3]);
  });

  it('a strategy that throws for one input of a batch fails that input only', async () => {
    const { instance, store } = setup();
    const picky = (previous: number[] | undefined, next: { body: Reading }): number[] => {
      if (next.body.value === 13) throw new InterchangeError('UNLUCKY', 'no 13', { permanent: true });
      return collectValues(previous, next);
    };
    const { send } = instance({ size: 10, strategy: picky });
    const inputs = [reading('a', 12), reading('a', 13), reading('a', 14)];
    send(...inputs);
    await settle();
    expect(inputs[0]!.outcome).toBe('acked');
    expect(inputs[2]!.outcome).toBe('acked');
    expect(inputs[1]!.outcome).not.toBe('acked');
    expect((await store.get('a'))?.value).toEqual([12, 14]);
  });

  it('acks a redelivered input without folding it twice', async () => {
    const { instance, store } = setup();
    const { output, send } = instance({ size: 3 });
    const again = reading('a', 1);
    send(reading('a', 1), reading('a', 2));
    await settle();
    send(again);
    await settle();
    expect(again.outcome).toBe('acked');
    expect((await store.get('a'))?.value).toEqual([1, 2]);
    send(reading('a', 3));
    await settle();
    expect(output.bodies).toEqual([[1, 2, 3]]);
  });

  it('two instances on one store, inputs of one key interleaved: each input in exactly one aggregate, one emission per group', async () => {
    const { instance, store } = setup();
    const first = instance({ size: 3 });
    const second = instance({ size: 3 });
    const inputs = [1, 2, 3, 4, 5, 6, 7, 8, 9].map((value) => reading('a', value));
    for (const [index, input] of inputs.entries()) (index % 2 === 0 ? first : second).send(input);
    await settle(10);
    expect(inputs.every((i) => i.outcome === 'acked')).toBe(true);
    const aggregates = [...first.output.deliveries, ...second.output.deliveries];
    expect(aggregates).toHaveLength(3);
    expect(aggregates.flatMap((d) => d.message.body).sort((x, y) => x - y)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(new Set(aggregates.map((d) => d.message.id)).size).toBe(3);
    first.output.ackAll();
    second.output.ackAll();
    await settle();
    expect(await store.counts()).toEqual({ open: 0, completed: 0 });
  });

  it('reads again and retries on a conflict', async () => {
    let conflicts = 2;
    let adds = 0;
    const { instance } = setup((inner) =>
      wrap(inner, {
        add: (write) => {
          adds += 1;
          if (conflicts-- > 0) return Promise.resolve({ kind: 'conflict' });
          return inner.add(write);
        },
      }),
    );
    const { output, send } = instance({ size: 1 });
    const input = reading('a', 1);
    send(input);
    await settle();
    expect(adds).toBe(3);
    expect(input.outcome).toBe('acked');
    expect(output.bodies).toEqual([[1]]);
  });

  it('fails the input as transient once conflicts exceed the bound', async () => {
    let adds = 0;
    const { instance } = setup((inner) =>
      wrap(inner, {
        add: () => {
          adds += 1;
          return Promise.resolve({ kind: 'conflict' });
        },
      }),
    );
    const { harness, output, send } = instance({ size: 1 });
    const input = reading('a', 1);
    send(input);
    await settle(20);
    expect(adds).toBe(MAX_CONFLICT_RETRIES);
    expect(input.outcome).toBe('nacked');
    expect(harness.failures[0]!.error).toMatchObject({ code: 'AGGREGATE_CONFLICT', permanent: false });
    expect(output.deliveries).toEqual([]);
  });

  it('never acks an input the store failed on: the route policy rejects or retries it', async () => {
    let failing = 1;
    const { instance, scheduler, store } = setup((inner) =>
      wrap(inner, {
        add: (write) => (failing-- > 0 ? Promise.reject(new Error('connection lost')) : inner.add(write)),
      }),
    );
    // Rejected (the harness default: like rejectToSource).
    const rejecting = instance({ size: 2 });
    const lost = reading('a', 1);
    rejecting.send(lost);
    await settle();
    expect(lost.outcome).toBe('nacked');
    expect(rejecting.harness.failures[0]!.error).toMatchObject({ code: 'AGGREGATE_STORE_FAILED', permanent: false, cause: new Error('connection lost') });
    expect(await store.counts()).toEqual({ open: 0, completed: 0 });
    // Retried after the policy's delay, on virtual time.
    failing = 1;
    const retrying = instance({ size: 2 }, { failed: () => 100 });
    const flaky = reading('b', 1);
    retrying.send(flaky);
    await settle();
    expect(flaky.settlements).toBe(0);
    await runUntil(scheduler, () => flaky.settlements > 0);
    expect(scheduler.now()).toBe(100);
    expect(flaky.outcome).toBe('acked');
    expect((await store.get('b'))?.inputIds).toEqual(['b-1']);
  });

  it('fails an input whose strategy throws, leaving its group as it was', async () => {
    const { instance, store } = setup();
    const strategy = (previous: number[] | undefined, next: { body: Reading }): number[] => {
      if (next.body.value < 0) throw new Error('negative reading');
      return collectValues(previous, next);
    };
    const { harness, send } = instance({ size: 3, strategy });
    send(reading('a', 1));
    const bad = reading('a', -1);
    send(bad);
    await settle();
    expect(bad.outcome).toBe('nacked');
    expect(harness.failures).toHaveLength(1);
    expect((await store.get('a'))?.value).toEqual([1]);
  });
});

describe('aggregate with a persistent repository: aggregates and recovery', () => {
  it('releases a rejected aggregate; recovery emits it again (attempts 2) and its ack confirms it', async () => {
    const claims: CompletedAggregate<number[]>[] = [];
    const { instance, scheduler, store } = setup((inner) =>
      wrap(inner, {
        claimUnconfirmed: async (leaseMs, limit) => {
          const claimed = await inner.claimUnconfirmed(leaseMs, limit);
          claims.push(...claimed);
          return claimed;
        },
      }),
    );
    const { output, send } = instance({ size: 2 });
    send(reading('a', 1), reading('a', 2));
    await settle();
    expect(output.deliveries).toHaveLength(1);
    output.deliveries[0]!.nack(new Error('broker refused'));
    await runUntil(scheduler, () => output.deliveries.length === 2);
    expect(scheduler.now()).toBe(5_000); // the first recovery tick after the release
    expect(output.messages[1]!.id).toBe(output.messages[0]!.id);
    expect(output.bodies[1]).toEqual([1, 2]);
    expect(claims.map((c) => [c.id, c.attempts])).toEqual([[output.messages[0]!.id, 2]]);
    output.deliveries[1]!.ack();
    await settle();
    expect(await store.counts()).toEqual({ open: 0, completed: 0 });
  });

  it('never emits an aggregate again while its own emission is unsettled, even past its lease', async () => {
    const { instance, scheduler } = setup();
    const { output, send } = instance({ size: 2, leaseMs: 1_000, recoveryIntervalMs: 500 });
    send(reading('a', 1), reading('a', 2));
    await runUntil(scheduler, () => scheduler.now() >= 5_000);
    expect(output.deliveries).toHaveLength(1);
  });

  it('fails an aggregate claimed more than maxRedeliveries times permanently, and confirms it once the error handler settles it', async () => {
    const deadLettered: Delivery[] = [];
    const { instance, scheduler, store } = setup();
    const { harness, output, send } = instance(
      { size: 2, maxRedeliveries: 1 },
      {
        failed: (delivery) => {
          deadLettered.push(delivery);
          delivery.ack(); // what a dead-letter channel does once the dead letter is confirmed
          return undefined;
        },
      },
    );
    send(reading('a', 1), reading('a', 2));
    await settle();
    output.deliveries[0]!.nack(new Error('broker refused'));
    await runUntil(scheduler, () => deadLettered.length > 0);
    expect(output.deliveries).toHaveLength(1);
    expect(harness.failures[0]!.error).toMatchObject({ code: 'AGGREGATE_UNDELIVERABLE', permanent: true });
    expect(deadLettered[0]!.message.body).toEqual([1, 2]);
    await settle();
    expect(await store.counts()).toEqual({ open: 0, completed: 0 });
  });

  it('hands a left-over aggregate past its budget to the route\'s dead-letter channel, with the reason', async () => {
    const scheduler = new VirtualTimeScheduler();
    const store = new InMemoryPersistentAggregationRepository<number[]>({ now: () => scheduler.now() });
    const id = derivedMessageId(['x-1', 'x-2']);
    const next = { key: 'x', value: [1, 2], inputIds: ['x-1', 'x-2'], correlationId: 'x-1', firstAt: 0, lastAt: 0 };
    await store.add({ key: 'x', inputIds: ['x-1', 'x-2'], expectedVersion: 0, next, completion: { id, completedBy: 'size', leaseMs: 0 } });
    for (let claim = 0; claim < 5; claim += 1) await store.claimUnconfirmed(0, 10); // claimed by five publishers that died: attempts 6, the route's claim makes 7
    const app: Integration = createIntegration({
      routes: [from<Reading>('memory:in').deadLetterChannel('memory:dlq').aggregate({ correlate: byDevice, strategy: collectValues, size: 2, repository: store }).to('memory:out')],
      scheduler,
      logger: silentLogger,
    });
    try {
      await app.start();
      const kit = new TestKit(app);
      const dlq = kit.mock<number[]>('memory:dlq');
      const out = kit.mock('memory:out');
      await runUntil(scheduler, () => dlq.received.length > 0, 20);
      expect(out.received).toEqual([]);
      expect(dlq.bodies()).toEqual([[1, 2]]);
      expect(dlq.received[0]!.headers).toMatchObject({ [DeadLetterHeaders.code]: 'AGGREGATE_UNDELIVERABLE' });
      expect(String(dlq.received[0]!.headers[DeadLetterHeaders.error])).toContain('claimed 7 times');
      await settle();
      expect(await store.counts()).toEqual({ open: 0, completed: 0 });
      kit.close();
    } finally {
      await app.stop({ drainTimeoutMs: 100 });
    }
  });

  it('completes a group by its local inactivity timer, waiting out the rest when another instance added to it', async () => {
    const { instance, scheduler, store } = setup();
    const first = instance({ timeoutMs: 1_000 });
    const second = instance({ timeoutMs: 1_000 });
    first.send(reading('a', 1));
    scheduler.schedule(() => second.send(reading('a', 2)), 600);
    await runUntil(scheduler, () => first.output.deliveries.length + second.output.deliveries.length > 0);
    expect(scheduler.now()).toBe(1_600);
    const aggregates = [...first.output.deliveries, ...second.output.deliveries];
    expect(aggregates.map((d) => [d.message.body, d.message.headers.aggregationCompletedBy])).toEqual([[[1, 2], 'timeout']]);
    await runUntil(scheduler, () => scheduler.now() >= 3_000);
    expect(first.output.deliveries.length + second.output.deliveries.length).toBe(1);
    expect(await store.counts()).toEqual({ open: 0, completed: 1 });
  });

  it('completes at start a group whose inactivity passed while its instance was down', async () => {
    const { instance, scheduler, store } = setup();
    const crashed = instance({ timeoutMs: 1_000 });
    crashed.send(reading('a', 1));
    await settle();
    crashed.input.error(new Error('process died')); // the instance goes away without draining
    expect(await store.counts()).toEqual({ open: 1, completed: 0 });
    advanceTo(scheduler, 10_000);
    const survivor = instance({ timeoutMs: 1_000 });
    await settle();
    expect(scheduler.now()).toBe(10_000);
    expect(survivor.output.messages.map((m) => [m.body, m.headers.aggregationCompletedBy])).toEqual([[[1], 'timeout']]);
  });

  it('re-emits an aggregate left unconfirmed by a crashed instance once its lease has ended', async () => {
    const { instance, scheduler, store } = setup();
    const crashedInput = new Subject<Delivery<Reading>>();
    const crashedStep = new Harness({ scheduler }).build(aggregate<Reading, number[]>({ correlate: byDevice, strategy: collectValues, size: 2, repository: store }));
    const crashedOutput = collect(crashedInput.pipe(crashedStep));
    crashedInput.next(reading('a', 1).delivery);
    crashedInput.next(reading('a', 2).delivery);
    await settle();
    expect(crashedOutput.deliveries).toHaveLength(1);
    crashedInput.error(new Error('process died')); // its aggregate is never settled
    const survivor = instance({ size: 2 });
    await runUntil(scheduler, () => survivor.output.deliveries.length > 0);
    expect(scheduler.now()).toBe(30_000); // the default lease
    expect(survivor.output.messages[0]!.id).toBe(crashedOutput.messages[0]!.id);
    survivor.output.ackAll();
    await settle();
    expect(await store.counts()).toEqual({ open: 0, completed: 0 });
  });
});

describe('aggregate with a persistent repository: declaration and stop', () => {
  const repository = new InMemoryPersistentAggregationRepository<number[]>();

  it("refuses settleInputs 'on-completion' and onStop 'reject' where the route is declared", () => {
    expect(() => aggregate<Reading, number[]>({ correlate: byDevice, strategy: collectValues, size: 2, repository, settleInputs: 'on-completion' })).toThrow(RouteDefinitionError);
    expect(() => aggregate<Reading, number[]>({ correlate: byDevice, strategy: collectValues, size: 2, repository, onStop: 'reject' })).toThrow(RouteDefinitionError);
    expect(() => aggregate<Reading, number[]>({ correlate: byDevice, strategy: collectValues, size: 2, repository, recoveryIntervalMs: 0 })).toThrow(RouteDefinitionError);
    expect(() => aggregate<Reading, number[]>({ correlate: byDevice, strategy: collectValues, size: 2, repository, settleInputs: 'on-arrival' })).not.toThrow();
  });

  it('keeps open groups in the store when the source completes, and stops its timers', async () => {
    const { instance, scheduler, store } = setup();
    const { input, output, send } = instance({ size: 3, timeoutMs: 1_000 });
    const inputs = [reading('a', 1), reading('b', 1)];
    send(...inputs);
    input.complete();
    await settle();
    expect(inputs.map((i) => i.outcome)).toEqual(['acked', 'acked']);
    expect(output.completed).toBe(true);
    expect(output.deliveries).toEqual([]);
    expect(scheduler.actions).toEqual([]);
    expect(await store.counts()).toEqual({ open: 2, completed: 0 });
  });

  it("with onStop 'complete', completes the groups it wrote and completes once their aggregates are settled", async () => {
    const { instance, store } = setup();
    const { input, output, send } = instance({ size: 3, onStop: 'complete' });
    send(reading('a', 1), reading('a', 2));
    input.complete();
    await settle();
    expect(output.messages.map((m) => [m.body, m.headers.aggregationCompletedBy])).toEqual([[[1, 2], 'stop']]);
    expect(output.completed).toBe(false);
    output.ackAll();
    await settle();
    expect(output.completed).toBe(true);
    expect(await store.counts()).toEqual({ open: 0, completed: 0 });
  });

  it('a throwing correlate fails that input only', async () => {
    const { instance } = setup();
    const { harness, output, send } = instance({
      size: 1,
      correlate: (m) => {
        if (m.body.value < 0) throw new InterchangeError('NO_KEY', 'no device');
        return m.body.device;
      },
    });
    const bad = reading('a', -1);
    send(bad, reading('a', 1));
    await settle();
    expect(bad.outcome).toBe('nacked');
    expect(harness.failures.map((f) => (f.error as InterchangeError).code)).toEqual(['NO_KEY']);
    expect(output.bodies).toEqual([[1]]);
  });
});
