import fc from 'fast-check';
import { map, type Observable } from 'rxjs';
import { TestScheduler } from 'rxjs/testing';
import { describe, expect, it } from 'vitest';
import { aggregate, type AggregateOptions } from '../../patterns/aggregate.ts';
import { InMemoryAggregationRepository } from '../../src/stores/aggregation-repository.ts';
import { InterchangeError, RouteDefinitionError, silentLogger, type Delivery } from '../../src/core/index.ts';
import { drive, Harness, source, type Source } from './harness.ts';

interface Reading {
  readonly device: string;
  readonly value: number;
}

const reading = (device: string, value: number): Source<Reading> => source({ device, value }, { id: `${device}-${value}` });
const byDevice = (m: { body: Reading }): string => m.body.device;
const collectValues = (previous: number[] | undefined, next: { body: Reading }): number[] => [...(previous ?? []), next.body.value];

function testScheduler(): TestScheduler {
  return new TestScheduler((actual, expected) => expect(actual).toEqual(expected));
}

/** What a marble test compares: the aggregated values and why the group completed. */
const summary = (stream: Observable<Delivery<number[]>>): Observable<string> =>
  stream.pipe(map((d) => `${String(d.message.headers.aggregationKey)}:${d.message.body.join(',')}:${String(d.message.headers.aggregationCompletedBy)}`));

