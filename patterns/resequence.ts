import type { Subscription } from 'rxjs';
import { InterchangeError, RouteDefinitionError, stepSpec, type Delivery, type Message, type StepContext, type StepFactory, type StepSpec } from '../src/core/index.ts';
import { stepLifecycle, type StepLifecycle } from '../src/core/step-lifecycle.ts';

/** Where a message's sequence number is: a header's name, or an expression of the message. */
export type SequenceOf<T> = string | ((message: Message<T>) => number | bigint);

interface ResequenceCommon<T> {
  /** The sequence number: a header (an integer, or a string of one) or an expression returning an integer or a bigint. */
  readonly sequence: SequenceOf<T>;
  /**
   * A message whose sequence was already emitted (stream mode) or is already in the batch (batch
   * mode): `'filter'` (default) acks it as filtered, counted `duplicates`; `'pass'` lets it through
   * (stream: at once if its twin was already emitted, else right after its twin).
   */
  readonly duplicates?: 'filter' | 'pass';
}

/** Batch mode (Camel's default): collect, then emit the batch sorted. */
export interface BatchResequenceOptions<T> extends ResequenceCommon<T> {
  readonly mode: 'batch';
  /** Emit once the batch holds this many messages (default 100). */
  readonly batchSize?: number;
  /** Emit the batch this long after its first message arrived, full or not (default 1,000 ms, on the step's scheduler). */
  readonly batchTimeoutMs?: number;
}

/** Stream mode: emit in strict sequence order, waiting a bounded time for gaps. */
export interface StreamResequenceOptions<T> extends ResequenceCommon<T> {
  readonly mode: 'stream';
  /**
   * No message is held longer than this (default 1,000 ms, on the step's scheduler): when the oldest
   * held message has waited that long, the gaps below it are given up (counted `gaps-skipped`).
   */
  readonly gapTimeoutMs?: number;
  /** At most this many messages are held (default 1,000); past it the lowest held is emitted, its gap given up (counted `capacity-released`). */
  readonly capacity?: number;
  /**
   * The first sequence number expected. Default: none — the stream starts with the lowest message
   * held when the first one is released (by gap timeout or capacity), so the first messages of a run
   * wait `gapTimeoutMs` for lower ones.
   */
  readonly start?: number | bigint;
  /**
   * A message arriving after its gap was given up (a sequence the stream skipped): `'pass'` (default,
   * as Camel's stream resequencer without `rejectOld`) emits it at once, out of order; `'filter'` acks
   * it as filtered. Counted `late` either way. A message below where the stream started (`start`, or
   * the first sequence released) is always late. The last 1,000 skipped ranges are remembered; a late
   * message from an older one counts as a duplicate.
   */
  readonly late?: 'pass' | 'filter';
}

export type ResequenceOptions<T> = BatchResequenceOptions<T> | StreamResequenceOptions<T>;

/** A message has no usable sequence number (missing, not an integer): it fails, permanently. */
export class InvalidSequenceError extends InterchangeError {
  override readonly name = 'InvalidSequenceError';
  constructor(
    readonly messageId: string,
    readonly value: unknown,
  ) {
    super('INVALID_SEQUENCE', `resequence: message '${messageId}' has no valid sequence number (got ${typeof value === 'bigint' ? `${value}n` : JSON.stringify(value) ?? String(value)})`, { permanent: true });
  }
}

/** A message the resequencer holds. */
interface Held {
  readonly delivery: Delivery;
  readonly sequence: bigint;
  readonly arrivedAt: number;
  out: boolean;
}

const SKIPPED_RANGES = 1_000;

