import type { RouteMetrics } from '../../src/runtime/route-metrics.ts';
import { liveLine } from './live-line.ts';

/** Where the display writes: `process.stdout` or a test double. */
export interface LiveOutput {
  readonly isTTY?: boolean;
  /** Terminal width; lines are cut to it on a TTY so that redrawing in place stays aligned. */
  readonly columns?: number;
  write(text: string): unknown;
}

export type MetricsSnapshot = Readonly<Record<string, Readonly<RouteMetrics>>>;

const CURSOR_UP = (lines: number): string => `\x1b[${lines}A`;
const CLEAR_LINE = '\x1b[2K';

/**
 * A line per route every tick (default each second). On a TTY the lines are redrawn in place;
 * otherwise (a pipe, a log file) a route's line is printed at the first tick and then only when one
 * of its counters changed since it was last printed. The rate is over the time since the previous tick. Nothing else may write to the same output between `start` and `stop`.
 */
export class LiveDisplay {
  private previous: MetricsSnapshot = {};
  private previousAt = 0;
  private drawnLines = 0;
  /** Not a TTY: the counters each route's last printed line showed. */
  private readonly printed = new Map<string, Readonly<RouteMetrics>>();
  private timer: NodeJS.Timeout | undefined;

  /** Not a TTY: the extra lines last printed. */
  private printedExtra: readonly string[] = [];

  /**
   * @param extra lines drawn under the routes' lines each tick (a durable buffer's depth); on a pipe
   *   they are printed when they changed.
   */
  constructor(
    private readonly sample: () => MetricsSnapshot,
    private readonly output: LiveOutput,
    private readonly clock: () => number = () => performance.now(),
    private readonly extra: () => readonly string[] = () => [],
  ) {}

  start(intervalMs = 1000): void {
    this.previous = snapshot(this.sample());
    this.previousAt = this.clock();
    this.timer = setInterval(() => this.tick(), intervalMs);
  }

  /** Samples the metrics and writes the lines for the time since the previous tick. */
  tick(): void {
    const now = this.clock();
    const current = snapshot(this.sample());
    const elapsedSeconds = (now - this.previousAt) / 1000;
    const ids = Object.keys(current);
    const idWidth = Math.max(0, ...ids.map((id) => id.length));
    const line = (id: string): string => liveLine(id, this.previous[id], current[id] as RouteMetrics, elapsedSeconds, { idWidth });
    if (this.output.isTTY === true) {
      const width = this.output.columns;
      const fit = (text: string): string => (width !== undefined && width > 0 ? text.slice(0, width - 1) : text);
      const up = this.drawnLines > 0 ? CURSOR_UP(this.drawnLines) : '';
      const lines = [...ids.map(line), ...this.extra()];
      this.output.write(up + lines.map((text) => `${CLEAR_LINE}${fit(text)}\n`).join(''));
      this.drawnLines = lines.length;
    } else {
      const changed = ids.filter((id) => !sameCounters(this.printed.get(id), current[id] as RouteMetrics));
      const extra = this.extra();
      const extraChanged = extra.filter((text, index) => this.printedExtra[index] !== text);
      this.printedExtra = extra;
      if (changed.length + extraChanged.length > 0) this.output.write([...changed.map(line), ...extraChanged].map((text) => `${text}\n`).join(''));
      for (const id of changed) this.printed.set(id, current[id] as RouteMetrics);
    }
    this.previous = current;
    this.previousAt = now;
  }

  /** Stops ticking; the last lines stay on screen and the cursor is below them. */
  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }
}

/** A copy that later counting cannot change: the per-step `sent` counters are an object of their own. */
function snapshot(sample: MetricsSnapshot): MetricsSnapshot {
  const copy: Record<string, Readonly<RouteMetrics>> = {};
  for (const id in sample) {
    const metrics = sample[id] as Readonly<RouteMetrics>;
    copy[id] = { ...metrics, sent: { ...metrics.sent } };
  }
  return copy;
}

function sameCounters(a: Readonly<RouteMetrics> | undefined, b: Readonly<RouteMetrics>): boolean {
  if (a === undefined) return false;
  const sameSent = Object.keys(b.sent).length === Object.keys(a.sent).length && Object.keys(b.sent).every((step) => a.sent[step] === b.sent[step]);
  // per-step counters change only with the route's own (received, completed…): the line shows those
  return sameSent && (Object.keys(b) as (keyof RouteMetrics)[]).every((key) => key === 'sent' || key === 'steps' || a[key] === b[key]);
}
