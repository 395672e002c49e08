import { VirtualTimeScheduler } from 'rxjs';
import { afterEach, describe, expect, it } from 'vitest';
import { sample, type SampleOptions } from '../../patterns/sample.ts';
import { createIntegration, from, RouteDefinitionError, silentLogger, type Integration } from '../../facade/index.ts';
import { TestKit } from '../../facade/testing/index.ts';
import { drive, Harness, settle, source, sources, type Source } from './harness.ts';

/** Runs virtual time up to `at`. */
function advanceTo(scheduler: VirtualTimeScheduler, at: number): void {
  scheduler.schedule(() => {}, at - scheduler.now());
  scheduler.maxFrames = at;
  scheduler.flush();
}

function setup<T = number>(options: SampleOptions<T>, harnessOptions: ConstructorParameters<typeof Harness>[0] = {}) {
  const scheduler = new VirtualTimeScheduler();
  const harness = new Harness({ scheduler, ...harnessOptions });
  const driven = drive(harness.build(sample<T>(options)));
  return { scheduler, harness, ...driven };
}

/** Sources with distinct ids (`n1`, `n2`, …): a repeated id is a redelivery. */
const numbered = (...ns: number[]): Source<number>[] => ns.map((n) => source(n, { id: `n${n}` }));
const keyed = (key: string, n: number): Source<{ key: string; n: number }> => source({ key, n }, { id: `${key}${n}` });

describe('sample', () => {
  it('needs exactly one of intervalMs and every, each positive, where the route is declared', () => {
    expect(() => sample({} as SampleOptions<number>)).toThrow(RouteDefinitionError);
    expect(() => sample({ intervalMs: 10, every: 2 } as unknown as SampleOptions<number>)).toThrow(RouteDefinitionError);
    expect(() => sample({ intervalMs: 0 })).toThrow(RouteDefinitionError);
    expect(() => sample({ every: 1.5 })).toThrow(RouteDefinitionError);
    expect(() => sample({ every: 2, maxKeys: 0 })).toThrow(RouteDefinitionError);
  });

  it('passes the first message, then none until intervalMs has passed since the last one passed', () => {
    const { scheduler, harness, output, send } = setup({ intervalMs: 1_000 });
    send(...numbered(1, 2));
    advanceTo(scheduler, 999);
    send(...numbered(3));
    advanceTo(scheduler, 1_000);
    send(...numbered(4, 5));
    advanceTo(scheduler, 1_500);
    send(...numbered(6));
    advanceTo(scheduler, 2_000);
    send(...numbered(7));
    expect(output.bodies).toEqual([1, 4, 7]);
    expect(harness.counts.get('sampled-out')).toBe(4);
  });

  it('every: n passes the first message of every n', () => {
    const { harness, output, send } = setup({ every: 3 });
    send(...sources([1, 2, 3, 4, 5, 6, 7]));
    expect(output.bodies).toEqual([1, 4, 7]);
    expect(harness.counts.get('sampled-out')).toBe(4);
  });

  it('samples per key, independently', () => {
    const { scheduler, output, send } = setup<{ key: string; n: number }>({ intervalMs: 100, key: (m) => m.body.key });
    send(keyed('a', 1), keyed('b', 1), keyed('a', 2), keyed('b', 2));
    advanceTo(scheduler, 100);
    send(keyed('b', 3), keyed('a', 3));
    expect(output.messages.map((m) => m.id)).toEqual(['a1', 'b1', 'b3', 'a3']);
  });

  it('forgets the least recently seen key beyond maxKeys: its next message passes', () => {
    const { output, send } = setup<{ key: string; n: number }>({ every: 10, key: (m) => m.body.key, maxKeys: 2 });
    send(keyed('a', 1), keyed('b', 1), keyed('a', 2)); // a2 sampled out: a is remembered
    send(keyed('c', 1)); // b (least recently seen) is forgotten
    send(keyed('a', 3), keyed('b', 2));
    expect(output.messages.map((m) => m.id)).toEqual(['a1', 'b1', 'c1', 'b2']);
  });

  it('acks a sampled-out message at once as filtered; a passed one settles as its output does', () => {
    const { harness, output, send } = setup({ every: 2 });
    const inputs = sources([1, 2]);
    send(...inputs);
    expect(inputs.map((i) => i.outcome)).toEqual(['pending', 'acked']);
    expect(harness.filtered.map((d) => d.message.body)).toEqual([2]);
    output.deliveries[0]!.nack(new Error('downstream refused'));
    expect(inputs[0]!.outcome).toBe('nacked');
  });

  it('lets the redelivery of the message it passed through again (its first pass failed downstream)', () => {
    for (const options of [{ intervalMs: 60_000 }, { every: 3 }] as const) {
      const { scheduler, harness, output, send } = setup<number>(options);
      const [first] = sources([1]);
      send(first!);
      output.deliveries[0]!.nack(new Error('downstream failed'));
      expect(first!.outcome).toBe('nacked');
      advanceTo(scheduler, 1_000);
      const again = source(1, { id: first!.message.id }); // the broker redelivers it
      const other = source(2);
      send(again, other);
      expect(output.bodies).toEqual([1, 1]);
      expect([again.outcome, other.outcome]).toEqual(['pending', 'acked']);
      expect(harness.counts.get('sampled-out')).toBe(1);
    }
  });

  it('fails the message whose key function throws, and only that one', () => {
    const { harness, output, send } = setup<{ key: string; n: number }>({
      every: 5,
      key: (m) => {
        if (m.body.key === 'bad') throw new Error('no key');
        return m.body.key;
      },
    });
    const bad = keyed('bad', 1);
    send(keyed('a', 1), bad, keyed('b', 1));
    expect(output.messages.map((m) => m.id)).toEqual(['a1', 'b1']);
    expect(harness.failures.map((f) => [f.delivery.message.id, (f.error as Error).message])).toEqual([['bad1', 'no key']]);
    expect(bad.outcome).toBe('nacked');
    expect(harness.counts.get('sampled-out')).toBeUndefined();
  });

  it('holds nothing: it completes as soon as its source completes', () => {
    const { output, send, input } = setup({ intervalMs: 1_000 });
    send(...sources([1, 2]));
    input.complete();
    expect([output.bodies, output.completed]).toEqual([[1], true]);
  });
});

