import { deliveryStep, RouteDefinitionError, stepSpec, type Message, type StepFactory, type StepSpec } from '../src/core/index.ts';

/** Sample by time: the first message, then none until `intervalMs` has passed since the last one let through. */
export interface SampleByTime<T> extends SampleCommon<T> {
  readonly intervalMs: number;
  readonly every?: undefined;
}

/** Sample by count: the first message of every `every` (the 1st, the n+1st, …). */
export interface SampleByCount<T> extends SampleCommon<T> {
  readonly every: number;
  readonly intervalMs?: undefined;
}

export interface SampleCommon<T> {
  /** Sample per key, independently (default: one sample for the whole step). A throw fails that message only. */
  readonly key?: (message: Message<T>) => string;
  /** At most this many keys are remembered (default 10,000); past it the least recently seen is forgotten (its next message passes). */
  readonly maxKeys?: number;
}

export type SampleOptions<T> = SampleByTime<T> | SampleByCount<T>;

/**
 * Sampler (Camel's `sample`, the EIP book's message filter by rate): lets one message through per
 * interval — by time (`intervalMs`, measured from the last message let through, on the step's
 * scheduler, as Camel's `samplePeriod`) or by count (`every: n`, the first of each n) — optionally per
 * `key`. The others are dropped: acked as filtered and counted `sampled-out`. Nothing is held, so a
 * stop has nothing to drain; a passed message settles downstream as usual.
 * Redelivery: a message with the id of the last one passed for its key passes again (not counted
 * towards the interval or the group), so a sample that failed downstream and was redelivered by the
 * broker is retried, not lost as sampled out.
 * A throwing `key` fails that message only (the route's error handler decides).
 * Unlike Camel's `messageFrequency` (which passes the n-th), `every` passes the first of each n, so a
 * quiet source's first message is never held back.
 * @example from('mqtt:devices/+id/telemetry').sample({ intervalMs: 60_000, key: (m) => String(m.headers.deviceId) }).to('amqp:exchange/dashboard')
 * @example from('memory:ticks').sample({ every: 10 }).to('memory:one-in-ten')
 */
export function sample<T>(options: SampleOptions<T>): StepFactory<T, T> {
  const { intervalMs, every, key, maxKeys = 10_000 } = options;
  if ((intervalMs === undefined) === (every === undefined)) throw new RouteDefinitionError('sample needs exactly one of intervalMs or every');
  if (intervalMs !== undefined && !(Number.isFinite(intervalMs) && intervalMs > 0)) throw new RouteDefinitionError(`sample: intervalMs must be a positive number, got ${String(intervalMs)}`);
  for (const [name, value] of [['every', every ?? 1], ['maxKeys', maxKeys]] as const) {
    if (!Number.isSafeInteger(value) || value < 1) throw new RouteDefinitionError(`sample: ${name} must be a positive integer, got ${String(value)}`);
  }
  return (context) => {
    /**
     * Per key: when the last message passed (by time) or how many were seen in the current group (by
     * count), and the id of the last message passed.
     */
    const seen = new Map<string, { readonly mark: number; readonly passed: string }>();
    /** Whether the message passes; remembers the key as most recently seen. */
    const passes = (name: string, id: string): boolean => {
      const last = seen.get(name);
      seen.delete(name);
      let pass: boolean;
      let mark: number;
      if (last !== undefined && last.passed === id) {
        pass = true; // a redelivery of the sample (it failed downstream): the same sample again
        mark = last.mark;
      } else if (intervalMs !== undefined) {
        const now = context.scheduler.now();
        pass = last === undefined || now - last.mark >= intervalMs;
        mark = pass ? now : (last as { mark: number }).mark;
      } else {
        const count = last?.mark ?? 0;
        pass = count === 0;
        mark = (count + 1) % (every as number);
      }
      seen.set(name, { mark, passed: pass ? id : (last as { passed: string }).passed });
      if (seen.size > maxKeys) seen.delete(seen.keys().next().value as string);
      return pass;
    };
    return deliveryStep<T, T>(context, (delivery, emit) => {
      if (passes(key === undefined ? '' : key(delivery.message), delivery.message.id)) emit(delivery);
      else {
        context.count('sampled-out');
        context.filtered(delivery);
      }
    });
  };
}

/** `.sample(options)`: the sampler's DSL entry (kind `sample`). Options are checked at once. */
export function sampleStep<T>(options: SampleOptions<T>): StepSpec<T, T> {
  return stepSpec('sample', sample(options));
}
