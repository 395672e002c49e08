import { Subject, VirtualTimeScheduler } from 'rxjs';
import { afterEach, describe, expect, it } from 'vitest';
import { InvalidSequenceError, resequence, type ResequenceOptions } from '../../patterns/resequence.ts';
import { createIntegration, createMessage, from, RouteDefinitionError, silentLogger, type Integration } from '../../facade/index.ts';
import { TestKit } from '../../facade/testing/index.ts';
import type { Delivery } from '../../src/core/index.ts';
import { runUntil } from '../unit/virtual-time.ts';
import { drive, Harness, settle, source, type Source } from './harness.ts';

/** Runs virtual time up to `at`. */
function advanceTo(scheduler: VirtualTimeScheduler, at: number): void {
  scheduler.schedule(() => {}, at - scheduler.now());
  scheduler.maxFrames = at;
  scheduler.flush();
}

interface Line {
  readonly seq: number;
}

function setup(options: ResequenceOptions<Line>, harnessOptions: ConstructorParameters<typeof Harness>[0] = {}) {
  const scheduler = new VirtualTimeScheduler();
  const harness = new Harness({ scheduler, ...harnessOptions });
  const driven = drive(harness.build(resequence<Line>(options)));
  const at = (time: number, ...seqs: number[]): Source<Line>[] => {
    advanceTo(scheduler, time);
    const items = seqs.map(line);
    driven.send(...items);
    return items;
  };
  return { scheduler, harness, at, ...driven, seqs: (): number[] => driven.output.bodies.map((b) => b.seq) };
}

let made = 0;
/** A line with its sequence in the body and in the `seq` header, and a unique id. */
function line(seq: number): Source<Line> {
  made += 1;
  return source({ seq }, { id: `line-${seq}-${made}`, headers: { seq } });
}

const bySeq = (m: { body: Line }): number => m.body.seq;

describe('resequence: options', () => {
  it('refuses wrong options where the route is declared', () => {
    expect(() => resequence({ mode: 'other', sequence: 'seq' } as unknown as ResequenceOptions<Line>)).toThrow(RouteDefinitionError);
    expect(() => resequence<Line>({ mode: 'batch', sequence: 'seq', batchSize: 0 })).toThrow(RouteDefinitionError);
    expect(() => resequence<Line>({ mode: 'batch', sequence: 'seq', batchTimeoutMs: -1 })).toThrow(RouteDefinitionError);
    expect(() => resequence<Line>({ mode: 'stream', sequence: 'seq', gapTimeoutMs: 0 })).toThrow(RouteDefinitionError);
    expect(() => resequence<Line>({ mode: 'stream', sequence: 'seq', capacity: 1.5 })).toThrow(RouteDefinitionError);
    expect(() => resequence<Line>({ mode: 'stream', sequence: 'seq', start: 0.5 })).toThrow(RouteDefinitionError);
    expect(() => resequence<Line>({ mode: 'stream', sequence: '' })).toThrow(RouteDefinitionError);
  });
});

describe('resequence: batch mode', () => {
  it('emits a full batch sorted by sequence, equal sequences in arrival order', () => {
    const { output, at, seqs } = setup({ mode: 'batch', sequence: 'seq', batchSize: 4, duplicates: 'pass' });
    const items = at(0, 3, 1, 3, 2);
    expect(seqs()).toEqual([1, 2, 3, 3]);
    expect(output.messages.slice(2).map((m) => m.id)).toEqual([items[0]!.message.id, items[2]!.message.id]);
    at(0, 9);
    expect(seqs()).toEqual([1, 2, 3, 3]);
  });

  it('emits a partial batch batchTimeoutMs after its first message', () => {
    const { scheduler, at, seqs } = setup({ mode: 'batch', sequence: bySeq, batchSize: 10, batchTimeoutMs: 500 });
    at(0, 5, 4);
    at(300, 1);
    advanceTo(scheduler, 499);
    expect(seqs()).toEqual([]);
    advanceTo(scheduler, 500);
    expect(seqs()).toEqual([1, 4, 5]);
    at(600, 7, 6); // a new batch, timed from its own first message
    advanceTo(scheduler, 1_099);
    expect(seqs()).toEqual([1, 4, 5]);
    advanceTo(scheduler, 1_100);
    expect(seqs()).toEqual([1, 4, 5, 6, 7]);
  });

  it('drops a duplicate sequence within the batch as filtered (default), counted duplicates', () => {
    const { harness, at, seqs } = setup({ mode: 'batch', sequence: 'seq', batchSize: 3 });
    const [, twin] = at(0, 2, 2, 1, 3);
    expect(seqs()).toEqual([1, 2, 3]);
    expect(twin!.outcome).toBe('acked');
    expect(harness.counts.get('duplicates')).toBe(1);
  });

  it('reads bigint sequences from an expression', () => {
    const harness = new Harness({ scheduler: new VirtualTimeScheduler() });
    const { output, send } = drive(harness.build(resequence<{ n: string }>({ mode: 'batch', sequence: (m) => BigInt(m.body.n), batchSize: 2 })));
    send(source({ n: '90071992547409930' }), source({ n: '90071992547409929' }));
    expect(output.bodies.map((b) => b.n)).toEqual(['90071992547409929', '90071992547409930']);
  });

  it('when the source completes, emits the open batch sorted, then completes', () => {
    const { input, output, at, seqs } = setup({ mode: 'batch', sequence: 'seq', batchSize: 10 });
    at(0, 3, 1, 2);
    input.complete();
    expect(seqs()).toEqual([1, 2, 3]);
    expect(output.completed).toBe(true);
  });
});

