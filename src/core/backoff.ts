export interface BackoffOptions {
  /** Delay before the first retry (attempt 0). */
  readonly initialMs: number;
  /** Ceiling of the delay before jitter. */
  readonly maxMs: number;
  readonly multiplier?: number;
  /** Spread of each delay, ±fraction (default 0.5: 50 %–150 %), so many clients do not retry in step. */
  readonly jitter?: number;
  /** Random source in [0, 1), for deterministic tests. */
  readonly random?: () => number;
}

/**
 * Exponential backoff with jitter: `min(maxMs, initialMs · multiplier^attempt) · (1 ± jitter)`, for
 * `attempt` 0, 1, 2, … — reconnects and in-process retries alike. Never NaN or infinite, however
 * long an outage counts attempts.
 * @example backoffDelay(3, { initialMs: 100, maxMs: 10_000 }) // ≈ 800 ms (400–1200)
 */
export function backoffDelay(attempt: number, { initialMs, maxMs, multiplier = 2, jitter = 0.5, random = Math.random }: BackoffOptions): number {
  const base = initialMs <= 0 ? 0 : Math.min(maxMs, initialMs * multiplier ** attempt);
  return Math.round(base * (1 - jitter + 2 * jitter * random()));
}
