import { Gauge, type Registry } from 'prom-client';

/** What an outbox relay says of its table (`OutboxRelay.backlog()` in `adapters/postgres`). */
export interface OutboxBacklogSource {
  backlog(): Promise<{ readonly pending: number; readonly inFlight: number; readonly parked: number; readonly lagMs: number }>;
}

/** How long one backlog query may take before the scrape goes on without it (Prometheus' own scrape timeout is 10 s). */
const BACKLOG_TIMEOUT_MS = 2_000;

interface Watched {
  readonly source: OutboxBacklogSource;
  up: boolean;
  pending: number;
  inFlight: number;
  parked: number;
  lagSeconds: number;
  /** The query of the scrape in progress: every gauge of one scrape waits for the same one. */
  query: Promise<void> | undefined;
}

/**
 * Outbox gauges, queried at scrape time, one query per outbox per scrape. A query that fails or takes
 * longer than 2 s leaves the last values in place and sets `outbox_up` to 0: a database outage shows
 * in the metrics instead of failing the scrape.
 */
export class OutboxGauges {
  private readonly outboxes = new Map<string, Watched>();

  constructor(registry: Registry, prefix: string) {
    const gauge = (name: string, help: string, read: (watched: Watched) => number): void => {
      const refresh = (): Promise<void> => this.refresh();
      const outboxes = this.outboxes;
      new Gauge({
        name: `${prefix}${name}`,
        help,
        labelNames: ['outbox'],
        registers: [registry],
        async collect() {
          await refresh();
          this.reset();
          for (const [outbox, watched] of outboxes) this.set({ outbox }, read(watched));
        },
      });
    };
    gauge('outbox_up', 'Whether the last backlog query of the outbox succeeded (1) or failed or timed out (0).', (watched) => (watched.up ? 1 : 0));
    gauge('outbox_pending_rows', 'Rows waiting to be published, leased ones included.', (watched) => watched.pending);
    gauge('outbox_in_flight_partitions', 'Partitions a relay is publishing right now.', (watched) => watched.inFlight);
    gauge('outbox_parked_rows', 'Rows parked after failing to publish, waiting for an operator.', (watched) => watched.parked);
    gauge('outbox_lag_seconds', 'Age of the oldest pending row (0 when none): how far the relay is behind.', (watched) => watched.lagSeconds);
  }

  /** Watches one more outbox under `name` (a second call with the same name replaces the first). */
  watch(source: OutboxBacklogSource, name: string): void {
    this.outboxes.set(name, { source, up: false, pending: 0, inFlight: 0, parked: 0, lagSeconds: 0, query: undefined });
  }

  private async refresh(): Promise<void> {
    await Promise.all([...this.outboxes.values()].map((watched) => (watched.query ??= query(watched).finally(() => (watched.query = undefined)))));
  }
}

async function query(watched: Watched): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error('outbox backlog query timed out')), BACKLOG_TIMEOUT_MS);
    timer.unref();
  });
  try {
    const backlog = await Promise.race([watched.source.backlog(), timeout]);
    watched.pending = backlog.pending;
    watched.inFlight = backlog.inFlight;
    watched.parked = backlog.parked;
    watched.lagSeconds = backlog.lagMs / 1000;
    watched.up = true;
  } catch {
    watched.up = false;
  } finally {
    clearTimeout(timer);
  }
}
