import { backoffDelay, InterchangeError, type StepError } from '../src/core/index.ts';

export interface RetryOptions {
  /** Total runs of the step, the first included (≥ 1; default 3). */
  readonly maxAttempts?: number;
  /** Delay before the second run (default 200 ms). */
  readonly initialDelayMs?: number;
  readonly multiplier?: number;
  readonly maxDelayMs?: number;
  /** Spread of each delay, ±fraction (default 0.2: 80 %–120 %), so retries of many messages do not stampede. */
  readonly jitter?: number;
  /** Which failures are worth retrying (default: all). */
  readonly retryOn?: (error: StepError) => boolean;
  /** Random source in [0, 1), for deterministic tests. */
  readonly random?: () => number;
}

/** A bounded retry schedule: exponential backoff with jitter. */
export interface RetryPolicy {
  readonly maxAttempts: number;
  /** The delay before the next run after `attempt` runs failed with `error`, or `undefined` to stop. */
  delayAfter(attempt: number, error: StepError): number | undefined;
}

/**
 * Exponential backoff with jitter: delay(n) = min(maxDelay, initial × multiplier^(n-1)) × (1 ± jitter).
 * Always bounded: `maxAttempts` must be a finite integer ≥ 1.
 * @example deadLetterChannel('memory:dlq', { retry: retry({ maxAttempts: 5, initialDelayMs: 100 }) })
 */
export function retry({
  maxAttempts = 3,
  initialDelayMs = 200,
  multiplier = 2,
  maxDelayMs = 30_000,
  jitter = 0.2,
  retryOn = () => true,
  random = Math.random,
}: RetryOptions = {}): RetryPolicy {
  if (!Number.isInteger(maxAttempts) || maxAttempts < 1) throw new InterchangeError('RETRY_POLICY', `maxAttempts must be an integer ≥ 1, got ${maxAttempts}`);
  if (!(jitter >= 0 && jitter <= 1)) throw new InterchangeError('RETRY_POLICY', `jitter must be within [0, 1], got ${jitter}`);
  return {
    maxAttempts,
    delayAfter(attempt, error) {
      if (attempt >= maxAttempts || !retryOn(error)) return undefined;
      return backoffDelay(attempt - 1, { initialMs: initialDelayMs, maxMs: maxDelayMs, multiplier, jitter, random });
    },
  };
}
