import { Counter, Gauge, type Registry } from 'prom-client';
import type { Subscription } from 'rxjs';
import { isDepthReportingTransport, isStatusReportingTransport, type EndpointDepth, type Transport } from '../../src/core/index.ts';

/**
 * States in which a transport's link is up, across the adapters: AMQP `connected` and `blocked` (up,
 * publishes held by the broker's flow control), the buffer's `open`.
 */
const UP_STATES: ReadonlySet<string> = new Set(['connected', 'blocked', 'open']);
/** States a transport enters on purpose (before connecting, after closing): leaving `up` for them is no loss. */
const DELIBERATE_STATES: ReadonlySet<string> = new Set(['idle', 'closed']);

interface Watched {
  readonly scheme: string;
  up: boolean;
  /** Times the link went from up to down other than by closing (each one starts a reconnect). */
  reconnects: number;
  subscription: Subscription | undefined;
}

/**
 * Per transport: whether its link is up and how often it was lost, from `status$` (subscribed from
 * the start: it emits the current state at once, and holds no timer); per endpoint of a transport
 * that reports depth: what it holds, read at scrape time (`depths()` is synchronous and cheap).
 * Transports without these abilities (memory) have no series here.
 */
export class TransportGauges {
  private readonly watched: Watched[] = [];

  constructor(
    private readonly transports: () => readonly Transport[],
    registry: Registry,
    prefix: string,
  ) {
    for (const transport of transports()) {
      if (!isStatusReportingTransport(transport)) continue;
      const entry: Watched = { scheme: transport.scheme, up: false, reconnects: 0, subscription: undefined };
      entry.subscription = transport.status$.subscribe((status) => {
        const up = UP_STATES.has(status.state);
        if (entry.up && !up && !DELIBERATE_STATES.has(status.state)) entry.reconnects += 1;
        entry.up = up;
      });
      this.watched.push(entry);
    }
    const watched = this.watched;
    new Gauge({
      name: `${prefix}transport_up`,
      help: 'Whether the transport link is up (1) or not (0), for transports that report their status.',
      labelNames: ['transport'],
      registers: [registry],
      collect() {
        this.reset();
        for (const entry of watched) this.set({ transport: entry.scheme }, entry.up ? 1 : 0);
      },
    });
    new Counter({
      name: `${prefix}transport_reconnects_total`,
      help: 'Times the transport link was lost while open (up to down, other than by closing); each starts a reconnect.',
      labelNames: ['transport'],
      registers: [registry],
      collect() {
        this.reset();
        for (const entry of watched) this.inc({ transport: entry.scheme }, entry.reconnects);
      },
    });
    this.depthGauge(registry, `${prefix}endpoint_depth_messages`, 'Messages an endpoint holds, not yet taken and acknowledged by a consumer.', (depth) => depth.messages);
    this.depthGauge(registry, `${prefix}endpoint_depth_bytes`, 'Bytes an endpoint holds, where its transport knows them.', (depth) => depth.bytes);
    this.depthGauge(registry, `${prefix}endpoint_capacity_messages`, "An endpoint's bound in messages, where it has one.", (depth) => depth.capacityMessages);
    this.depthGauge(registry, `${prefix}endpoint_capacity_bytes`, "An endpoint's bound in bytes, where it has one.", (depth) => depth.capacityBytes);
  }

  /** Stops following the transports' status. */
  close(): void {
    for (const entry of this.watched) entry.subscription?.unsubscribe();
  }

  private depthGauge(registry: Registry, name: string, help: string, read: (depth: EndpointDepth) => number | undefined): void {
    const transports = this.transports;
    new Gauge({
      name,
      help,
      labelNames: ['transport', 'endpoint'],
      registers: [registry],
      collect() {
        this.reset();
        for (const transport of transports()) {
          if (!isDepthReportingTransport(transport)) continue;
          for (const depth of transport.depths()) {
            const value = read(depth);
            if (value !== undefined) this.set({ transport: transport.scheme, endpoint: depth.uri }, value);
          }
        }
      },
    });
  }
}
