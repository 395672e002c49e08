import { Histogram, type Registry } from 'prom-client';

/**
 * Seconds, from 100 µs to 10 s: in-process steps take microseconds, a broker confirm milliseconds, a
 * retried publish seconds (prom-client's defaults start at 5 ms, too coarse for a step).
 */
export const DEFAULT_BUCKETS: readonly number[] = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** One labelled series of a `CellHistogram`: `observe` is the whole per-message cost (a bucket scan and three additions). */
export class HistogramCell {
  /** Per bucket, not cumulative; the last one is `+Inf`. */
  private readonly counts: number[];
  sum = 0;
  count = 0;

  constructor(
    readonly labels: Readonly<Record<string, string>>,
    private readonly bounds: readonly number[],
  ) {
    this.counts = new Array<number>(bounds.length + 1).fill(0);
  }

  /** Records one value (`times` times: a batch of messages that waited as long), in seconds. */
  observe(seconds: number, times = 1): void {
    let index = 0;
    for (const bound of this.bounds) {
      if (seconds <= bound) break;
      index += 1;
    }
    const counts = this.counts;
    counts[index] = (counts[index] ?? 0) + times;
    this.sum += seconds * times;
    this.count += times;
  }

  /** Cumulative counts per bound (`le`), `+Inf` excluded (it is `count`). */
  cumulative(): number[] {
    let total = 0;
    return this.bounds.map((_, index) => (total += this.counts[index] ?? 0));
  }

  reset(): void {
    this.counts.fill(0);
    this.sum = 0;
    this.count = 0;
  }
}

type HistogramValues = Awaited<ReturnType<Histogram['get']>>;

/**
 * A prom-client `Histogram` whose series are `HistogramCell`s bound once (per route, step…) and
 * observed without prom-client's per-call label hashing and validation (about 1 µs each, measured:
 * several per message would cost more than the whole in-memory route). Registered, scraped and reset
 * like any prom-client histogram; its own `observe`/`labels` are not used.
 */
export class CellHistogram<L extends string> extends Histogram<L> {
  private readonly cells = new Map<string, HistogramCell>();
  private readonly bounds: readonly number[];
  private readonly metricName: string;
  private readonly helpText: string;

  constructor({ name, help, labelNames, buckets, registry }: { name: string; help: string; labelNames: readonly L[]; buckets: readonly number[]; registry: Registry }) {
    super({ name, help, labelNames, buckets: [...buckets], registers: [registry] });
    this.bounds = [...buckets].sort((a, b) => a - b);
    this.metricName = name;
    this.helpText = help;
  }

  /** The series of these label values, created at zero on first use (call it once, keep the cell). */
  cell(labels: Readonly<Record<L, string>>): HistogramCell {
    const key = JSON.stringify(labels);
    let cell = this.cells.get(key);
    if (cell === undefined) {
      cell = new HistogramCell(labels, this.bounds);
      this.cells.set(key, cell);
    }
    return cell;
  }

  override async get(): Promise<HistogramValues> {
    return this.values();
  }

  /** What the registry reads when it writes the text format (prom-client's own histogram has it too). */
  async getForPromString(): Promise<HistogramValues> {
    return this.values();
  }

  override reset(): void {
    // prom-client's constructor calls reset before this class has its fields
    if (this.cells === undefined) return;
    for (const cell of this.cells.values()) cell.reset();
  }

  private values(): HistogramValues {
    const bucket = `${this.metricName}_bucket`;
    const values: { labels: Record<string, string | number>; value: number; metricName: string }[] = [];
    for (const cell of this.cells.values()) {
      const cumulative = cell.cumulative();
      this.bounds.forEach((le, index) => values.push({ labels: { ...cell.labels, le }, value: cumulative[index] ?? 0, metricName: bucket }));
      values.push({ labels: { ...cell.labels, le: '+Inf' }, value: cell.count, metricName: bucket });
      values.push({ labels: cell.labels, value: cell.sum, metricName: `${this.metricName}_sum` });
      values.push({ labels: cell.labels, value: cell.count, metricName: `${this.metricName}_count` });
    }
    // prom-client's typings say `type: MetricType` (an enum) where its runtime writes the string
    return { name: this.metricName, help: this.helpText, type: 'histogram', aggregator: 'sum', values } as unknown as HistogramValues;
  }
}