describe('resequence: stream mode', () => {
  it('emits each message as soon as it is the next of the sequence', () => {
    const { at, seqs, harness } = setup({ mode: 'stream', sequence: 'seq', start: 1 });
    at(0, 2);
    expect(seqs()).toEqual([]);
    at(10, 1);
    expect(seqs()).toEqual([1, 2]);
    at(20, 3, 5, 4);
    expect(seqs()).toEqual([1, 2, 3, 4, 5]);
    expect(harness.counts.get('gaps-skipped')).toBeUndefined();
    expect(harness.gauges.get('held')).toBe(0);
  });

  it('gives a gap up gapTimeoutMs after the oldest held message arrived, and goes on', () => {
    const { scheduler, harness, at, seqs } = setup({ mode: 'stream', sequence: 'seq', start: 1, gapTimeoutMs: 1_000 });
    at(0, 1, 3);
    at(600, 4);
    expect(harness.gauges.get('held')).toBe(2);
    advanceTo(scheduler, 999);
    expect(seqs()).toEqual([1]);
    advanceTo(scheduler, 1_000);
    expect(seqs()).toEqual([1, 3, 4]);
    expect(harness.counts.get('gaps-skipped')).toBe(1);
    at(1_100, 5);
    expect(seqs()).toEqual([1, 3, 4, 5]);
  });

  it('holds no message longer than gapTimeoutMs: every gap below the oldest held one is given up', () => {
    const { scheduler, harness, at, seqs } = setup({ mode: 'stream', sequence: 'seq', start: 1, gapTimeoutMs: 1_000 });
    at(0, 10);
    at(500, 3);
    advanceTo(scheduler, 1_000);
    expect(seqs()).toEqual([3, 10]);
    expect(harness.counts.get('gaps-skipped')).toBe(2);
  });

  it('without start, the first messages wait gapTimeoutMs for lower ones, then the stream starts at the lowest', () => {
    const { scheduler, harness, at, seqs } = setup({ mode: 'stream', sequence: 'seq', gapTimeoutMs: 1_000 });
    at(0, 5);
    at(10, 4);
    advanceTo(scheduler, 999);
    expect(seqs()).toEqual([]);
    advanceTo(scheduler, 1_000);
    expect(seqs()).toEqual([4, 5]);
    expect(harness.counts.get('gaps-skipped')).toBeUndefined();
    at(1_001, 6);
    expect(seqs()).toEqual([4, 5, 6]);
  });

  it('past capacity, releases the lowest held message, giving its gap up', () => {
    const { harness, at, seqs } = setup({ mode: 'stream', sequence: 'seq', start: 1, capacity: 2 });
    at(0, 4, 3);
    expect(seqs()).toEqual([]);
    at(0, 6);
    expect(seqs()).toEqual([3, 4]);
    expect(harness.counts.get('capacity-released')).toBe(1);
    expect(harness.counts.get('gaps-skipped')).toBe(1);
    expect(harness.gauges.get('held')).toBe(1);
  });

  it('a late message (its gap given up) passes at once by default, or is filtered with late: filter', () => {
    for (const late of ['pass', 'filter'] as const) {
      const { scheduler, harness, at, seqs } = setup({ mode: 'stream', sequence: 'seq', start: 1, gapTimeoutMs: 100, late });
      at(0, 2);
      advanceTo(scheduler, 100);
      const [latecomer] = at(200, 1);
      expect(seqs()).toEqual(late === 'pass' ? [2, 1] : [2]);
      expect(harness.counts.get('late')).toBe(1);
      expect(harness.filtered.length).toBe(late === 'pass' ? 0 : 1);
      expect(latecomer!.outcome).toBe(late === 'pass' ? 'pending' : 'acked');
    }
  });

  it('without start, a message below the first one released is late (its gap was given up), not a duplicate', () => {
    for (const late of ['pass', 'filter'] as const) {
      const { scheduler, harness, at, seqs } = setup({ mode: 'stream', sequence: 'seq', gapTimeoutMs: 1_000, late });
      at(0, 5);
      advanceTo(scheduler, 1_000);
      const [latecomer] = at(1_000, 4);
      expect(seqs()).toEqual(late === 'pass' ? [5, 4] : [5]);
      expect(harness.counts.get('late')).toBe(1);
      expect(harness.counts.get('duplicates')).toBeUndefined();
      expect(latecomer!.outcome).toBe(late === 'pass' ? 'pending' : 'acked');
    }
  });

  it('a message below a configured start is late, not a duplicate', () => {
    const { harness, at, seqs } = setup({ mode: 'stream', sequence: 'seq', start: 10 });
    at(0, 9, 10);
    expect(seqs()).toEqual([9, 10]);
    expect(harness.counts.get('late')).toBe(1);
    expect(harness.counts.get('duplicates')).toBeUndefined();
  });

  it('drops a duplicate of an emitted or held sequence as filtered (default), counted duplicates', () => {
    const { harness, at, seqs } = setup({ mode: 'stream', sequence: 'seq', start: 1 });
    const [, emittedTwin, , heldTwin] = at(0, 1, 1, 3, 3);
    at(0, 2);
    expect(seqs()).toEqual([1, 2, 3]);
    expect([emittedTwin!.outcome, heldTwin!.outcome]).toEqual(['acked', 'acked']);
    expect(harness.counts.get('duplicates')).toBe(2);
  });

  it("duplicates: 'pass' lets a duplicate through: at once after its twin was emitted, else right after its twin", () => {
    const { harness, at, seqs } = setup({ mode: 'stream', sequence: 'seq', start: 1, duplicates: 'pass' });
    at(0, 1, 1, 3, 3, 2);
    expect(seqs()).toEqual([1, 1, 2, 3, 3]);
    expect(harness.filtered).toEqual([]);
  });

  it('when the source completes, emits everything held in sequence order (gaps given up), then completes', () => {
    const { input, output, harness, at, seqs, scheduler } = setup({ mode: 'stream', sequence: 'seq', start: 1 });
    at(0, 7, 3, 5);
    input.complete();
    expect(seqs()).toEqual([3, 5, 7]);
    expect(output.completed).toBe(true);
    expect(harness.counts.get('gaps-skipped')).toBe(3);
    expect(scheduler.actions.filter((action) => !action.closed)).toEqual([]);
  });
});