describe('aggregate', () => {
  it('needs a completion condition', () => {
    expect(() => aggregate<Reading, number[]>({ correlate: byDevice, strategy: collectValues })).toThrow(RouteDefinitionError);
  });

  it('completes a group by size, with the inputs in arrival order and aggregation headers', () => {
    const harness = new Harness();
    const { output, send } = drive(harness.build(aggregate<Reading, number[]>({ correlate: byDevice, strategy: collectValues, size: 3 })));
    send(reading('a', 1), reading('a', 2));
    expect(output.deliveries).toEqual([]);
    send(reading('a', 3), reading('a', 4));
    expect(output.bodies).toEqual([[1, 2, 3]]);
    expect(output.messages[0]!.headers).toMatchObject({ aggregationKey: 'a', aggregationSize: 3, aggregationCompletedBy: 'size', causationId: 'a-1' });
  });

  it('derives the aggregate id from its inputs: the same inputs give the same id', () => {
    const harness = new Harness();
    const { output, send } = drive(harness.build(aggregate<Reading, number[]>({ correlate: byDevice, strategy: collectValues, size: 2 })));
    send(reading('a', 1), reading('a', 2), reading('a', 1), reading('a', 2), reading('a', 2), reading('a', 1));
    const [first, again, reversed] = output.messages.map((m) => m.id);
    expect(first).toBe(again);
    expect(first).not.toBe(reversed);
  });

  it('keeps correlation keys apart', () => {
    const harness = new Harness();
    const { output, send } = drive(harness.build(aggregate<Reading, number[]>({ correlate: byDevice, strategy: collectValues, size: 2 })));
    send(reading('a', 1), reading('b', 10), reading('b', 20), reading('a', 2), reading('c', 100));
    expect(output.messages.map((m) => [m.headers.aggregationKey, m.body])).toEqual([
      ['b', [10, 20]],
      ['a', [1, 2]],
    ]);
  });

  it('completes by predicate on the aggregate and its size', () => {
    const harness = new Harness();
    const { output, send } = drive(
      harness.build(
        aggregate<Reading, number>({ correlate: byDevice, strategy: (sum = 0, m) => sum + m.body.value, predicate: (sum) => sum >= 10 }),
      ),
    );
    send(reading('a', 4), reading('a', 5));
    expect(output.deliveries).toEqual([]);
    send(reading('a', 1), reading('a', 7));
    expect(output.bodies).toEqual([10]);
    expect(output.messages[0]!.headers).toMatchObject({ aggregationCompletedBy: 'predicate', aggregationSize: 3 });
  });

  it('settles every input only when the aggregate is acked', () => {
    const harness = new Harness();
    const { output, send } = drive(harness.build(aggregate<Reading, number[]>({ correlate: byDevice, strategy: collectValues, size: 3 })));
    const inputs = [reading('a', 1), reading('a', 2), reading('a', 3)];
    send(...inputs);
    expect(output.deliveries).toHaveLength(1);
    expect(inputs.map((i) => i.settlements)).toEqual([0, 0, 0]);
    output.deliveries[0]!.ack();
    output.deliveries[0]!.ack();
    expect(inputs.map((i) => [i.acks, i.nacks])).toEqual([
      [1, 0],
      [1, 0],
      [1, 0],
    ]);
  });

  it('rejects every input with the reason the aggregate was rejected with', () => {
    const harness = new Harness();
    const { output, send } = drive(harness.build(aggregate<Reading, number[]>({ correlate: byDevice, strategy: collectValues, size: 2 })));
    const inputs = [reading('a', 1), reading('a', 2)];
    send(...inputs);
    const reason = new Error('downstream refused the batch');
    output.deliveries[0]!.nack(reason);
    expect(inputs.map((i) => [i.acks, i.nacks, i.reasons[0]])).toEqual([
      [0, 1, reason],
      [0, 1, reason],
    ]);
  });

  it('completes a group after the inactivity timeout, on virtual time', () => {
    const scheduler = testScheduler();
    scheduler.run(({ hot, expectObservable }) => {
      const harness = new Harness({ scheduler });
      const step = harness.build(aggregate<Reading, number[]>({ correlate: byDevice, strategy: collectValues, timeoutMs: 50 }));
      const values = { a: reading('a', 1).delivery, b: reading('a', 2).delivery, c: reading('a', 3).delivery };
      // a at 0, b at 40, c at 141: the timer restarts at each message of the group.
      const input = hot('a 39ms b 100ms c', values);
      expectObservable(summary(input.pipe(step))).toBe('90ms x 100ms y', { x: 'a:1,2:timeout', y: 'a:3:timeout' });
    });
  });

  it('runs one inactivity timer per correlation key', () => {
    const scheduler = testScheduler();
    scheduler.run(({ hot, expectObservable }) => {
      const harness = new Harness({ scheduler });
      const step = harness.build(aggregate<Reading, number[]>({ correlate: byDevice, strategy: collectValues, timeoutMs: 30 }));
      const values = { a: reading('a', 1).delivery, b: reading('b', 1).delivery, c: reading('a', 2).delivery };
      // a at 0, b at 10, a again at 20: b times out at 40, a at 50.
      const input = hot('a 9ms b 9ms c', values);
      expectObservable(summary(input.pipe(step))).toBe('40ms x 9ms y', { x: 'b:1:timeout', y: 'a:1,2:timeout' });
    });
  });

  it('completes by size before the timeout and does not emit the group again when the timer would have fired', () => {
    const scheduler = testScheduler();
    scheduler.run(({ hot, expectObservable }) => {
      const harness = new Harness({ scheduler });
      const step = harness.build(aggregate<Reading, number[]>({ correlate: byDevice, strategy: collectValues, size: 2, timeoutMs: 30 }));
      const values = { a: reading('a', 1).delivery, b: reading('a', 2).delivery, c: reading('a', 3).delivery };
      const input = hot('a 9ms b 9ms c', values);
      expectObservable(summary(input.pipe(step))).toBe('10ms x 39ms y', { x: 'a:1,2:size', y: 'a:3:timeout' });
    });
  });

  it("emits open groups when the source completes (onStop 'complete'), then completes", () => {
    const scheduler = testScheduler();
    scheduler.run(({ cold, expectObservable }) => {
      const harness = new Harness({ scheduler });
      const step = harness.build(aggregate<Reading, number[]>({ correlate: byDevice, strategy: collectValues, size: 5, timeoutMs: 1000 }));
      const values = { a: reading('a', 1).delivery, b: reading('b', 1).delivery, c: reading('a', 2).delivery };
      const input = cold('a b c 5ms |', values);
      expectObservable(summary(input.pipe(step))).toBe('8ms (xy|)', { x: 'a:1,2:stop', y: 'b:1:stop' });
    });
  });

  it("rejects the inputs of open groups when the source completes (onStop 'reject'), emitting nothing", () => {
    const harness = new Harness();
    const { input, output, send } = drive(harness.build(aggregate<Reading, number[]>({ correlate: byDevice, strategy: collectValues, size: 3, onStop: 'reject' })));
    const held = [reading('a', 1), reading('b', 1), reading('a', 2)];
    const done = [reading('c', 1), reading('c', 2), reading('c', 3)];
    send(...held, ...done);
    input.complete();
    expect(output.bodies).toEqual([[1, 2, 3]]);
    expect(output.completed).toBe(true);
    expect(held.map((i) => [i.acks, i.nacks])).toEqual([
      [0, 1],
      [0, 1],
      [0, 1],
    ]);
    expect(held[0]!.reasons[0]).toBeInstanceOf(InterchangeError);
    expect((held[0]!.reasons[0] as InterchangeError).code).toBe('AGGREGATOR_STOPPED');
    expect(done.map((i) => i.settlements)).toEqual([0, 0, 0]);
  });

  it('completes once its source completed and no group is open', () => {
    const harness = new Harness();
    const { input, output, send } = drive(harness.build(aggregate<Reading, number[]>({ correlate: byDevice, strategy: collectValues, size: 1 })));
    send(reading('a', 1));
    input.complete();
    expect(output.bodies).toEqual([[1]]);
    expect(output.completed).toBe(true);
  });

  it('fails only the input whose strategy throws; its group is left as it was', () => {
    const harness = new Harness();
    const boom = new Error('bad value');
    const options: AggregateOptions<Reading, number[]> = {
      correlate: byDevice,
      strategy: (previous, next) => {
        if (next.body.value < 0) throw boom;
        return collectValues(previous, next);
      },
      size: 3,
    };
    const { output, send } = drive(harness.build(aggregate(options)));
    const bad = reading('a', -1);
    const inputs = [reading('a', 1), bad, reading('a', 2), reading('a', 3)];
    send(...inputs);
    expect(output.bodies).toEqual([[1, 2, 3]]);
    expect(harness.failures.map((f) => [f.delivery.message.id, f.error])).toEqual([[bad.message.id, boom]]);
    expect(bad.nacks).toBe(1);
    output.ackAll();
    expect(inputs.map((i) => [i.acks, i.nacks])).toEqual([
      [1, 0],
      [0, 1],
      [1, 0],
      [1, 0],
    ]);
  });

  it('fails only the input whose correlate throws', () => {
    const harness = new Harness();
    const { output, send } = drive(
      harness.build(
        aggregate<Reading, number[]>({
          correlate: (m) => {
            if (m.body.device === '') throw new Error('no device');
            return m.body.device;
          },
          strategy: collectValues,
          size: 2,
        }),
      ),
    );
    const bad = reading('', 0);
    send(reading('a', 1), bad, reading('a', 2));
    expect(output.bodies).toEqual([[1, 2]]);
    expect(bad.nacks).toBe(1);
    expect(harness.failures).toHaveLength(1);
  });

  it('fails only the input whose predicate throws; the group is left without it', () => {
    const harness = new Harness();
    const { output, send } = drive(
      harness.build(
        aggregate<Reading, number[]>({
          correlate: byDevice,
          strategy: collectValues,
          predicate: (values) => {
            if (values.includes(13)) throw new Error('unlucky');
            return values.length === 3;
          },
        }),
      ),
    );
    const bad = reading('a', 13);
    const good = [reading('a', 1), reading('a', 2), reading('a', 3)];
    send(good[0]!, bad, good[1]!, good[2]!);
    expect(output.bodies).toEqual([[1, 2, 3]]);
    expect(output.messages[0]!.headers.aggregationSize).toBe(3);
    expect(bad.nacks).toBe(1);
    output.ackAll();
    expect(good.map((i) => [i.acks, i.nacks])).toEqual([
      [1, 0],
      [1, 0],
      [1, 0],
    ]);
    expect(bad.acks).toBe(0);
  });

  it('retries a failed input after the delay the error handler asked for, on the step scheduler', () => {
    const scheduler = testScheduler();
    scheduler.run(({ hot, expectObservable, flush }) => {
      let failures = 0;
      const harness = new Harness({ scheduler, failed: () => 20 });
      const step = harness.build(
        aggregate<Reading, number[]>({
          correlate: byDevice,
          strategy: (previous, next) => {
            if (next.body.value === 2 && failures++ === 0) throw new Error('transient');
            return collectValues(previous, next);
          },
          size: 2,
        }),
      );
      const values = { a: reading('a', 1).delivery, b: reading('a', 2).delivery };
      expectObservable(summary(hot('a 4ms b', values).pipe(step))).toBe('25ms x', { x: 'a:1,2:size' });
      flush();
      expect(harness.failures.map((f) => f.attempt)).toEqual([1]);
    });
  });

  it("stops groups opened by a retry that ran after the source completed (onStop 'complete')", () => {
    const scheduler = testScheduler();
    scheduler.run(({ cold, expectObservable }) => {
      let failures = 0;
      const harness = new Harness({ scheduler, failed: () => 20 });
      const step = harness.build(
        aggregate<Reading, number[]>({
          correlate: byDevice,
          strategy: (previous, next) => {
            if (failures++ === 0) throw new Error('transient');
            return collectValues(previous, next);
          },
          size: 2,
        }),
      );
      const values = { a: reading('a', 1).delivery };
      expectObservable(summary(cold('a|', values).pipe(step))).toBe('20ms (x|)', { x: 'a:1:stop' });
    });
  });

  it('stores open groups in the given repository and leaves it empty once they complete', () => {
    const harness = new Harness();
    const repository = new InMemoryAggregationRepository<number[]>();
    const { output, send } = drive(harness.build(aggregate<Reading, number[]>({ correlate: byDevice, strategy: collectValues, size: 2, repository })));
    send(reading('a', 1), reading('b', 1));
    expect([...repository.keys()].sort()).toEqual(['a', 'b']);
    expect(repository.get('a')?.value).toEqual([1]);
    send(reading('a', 2));
    expect([...repository.keys()]).toEqual(['b']);
    expect(output.bodies).toEqual([[1, 2]]);
  });

  it('property: every input lands in exactly one aggregate, in order per key; every input settles exactly once, as its aggregate', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ key: fc.constantFrom('a', 'b', 'c', 'd'), value: fc.integer() }), { maxLength: 40 }),
        fc.integer({ min: 1, max: 6 }),
        fc.array(fc.boolean(), { minLength: 40, maxLength: 40 }),
        (items, size, acceptances) => {
          const harness = new Harness();
          const { input, output, send } = drive(harness.build(aggregate<Reading, string[]>({ correlate: byDevice, strategy: (ids = [], m) => [...ids, `${m.body.device}#${m.body.value}`], size })));
          const inputs = items.map((item, index) => source<Reading>({ device: item.key, value: index }, { id: `in-${index}` }));
          send(...inputs);
          input.complete();
          expect(output.completed).toBe(true);

          // Nothing lost, nothing duplicated, nothing mixed across keys.
          const aggregated = output.bodies.flat();
          expect(aggregated.slice().sort()).toEqual(inputs.map((i) => `${i.message.body.device}#${i.message.body.value}`).sort());
          for (const delivery of output.deliveries) {
            const members = delivery.message.body;
            expect(members.length).toBeLessThanOrEqual(size);
            expect(new Set(members.map((member) => member.split('#')[0])).size).toBe(1);
            const indexes = members.map((member) => Number(member.split('#')[1]));
            expect(indexes).toEqual([...indexes].sort((x, y) => x - y));
          }

          // Settle each aggregate either way; each input follows its aggregate, exactly once.
          const verdict = new Map<string, boolean>();
          output.deliveries.forEach((delivery, index) => {
            const accepted = acceptances[index] ?? true;
            for (const member of delivery.message.body) verdict.set(member, accepted);
            if (accepted) delivery.ack();
            else delivery.nack(new Error('refused'));
          });
          for (const item of inputs) {
            expect(item.settlements).toBe(1);
            expect(item.acks).toBe(verdict.get(`${item.message.body.device}#${item.message.body.value}`) === true ? 1 : 0);
          }
        },
      ),
      { numRuns: 200 },
    );
  });

  describe("settleInputs: 'on-arrival'", () => {
    const onArrival = (extra: Partial<AggregateOptions<Reading, number[]>> = {}): AggregateOptions<Reading, number[]> => ({
      correlate: byDevice,
      strategy: collectValues,
      size: 3,
      settleInputs: 'on-arrival',
      ...extra,
    });

    it('acks each input as soon as it has joined its group, before the group completes', () => {
      const harness = new Harness();
      const { output, send } = drive(harness.build(aggregate(onArrival())));
      const inputs = [reading('a', 1), reading('b', 1), reading('a', 2)];
      send(...inputs);
      expect(output.deliveries).toEqual([]);
      expect(inputs.map((i) => i.outcome)).toEqual(['acked', 'acked', 'acked']);
    });

    it('still completes by size with the same id and headers as on completion', () => {
      const harness = new Harness();
      const { output, send } = drive(harness.build(aggregate(onArrival())));
      send(reading('a', 1), reading('a', 2), reading('a', 3));
      expect(output.bodies).toEqual([[1, 2, 3]]);
      expect(output.messages[0]!.headers).toMatchObject({ aggregationKey: 'a', aggregationSize: 3, aggregationCompletedBy: 'size', causationId: 'a-1' });
      const reference = drive(new Harness().build(aggregate<Reading, number[]>({ correlate: byDevice, strategy: collectValues, size: 3 })));
      reference.send(reading('a', 1), reading('a', 2), reading('a', 3));
      expect(output.messages[0]!.id).toBe(reference.output.messages[0]!.id);
    });

    it('holds no inputs unsettled: more open groups than a prefetch window still all complete', () => {
      // 50 devices × 10 per group through a window of 20 unsettled inputs: with on-completion this stalls
      // at 20 open inputs; on arrival every input frees its slot at once.
      const harness = new Harness();
      const { output, input } = drive(harness.build(aggregate<Reading, number[]>({ correlate: byDevice, strategy: collectValues, size: 10, settleInputs: 'on-arrival' })));
      const window = 20;
      const pending: Source<Reading>[] = [];
      for (let round = 0; round < 10; round += 1) for (let device = 0; device < 50; device += 1) pending.push(reading(`d${device}`, round));
      let unsettled: Source<Reading>[] = [];
      let sent = 0;
      while (sent < pending.length) {
        unsettled = unsettled.filter((item) => item.settlements === 0);
        if (unsettled.length >= window) break; // a stalled window: nothing more could be admitted
        const next = pending[sent]!;
        sent += 1;
        unsettled.push(next);
        input.next(next.delivery);
      }
      expect(sent).toBe(500);
      expect(output.deliveries).toHaveLength(50);
      expect(pending.every((item) => item.outcome === 'acked')).toBe(true);
    });

    it('with on-completion, the same window stalls (the known deadlock on-arrival avoids)', () => {
      const harness = new Harness();
      const { input } = drive(harness.build(aggregate<Reading, number[]>({ correlate: byDevice, strategy: collectValues, size: 10 })));
      let unsettled: Source<Reading>[] = [];
      let sent = 0;
      for (let round = 0; round < 10 && unsettled.length < 20; round += 1) {
        for (let device = 0; device < 50; device += 1) {
          unsettled = unsettled.filter((item) => item.settlements === 0);
          if (unsettled.length >= 20) break;
          const next = reading(`d${device}`, round);
          sent += 1;
          unsettled.push(next);
          input.next(next.delivery);
        }
      }
      expect(sent).toBe(20);
    });

    it('an aggregate acked or rejected downstream settles no input again; a rejection is logged as a loss', () => {
      const warnings: string[] = [];
      const log = { ...silentLogger, warn: (message: string) => void warnings.push(message) };
      const harness = new Harness({ log });
      const { output, send } = drive(harness.build(aggregate(onArrival({ size: 2 }))));
      const inputs = [reading('a', 1), reading('a', 2), reading('b', 1), reading('b', 2)];
      send(...inputs);
      output.deliveries[0]!.ack();
      output.deliveries[1]!.nack(new Error('downstream refused'));
      expect(inputs.map((i) => [i.acks, i.nacks])).toEqual([
        [1, 0],
        [1, 0],
        [1, 0],
        [1, 0],
      ]);
      expect(warnings).toEqual([expect.stringContaining('lost')]);
    });

    it('a failing strategy still fails (not acks) that input', () => {
      const harness = new Harness();
      const strategy = (previous: number[] | undefined, next: { body: Reading }): number[] => {
        if (next.body.value < 0) throw new Error('negative');
        return collectValues(previous, next);
      };
      const { send } = drive(harness.build(aggregate(onArrival({ strategy }))));
      const bad = reading('a', -1);
      const good = reading('a', 1);
      send(good, bad);
      expect([good.outcome, bad.outcome]).toEqual(['acked', 'nacked']);
    });

    it("completes open groups on stop (onStop 'complete'); with onStop 'reject' drops them, logged, as their inputs are already acked", () => {
      const completeRun = drive(new Harness().build(aggregate(onArrival({ size: 5 }))));
      completeRun.send(reading('a', 1), reading('a', 2));
      completeRun.input.complete();
      expect(completeRun.output.bodies).toEqual([[1, 2]]);
      expect(completeRun.output.completed).toBe(true);

      const warnings: string[] = [];
      const log = { ...silentLogger, warn: (message: string) => void warnings.push(message) };
      const rejectRun = drive(new Harness({ log }).build(aggregate(onArrival({ size: 5, onStop: 'reject' }))));
      const held = [reading('a', 1), reading('a', 2)];
      rejectRun.send(...held);
      rejectRun.input.complete();
      expect(rejectRun.output.bodies).toEqual([]);
      expect(rejectRun.output.completed).toBe(true);
      expect(held.map((i) => [i.acks, i.nacks])).toEqual([
        [1, 0],
        [1, 0],
      ]);
      expect(warnings).toEqual([expect.stringContaining('dropped')]);
    });

    it('completes by inactivity timeout as before', () => {
      const scheduler = testScheduler();
      scheduler.run(({ hot, expectObservable }) => {
        const harness = new Harness({ scheduler });
        const step = harness.build(aggregate(onArrival({ size: undefined, timeoutMs: 50 })));
        const values = { a: reading('a', 1).delivery, b: reading('a', 2).delivery };
        expectObservable(summary(hot('a 9ms b', values).pipe(step))).toBe('60ms x', { x: 'a:1,2:timeout' });
      });
    });
  });
});