/**
 * Resequencer (Camel's `resequence`, the EIP book's Resequencer): puts messages back in order of a
 * sequence number (`sequence`, a header or an expression).
 * - `mode: 'batch'`: collects up to `batchSize` messages or `batchTimeoutMs`, then emits them sorted
 *   (equal sequences keep their arrival order).
 * - `mode: 'stream'`: emits each message as soon as it is the next of the sequence; a gap is waited
 *   for at most `gapTimeoutMs` (counted from the oldest held message's arrival), then skipped
 *   (`gaps-skipped`); past `capacity` the lowest held message is released (`capacity-released`).
 * A message without a valid sequence fails with `InvalidSequenceError` (permanent: dead-lettered or
 * rejected, never retried); a throwing `sequence` expression fails that message only.
 *
 * Settlement (at-least-once, no repository): the step passes on the source deliveries themselves, so
 * a held message is not acked until it has been emitted and settled downstream. Its state is exactly
 * the unsettled deliveries: a crash redelivers them and the resequencer starts over (in stream mode
 * with no `start`, after a gap timeout). Held messages are unacked, so the route's prefetch bounds
 * how many can be held: keep `capacity` / `batchSize` below it, or the source stops delivering while
 * the buffer waits for a gap (it is then released by the timeout only). Gauge `held` = messages held.
 * Stop (as `aggregate`): when the source completes (the route stops), everything held is emitted in
 * sequence order (stream: the gaps are skipped); on unsubscribe held messages are left unsettled, for
 * the source to redeliver.
 * @example from('amqp:queue/ledger').resequence({ mode: 'stream', sequence: 'seq', gapTimeoutMs: 5_000 }).to('amqp:queue/ledger-ordered')
 * @example from('memory:lines').resequence({ mode: 'batch', sequence: (m) => m.body.lineNo, batchSize: 50 }).to('memory:sorted')
 */
export function resequence<T>(options: ResequenceOptions<T>): StepFactory<T, T> {
  const sequenceOf = sequenceReader(options.sequence);
  const positive = (name: string, value: number, integer: boolean): void => {
    if (!(integer ? Number.isSafeInteger(value) : Number.isFinite(value)) || value <= 0) throw new RouteDefinitionError(`resequence: ${name} must be a positive ${integer ? 'integer' : 'number'}, got ${String(value)}`);
  };
  if (options.mode === 'batch') {
    const { batchSize = 100, batchTimeoutMs = 1_000, duplicates = 'filter' } = options;
    positive('batchSize', batchSize, true);
    positive('batchTimeoutMs', batchTimeoutMs, false);
    return (context) => stepLifecycle<T, T>(context, (step) => batchResequencer(step, context, { sequenceOf, batchSize, batchTimeoutMs, duplicates }));
  }
  if (options.mode !== 'stream') throw new RouteDefinitionError(`resequence: mode must be 'batch' or 'stream', got ${String((options as { mode: unknown }).mode)}`);
  const { gapTimeoutMs = 1_000, capacity = 1_000, start, duplicates = 'filter', late = 'pass' } = options;
  positive('gapTimeoutMs', gapTimeoutMs, false);
  positive('capacity', capacity, true);
  if (start !== undefined && typeof start !== 'bigint' && !Number.isSafeInteger(start)) throw new RouteDefinitionError(`resequence: start must be an integer, got ${String(start)}`);
  return (context) =>
    stepLifecycle<T, T>(context, (step) => streamResequencer(step, context, { sequenceOf, gapTimeoutMs, capacity, start: start === undefined ? undefined : BigInt(start), duplicates, late }));
}

interface BatchSettings {
  readonly sequenceOf: (message: Message) => bigint;
  readonly batchSize: number;
  readonly batchTimeoutMs: number;
  readonly duplicates: 'filter' | 'pass';
}