describe('resequence: settlement and failures', () => {
  it('keeps a held message unsettled; it settles as its emitted delivery does, downstream', () => {
    const { output, at } = setup({ mode: 'stream', sequence: 'seq', start: 1 });
    const [two] = at(0, 2);
    expect(two!.outcome).toBe('pending');
    const [one] = at(0, 1);
    expect([one!.outcome, two!.outcome]).toEqual(['pending', 'pending']);
    output.deliveries[0]!.ack();
    output.deliveries[1]!.nack(new Error('downstream refused'));
    expect([one!.outcome, two!.outcome, two!.reasons[0]?.message]).toEqual(['acked', 'nacked', 'downstream refused']);
  });

  it('fails a message without a valid sequence header with InvalidSequenceError (permanent); the others go on', () => {
    for (const mode of ['batch', 'stream'] as const) {
      const options: ResequenceOptions<Line> = mode === 'batch' ? { mode, sequence: 'seq', batchSize: 2 } : { mode, sequence: 'seq', start: 1 };
      const { harness, output, send } = setup(options);
      const missing = source<Line>({ seq: 0 }, { id: 'missing', headers: {} });
      const decimal = source<Line>({ seq: 0 }, { id: 'decimal', headers: { seq: 1.5 } });
      const text = source<Line>({ seq: 2 }, { id: 'text', headers: { seq: '2' } });
      send(missing, decimal, text, line(1));
      expect(output.bodies.map((b) => b.seq)).toEqual([1, 2]);
      expect(harness.failures.map((f) => f.delivery.message.id)).toEqual(['missing', 'decimal']);
      expect(harness.failures[0]!.error).toBeInstanceOf(InvalidSequenceError);
      expect(harness.failures[0]!.error).toMatchObject({ code: 'INVALID_SEQUENCE', permanent: true });
      expect([missing.outcome, decimal.outcome]).toEqual(['nacked', 'nacked']);
    }
  });

  it('fails the message whose sequence expression throws, with its error; retries it when the handler asks', () => {
    let calls = 0;
    const { scheduler, harness, at, seqs } = setup(
      {
        mode: 'stream',
        sequence: (m) => {
          calls += 1;
          if (m.body.seq === 2 && calls < 4) throw new Error('cannot read');
          return m.body.seq;
        },
        start: 1,
      },
      { failed: (_delivery, _error, attempt) => (attempt < 3 ? 100 : undefined) },
    );
    at(0, 1, 2, 3);
    expect(seqs()).toEqual([1]);
    expect(harness.failures.map((f) => [(f.error as Error).message, f.attempt])).toEqual([['cannot read', 1]]);
    advanceTo(scheduler, 100);
    expect(seqs()).toEqual([1, 2, 3]);
  });

  it('on unsubscribe, leaves held messages unsettled for the source to redeliver, and cancels its timers', () => {
    for (const options of [{ mode: 'stream', sequence: 'seq', start: 1 }, { mode: 'batch', sequence: 'seq' }] as const) {
      const scheduler = new VirtualTimeScheduler();
      const step = new Harness({ scheduler }).build(resequence<Line>(options));
      const feed = new Subject<Delivery<Line>>();
      const emitted: number[] = [];
      const running = feed.pipe(step).subscribe((delivery) => emitted.push(delivery.message.body.seq));
      const held = [line(3), line(2)];
      for (const item of held) feed.next(item.delivery);
      running.unsubscribe();
      expect(scheduler.actions.filter((action) => !action.closed)).toEqual([]);
      advanceTo(scheduler, 60_000);
      expect(emitted).toEqual([]);
      expect(held.map((i) => i.outcome)).toEqual(['pending', 'pending']);
    }
  });
});