describe('sample in the DSL', () => {
  it('is a sample step that sends nowhere; its options are checked where the route is declared', () => {
    const [step] = from<number>('memory:hA-in').sample({ intervalMs: 1_000 }).definition().steps;
    expect([step?.id, step?.kind, step?.sends, step?.sendsTo]).toEqual(['sample-1', 'sample', false, []]);
    expect(() => from<number>('memory:hA-in').sample({ every: 0 })).toThrow(RouteDefinitionError);
  });
});

describe('sample through the runtime', () => {
  let app: Integration | undefined;
  let kit: TestKit | undefined;
  afterEach(async () => {
    kit?.close();
    await app?.stop({ drainTimeoutMs: 100 });
    app = undefined;
  });

  it('passes one message in three and counts the rest as filtered and sampled-out', async () => {
    app = createIntegration({ logger: silentLogger, routes: [from<number>('memory:hA-sample-in').sample({ every: 3 }, { id: 'one-in-three' }).to('memory:hA-sample-out')] });
    await app.start();
    kit = new TestKit(app);
    const out = kit.mock<number>('memory:hA-sample-out');
    await kit.sendAll('memory:hA-sample-in', [1, 2, 3, 4, 5, 6, 7]);
    await out.expect(3);
    await settle();
    expect(out.bodies()).toEqual([1, 4, 7]);
    const metrics = app.metrics()['memory:hA-sample-in']!;
    expect(metrics.filtered).toBe(4);
    expect(metrics.steps['one-in-three']!.counts).toEqual({ 'sampled-out': 4 });
    expect(metrics.inFlight).toBe(0);
  });
});