function batchResequencer<T>(step: StepLifecycle<T, T>, context: StepContext, { sequenceOf, batchSize, batchTimeoutMs, duplicates }: BatchSettings): { next: (delivery: Delivery<T>) => void; drain: () => void; teardown: () => void } {
  let batch: Held[] = [];
  const sequences = new Set<bigint>();
  let timer: Subscription | undefined;

  const emitBatch = (): void => {
    timer?.unsubscribe();
    timer = undefined;
    const out = batch.sort((a, b) => (a.sequence < b.sequence ? -1 : a.sequence > b.sequence ? 1 : 0)); // stable: arrival order among equals
    batch = [];
    sequences.clear();
    context.gauge('held', 0);
    for (const held of out) step.emit(held.delivery as Delivery<T>);
  };

  const add = sequenced(step, sequenceOf, (delivery, sequence) => {
    if (duplicates === 'filter' && sequences.has(sequence)) return dropDuplicate(context, delivery);
    batch.push({ delivery, sequence, arrivedAt: context.scheduler.now(), out: false });
    sequences.add(sequence);
    context.gauge('held', batch.length);
    if (batch.length >= batchSize) emitBatch();
    else if (timer === undefined) timer = context.scheduler.schedule(emitBatch, batchTimeoutMs);
  });

  return {
    next: (delivery) => add(delivery, 1),
    drain: () => {
      if (batch.length > 0) emitBatch();
    },
    teardown: () => timer?.unsubscribe(), // the batch stays unsettled: the source redelivers it
  };
}

interface StreamSettings {
  readonly sequenceOf: (message: Message) => bigint;
  readonly gapTimeoutMs: number;
  readonly capacity: number;
  readonly start: bigint | undefined;
  readonly duplicates: 'filter' | 'pass';
  readonly late: 'pass' | 'filter';
}

function streamResequencer<T>(step: StepLifecycle<T, T>, context: StepContext, settings: StreamSettings): { next: (delivery: Delivery<T>) => void; drain: () => void; teardown: () => void } {
  const { sequenceOf, gapTimeoutMs, capacity, duplicates, late } = settings;
  const { scheduler } = context;
  /** Held messages by sequence (stable among equals). */
  const held: Held[] = [];
  /** Held messages by arrival: the first not yet emitted is the oldest. */
  let arrivals: Held[] = [];
  /** The sequence expected next; undefined before the stream has started. */
  let next = settings.start;
  /** Where the stream started (`start`, or the first sequence released): anything below it was never seen, so it is late. */
  let startedAt = settings.start;
  /** Ranges [from, to) given up as gaps, the most recent last. */
  const skipped: (readonly [bigint, bigint])[] = [];
  let timer: Subscription | undefined;
  let timerAt = Number.NaN;

  const oldest = (): Held | undefined => {
    let first = 0;
    while (first < arrivals.length && (arrivals[first] as Held).out) first += 1;
    if (first > 0) arrivals = arrivals.slice(first);
    return arrivals[0];
  };

  const emitHead = (): void => {
    const head = held.shift() as Held;
    head.out = true;
    if (next === undefined || head.sequence >= next) next = head.sequence + 1n;
    step.emit(head.delivery as Delivery<T>);
  };

  /** Emits what is next in sequence (and passed duplicates of what was just emitted). */
  const flush = (): void => {
    while (held.length > 0 && next !== undefined && (held[0] as Held).sequence <= next) emitHead();
  };

  /** Gives up the gap below the lowest held message and emits from there. */
  const skipToHead = (): void => {
    const head = held[0] as Held;
    if (next !== undefined && head.sequence > next) {
      skipped.push([next, head.sequence]);
      if (skipped.length > SKIPPED_RANGES) skipped.shift();
      context.count('gaps-skipped');
    }
    startedAt ??= head.sequence;
    next = head.sequence;
    flush();
  };

  const reschedule = (): void => {
    context.gauge('held', held.length);
    const first = oldest();
    const at = first === undefined ? Number.NaN : first.arrivedAt + gapTimeoutMs;
    if (at === timerAt) return;
    timer?.unsubscribe();
    timer = undefined;
    timerAt = at;
    if (first !== undefined) timer = scheduler.schedule(expire, Math.max(0, at - scheduler.now()));
  };

  /** The oldest held message has waited `gapTimeoutMs`: every gap below it is given up. */
  function expire(): void {
    timer = undefined;
    timerAt = Number.NaN;
    const now = scheduler.now();
    for (let first = oldest(); first !== undefined && first.arrivedAt + gapTimeoutMs <= now; first = oldest()) {
      while (!first.out) skipToHead();
    }
    reschedule();
  }

  const wasSkipped = (sequence: bigint): boolean => (startedAt !== undefined && sequence < startedAt) || skipped.some(([from, to]) => sequence >= from && sequence < to);

  /** A message behind the stream: late (its gap was given up) or a duplicate of one emitted. */
  const behind = (delivery: Delivery<T>, sequence: bigint): void => {
    const isLate = wasSkipped(sequence);
    context.count(isLate ? 'late' : 'duplicates');
    if ((isLate ? late : duplicates) === 'pass') step.emit(delivery);
    else context.filtered(delivery);
  };

  const add = sequenced(step, sequenceOf, (delivery, sequence) => {
    if (next !== undefined && sequence < next) return behind(delivery, sequence);
    const at = upperBound(held, sequence);
    if (at > 0 && (held[at - 1] as Held).sequence === sequence && duplicates === 'filter') return dropDuplicate(context, delivery);
    const entry: Held = { delivery, sequence, arrivedAt: scheduler.now(), out: false };
    held.splice(at, 0, entry);
    arrivals.push(entry);
    flush();
    if (held.length > capacity) {
      context.count('capacity-released');
      skipToHead();
    }
    reschedule();
  });

  return {
    next: (delivery) => add(delivery, 1),
    // the source has completed (the route stops): everything held goes out in sequence order
    drain: () => {
      while (held.length > 0) skipToHead();
      reschedule();
    },
    teardown: () => timer?.unsubscribe(), // held messages stay unsettled: the source redelivers them
  };
}

