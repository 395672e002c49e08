import { RouteDefinitionError } from '../src/core/index.ts';

export interface LatencyControllerOptions {
  /** The 99th percentile of the per-message latency to hold, in milliseconds. */
  readonly targetP99Ms: number;
  /** The lowest concurrency (default 1). */
  readonly min?: number;
  /** The highest concurrency. */
  readonly max: number;
  /** Where the concurrency starts (default `min`: grown while there is demand and room under the target). */
  readonly initial?: number;
  /** Samples per decision (default 100, SEDA's `nreq`): the window's p99 is compared with the target. */
  readonly windowSamples?: number;
  /** A window closes after this long too, with at least one sample (default 1,000 ms): slow traffic still gets decisions. */
  readonly windowMs?: number;
  /** Concurrency added after a window under `increaseBelow` × the target with messages waiting (default 1). */
  readonly increaseBy?: number;
  /**
   * The fraction of the target under which a window's p99 lets the concurrency grow (default 0.9):
   * between it and the target the concurrency holds, so probing for more stays under the target.
   */
  readonly increaseBelow?: number;
  /** Factor applied after a window over target (default 0.75; floored, never below `min`). */
  readonly decreaseFactor?: number;
}

/** What the controller decided at the end of a window. */
export interface LatencyDecision {
  readonly p99Ms: number;
  readonly samples: number;
  readonly action: 'increase' | 'decrease' | 'hold';
  readonly concurrency: number;
}

/**
 * SEDA's response-time controller (Welsh & Culler, "Adaptive Overload Control for Busy Internet
 * Servers", 2003), as additive-increase / multiplicative-decrease of a stage's concurrency: latencies
 * are collected over a window (`windowSamples` samples, or `windowMs` with at least one); at the end
 * of the window its p99 is compared with `targetP99Ms` —
 * - over the target: concurrency × `decreaseFactor` (floored, at least `min`);
 * - under `increaseBelow` × the target (90%) and messages were waiting at the window's end:
 *   concurrency + `increaseBy` (at most `max`);
 * - otherwise (near the target, or no demand): unchanged.
 * The band between `increaseBelow` × target and the target is what holds the p99 of all messages,
 * not only of each window, under the target: windows spent probing upwards stay under it.
 * Pure: it reads no clock and starts no timer; the caller passes each sample's time (the step's
 * scheduler), so its decisions are tested by feeding it latencies.
 * @example
 * const controller = new LatencyController({ targetP99Ms: 50, min: 1, max: 32 });
 * const decision = controller.observe(latencyMs, scheduler.now(), queued);
 * if (decision !== undefined) context.gauge('concurrency', decision.concurrency);
 */
export class LatencyController {
  private current: number;
  private readonly samples: number[] = [];
  private windowStart: number | undefined = undefined;
  private readonly min: number;
  private readonly max: number;
  private readonly target: number;
  private readonly windowSamples: number;
  private readonly windowMs: number;
  private readonly increaseBy: number;
  private readonly increaseBelow: number;
  private readonly decreaseFactor: number;

  constructor({ targetP99Ms, min = 1, max, initial = min, windowSamples = 100, windowMs = 1_000, increaseBy = 1, increaseBelow = 0.9, decreaseFactor = 0.75 }: LatencyControllerOptions) {
    if (!(targetP99Ms > 0)) throw new RouteDefinitionError(`latency controller: targetP99Ms must be a positive number (is ${targetP99Ms})`);
    if (!isCount(min) || !isCount(max) || min > max) throw new RouteDefinitionError(`latency controller: min and max concurrency must be positive integers with min ≤ max (are ${min}, ${max})`);
    if (!isCount(initial) || initial < min || initial > max) throw new RouteDefinitionError(`latency controller: initial concurrency must be an integer from ${min} to ${max} (is ${initial})`);
    if (!isCount(windowSamples) || !(windowMs > 0)) throw new RouteDefinitionError('latency controller: windowSamples must be a positive integer and windowMs a positive number');
    if (!isCount(increaseBy) || !(decreaseFactor > 0 && decreaseFactor < 1)) throw new RouteDefinitionError('latency controller: increaseBy must be a positive integer and decreaseFactor between 0 and 1 (exclusive)');
    if (!(increaseBelow > 0 && increaseBelow <= 1)) throw new RouteDefinitionError(`latency controller: increaseBelow must be over 0 and at most 1 (is ${increaseBelow})`);
    this.current = initial;
    this.min = min;
    this.max = max;
    this.target = targetP99Ms;
    this.windowSamples = windowSamples;
    this.windowMs = windowMs;
    this.increaseBy = increaseBy;
    this.increaseBelow = increaseBelow;
    this.decreaseFactor = decreaseFactor;
  }

  /** The concurrency to run with now. */
  get concurrency(): number {
    return this.current;
  }

  /**
   * Records one message's latency, finished at `now` (ms, the step's scheduler), with `queued`
   * messages waiting then. Returns the decision when this sample closed a window, else undefined.
   */
  observe(latencyMs: number, now: number, queued: number): LatencyDecision | undefined {
    this.windowStart ??= now - latencyMs;
    this.samples.push(latencyMs);
    if (this.samples.length < this.windowSamples && now - this.windowStart < this.windowMs) return undefined;
    const p99Ms = percentile(this.samples, 0.99);
    const samples = this.samples.length;
    this.samples.length = 0;
    this.windowStart = now;
    let action: LatencyDecision['action'] = 'hold';
    if (p99Ms > this.target) {
      const lower = Math.max(this.min, Math.floor(this.current * this.decreaseFactor));
      if (lower < this.current) action = 'decrease';
      this.current = lower;
    } else if (p99Ms < this.target * this.increaseBelow && queued > 0 && this.current < this.max) {
      this.current = Math.min(this.max, this.current + this.increaseBy);
      action = 'increase';
    }
    return { p99Ms, samples, action, concurrency: this.current };
  }
}

/** The `q` quantile of `values` (nearest rank); sorts `values` in place. */
function percentile(values: number[], q: number): number {
  values.sort((a, b) => a - b);
  return values[Math.max(0, Math.ceil(q * values.length) - 1)] ?? 0;
}

function isCount(value: number): boolean {
  return Number.isInteger(value) && value > 0;
}