describe('resequence in the DSL', () => {
  it('is a resequence step that sends nowhere; its options are checked where the route is declared', () => {
    const [step] = from<Line>('memory:hA-in').resequence({ mode: 'batch', sequence: (m) => m.body.seq }).definition().steps;
    expect([step?.id, step?.kind, step?.sends, step?.sendsTo]).toEqual(['resequence-1', 'resequence', false, []]);
    expect(() => from<Line>('memory:hA-in').resequence({ mode: 'stream', sequence: 'seq', capacity: 0 })).toThrow(RouteDefinitionError);
  });
});

describe('resequence through the runtime', () => {
  let app: Integration | undefined;
  let kit: TestKit | undefined;
  afterEach(async () => {
    kit?.close();
    await app?.stop({ drainTimeoutMs: 100 });
    app = undefined;
  });

  it('puts a stream back in order by a header, gives a gap up after gapTimeoutMs, and acks every input', async () => {
    const scheduler = new VirtualTimeScheduler();
    app = createIntegration({
      logger: silentLogger,
      scheduler,
      routes: [from<string>('memory:hA-reseq-in').resequence({ mode: 'stream', sequence: 'seq', start: 1, gapTimeoutMs: 2_000 }, { id: 'order' }).to('memory:hA-reseq-out')],
    });
    await app.start();
    kit = new TestKit(app);
    const out = kit.mock<string>('memory:hA-reseq-out');
    const message = (seq: number): ReturnType<typeof createMessage<string>> => createMessage(`line ${seq}`, { headers: { seq } });
    await kit.sendMessages('memory:hA-reseq-in', [message(3), message(1), message(2), message(6), message(5)]);
    await runUntil(scheduler, () => out.received.length >= 3);
    expect(out.bodies()).toEqual(['line 1', 'line 2', 'line 3']);
    expect(scheduler.now()).toBe(0);
    await runUntil(scheduler, () => out.received.length >= 5);
    expect(out.bodies()).toEqual(['line 1', 'line 2', 'line 3', 'line 5', 'line 6']);
    expect(scheduler.now()).toBe(2_000);
    await runUntil(scheduler, () => app!.metrics()['memory:hA-reseq-in']!.inFlight === 0);
    const metrics = app.metrics()['memory:hA-reseq-in']!;
    expect(metrics.steps.order!.counts).toEqual({ 'gaps-skipped': 1 });
    expect(metrics.completed).toBe(5);
  });

  it('stopping the route emits what it holds, in sequence order, before it detaches', async () => {
    app = createIntegration({
      logger: silentLogger,
      routes: [from<string>('memory:hA-reseq-stop', { id: 'held' }).resequence({ mode: 'stream', sequence: 'seq', start: 1, gapTimeoutMs: 60_000 }).to('memory:hA-reseq-flushed')],
    });
    await app.start();
    kit = new TestKit(app);
    const out = kit.mock<string>('memory:hA-reseq-flushed');
    await kit.sendMessages('memory:hA-reseq-stop', [createMessage('c', { headers: { seq: 4 } }), createMessage('b', { headers: { seq: 3 } })]);
    await settle();
    expect(app.metrics().held!.steps['resequence-1']!.gauges).toEqual({ held: 2 });
    expect(out.received).toEqual([]);
    await app.stopRoute('held', { drainTimeoutMs: 5_000 });
    expect(out.bodies()).toEqual(['b', 'c']);
    expect(app.metrics().held!).toMatchObject({ completed: 2, handedBack: 0, inFlight: 0 });
    expect(app.metrics().held!.steps['resequence-1']!.counts).toEqual({ 'gaps-skipped': 1 });
  });
});
