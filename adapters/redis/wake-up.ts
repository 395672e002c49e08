/**
 * A loop's pause that something else can end early: `sleep(ms)` resolves after `ms` (never, without
 * one) or at the next `wake()`, whichever comes first — a consumer loop waiting for a free slot, a
 * stop, or its next poll.
 * @example await this.pause.sleep(5_000); // … elsewhere: this.pause.wake();
 */
export class WakeUp {
  private waiting: (() => void) | undefined;

  sleep(ms?: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = ms === undefined ? undefined : setTimeout(() => this.wake(), ms);
      this.waiting = () => {
        if (timer !== undefined) clearTimeout(timer);
        resolve();
      };
    });
  }

  wake(): void {
    const waiting = this.waiting;
    this.waiting = undefined;
    waiting?.();
  }
}
