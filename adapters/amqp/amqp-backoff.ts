/**
 * Exponential backoff with ±50 % jitter: `initialMs · 2^attempt`, capped at `maxMs`, then scaled by
 * a random factor in [0.5, 1.5) so that many clients reconnecting to one broker spread out.
 * @example backoffDelay(3, 100, 10_000) // ≈ 800 ms (400–1200)
 */
export function backoffDelay(attempt: number, initialMs: number, maxMs: number): number {
  const base = Math.min(maxMs, initialMs * 2 ** Math.min(attempt, 30));
  return Math.round(base * (0.5 + Math.random()));
}

/** A sleep that `wake()` ends early (so `close()` never waits out a backoff). */
export class Sleeper {
  private timer: NodeJS.Timeout | undefined;
  private resolve: (() => void) | undefined;

  sleep(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      this.resolve = resolve;
      this.timer = setTimeout(() => this.wake(), ms);
    });
  }

  wake(): void {
    clearTimeout(this.timer);
    const resolve = this.resolve;
    this.resolve = undefined;
    resolve?.();
  }
}
