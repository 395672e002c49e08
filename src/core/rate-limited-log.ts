import { asyncScheduler, type SchedulerLike, type Subscription } from 'rxjs';
import type { Logger } from './logger.ts';

export interface RateLimitedLogOptions {
  /** Lines written per key and window; later ones are counted, not written (default 10). */
  readonly limit?: number;
  /** The window's length, from the first line of a key (default 60 s). */
  readonly windowMs?: number;
  /** The clock and the timer of the summary lines (a `VirtualTimeScheduler` in tests). */
  readonly scheduler?: SchedulerLike;
}

interface Window {
  readonly startedAt: number;
  written: number;
  suppressed: number;
  /** What the summary line repeats of the suppressed lines: the first one's message and `about` fields. */
  message: string;
  about: Readonly<Record<string, unknown>>;
  summary: Subscription | undefined;
}

/**
 * WARN lines that a flood cannot drown the log with: per `key` (e.g. route + error code), the first
 * `limit` lines of a window are written; the rest are counted, and one summary line saying how many
 * were suppressed is written when the window ends (or on `flush`). A key's window starts at its first
 * line after the previous window ended. A timer runs only while a key has suppressed lines, so an idle
 * log holds no timer; `flush` cancels them (call it when the owner stops).
 * @example
 * const warnings = new RateLimitedLog(log, { limit: 10, windowMs: 60_000 });
 * warnings.warn(`${route}:${code}`, 'message dead-lettered', { route, code, messageId }, { route, code });
 */
export class RateLimitedLog {
  private readonly windows = new Map<string, Window>();
  private readonly limit: number;
  private readonly windowMs: number;
  private readonly scheduler: SchedulerLike;

  constructor(
    private readonly log: Logger,
    { limit = 10, windowMs = 60_000, scheduler = asyncScheduler }: RateLimitedLogOptions = {},
  ) {
    this.limit = limit;
    this.windowMs = windowMs;
    this.scheduler = scheduler;
  }

  /**
   * Writes `message` as a WARN line unless `key` has had `limit` lines in its current window.
   * `about` is what the window's summary line repeats (default `fields`; leave per-message ids out).
   */
  warn(key: string, message: string, fields: Readonly<Record<string, unknown>>, about: Readonly<Record<string, unknown>> = fields): void {
    const now = this.scheduler.now();
    let window = this.windows.get(key);
    if (window !== undefined && now - window.startedAt >= this.windowMs) {
      this.close(key, window);
      window = undefined;
    }
    if (window === undefined) {
      window = { startedAt: now, written: 0, suppressed: 0, message, about, summary: undefined };
      this.windows.set(key, window);
    }
    if (window.written < this.limit) {
      window.written += 1;
      this.log.warn(message, fields);
      return;
    }
    window.suppressed += 1;
    if (window.summary !== undefined) return;
    window.message = message;
    window.about = about;
    const open = window;
    open.summary = this.scheduler.schedule(() => {
      open.summary = undefined;
      if (this.windows.get(key) === open) this.close(key, open);
    }, Math.max(0, open.startedAt + this.windowMs - now));
  }

  /** Writes the summary of every window with suppressed lines now and forgets all windows. */
  flush(): void {
    for (const [key, window] of [...this.windows]) this.close(key, window);
  }

  private close(key: string, window: Window): void {
    this.windows.delete(key);
    window.summary?.unsubscribe();
    window.summary = undefined;
    if (window.suppressed === 0) return;
    this.log.warn(`${window.message}: ${window.suppressed} more not logged (at most ${this.limit} per ${this.windowMs / 1000} s)`, { ...window.about, suppressed: window.suppressed });
  }
}