/**
 * A resequencer's intake: reads each message's sequence and hands both to `take`; a message whose
 * sequence cannot be read fails alone (the route's error handler decides; a retry reads it again).
 */
function sequenced<T>(step: StepLifecycle<T, T>, sequenceOf: (message: Message) => bigint, take: (delivery: Delivery<T>, sequence: bigint) => void): (delivery: Delivery<T>, attempt: number) => void {
  const add = (delivery: Delivery<T>, attempt: number): void => {
    let sequence: bigint;
    try {
      sequence = sequenceOf(delivery.message);
    } catch (error) {
      step.fail(delivery, error, attempt, add);
      return;
    }
    take(delivery, sequence);
  };
  return add;
}

/** A repeat of a sequence already held (or emitted) with `duplicates: 'filter'`: acked as filtered, counted. */
function dropDuplicate(context: StepContext, delivery: Delivery): void {
  context.count('duplicates');
  context.filtered(delivery);
}

/** The first index whose sequence is greater than `sequence` (held is sorted). */
function upperBound(held: readonly Held[], sequence: bigint): number {
  let low = 0;
  let high = held.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if ((held[middle] as Held).sequence <= sequence) low = middle + 1;
    else high = middle;
  }
  return low;
}

function sequenceReader<T>(sequence: SequenceOf<T>): (message: Message) => bigint {
  if (typeof sequence === 'string') {
    if (sequence === '') throw new RouteDefinitionError('resequence: sequence must name a header or be a function');
    return (message) => toSequence(message, message.headers[sequence]);
  }
  if (typeof sequence !== 'function') throw new RouteDefinitionError('resequence needs sequence: a header name or a function');
  return (message) => toSequence(message, sequence(message as Message<T>));
}

function toSequence(message: Message, value: unknown): bigint {
  if (typeof value === 'bigint') return value;
  if (typeof value === 'number' && Number.isSafeInteger(value)) return BigInt(value);
  if (typeof value === 'string' && /^-?\d{1,30}$/.test(value)) return BigInt(value);
  throw new InvalidSequenceError(message.id, value);
}

/** `.resequence(options)`: the resequencer's DSL entry (kind `resequence`). Options are checked at once. */
export function resequenceStep<T>(options: ResequenceOptions<T>): StepSpec<T, T> {
  return stepSpec('resequence', resequence(options));
}
