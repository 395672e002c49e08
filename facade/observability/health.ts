import { isDepthReportingTransport, isStatusReportingTransport, type EndpointDepth, type Transport, type TransportStatus } from '../../src/core/index.ts';
import type { RouteStatus } from '../../src/runtime/route-runtime.ts';

export interface RouteCheck {
  readonly id: string;
  readonly status: RouteStatus;
  /** Started. */
  readonly ok: boolean;
}

export interface TransportCheck {
  readonly scheme: string;
  /** The adapter's latest state (`connected`, `reconnecting`, `open`…), or `not-reported` for a transport without `status$`. */
  readonly state: string;
  readonly ok: boolean;
  /** The last connection error, redacted by the adapter. */
  readonly lastError?: string;
}

export interface BufferCheck {
  readonly uri: string;
  readonly messages: number;
  readonly capacityMessages?: number;
  readonly bytes?: number;
  readonly capacityBytes?: number;
  readonly full: boolean;
  /** Not full, and below the high-water mark in messages and in bytes. */
  readonly ok: boolean;
}

/** Liveness and readiness, as `/health/live` and `/health/ready` answer them (Kubernetes probes). */
export interface Health {
  readonly live: { readonly status: 'up' | 'down' };
  readonly ready: {
    readonly status: 'ready' | 'unready';
    readonly checks: {
      readonly routes: readonly RouteCheck[];
      readonly transports: readonly TransportCheck[];
      readonly buffers: readonly BufferCheck[];
    };
  };
}

export interface HealthOptions {
  /** A buffer is unready from this share of its capacity (messages or bytes) on (default 0.9). */
  readonly highWaterMark?: number;
  /**
   * Transport states that count as connected (default `connected` — AMQP — and `open` — the durable
   * buffer). AMQP's `blocked` (the broker holds publishes: memory or disk alarm), `connecting`,
   * `reconnecting`, `idle` and `closed` are unready.
   */
  readonly connectedStates?: ReadonlySet<string>;
  /** Whether the integration was stopped: liveness is `down` from then on (default: never). */
  readonly stopped?: () => boolean;
}

/** What health is read from: an `Integration` is one. */
export interface HealthSource {
  readonly routes: readonly { readonly id: string; readonly status: RouteStatus }[];
  readonly transports: { readonly all: readonly Transport[] };
}

export const DEFAULT_CONNECTED_STATES: ReadonlySet<string> = new Set(['connected', 'open']);

/**
 * The integration's health: live while it was not stopped; ready when every route is started, every
 * transport that reports its status (`StatusReportingTransport`) is connected, and every buffer a
 * transport reports (`DepthReportingTransport`) is below its high-water mark and not full. A transport
 * that reports no status (memory) is taken as connected: its state is `not-reported`.
 * Synchronous and cheap: `status$` replays the current status on subscription, depths are counters.
 * @example const { ready } = healthOf(integration); if (ready.status === 'unready') console.log(ready.checks)
 */
export function healthOf(source: HealthSource, { highWaterMark = 0.9, connectedStates = DEFAULT_CONNECTED_STATES, stopped }: HealthOptions = {}): Health {
  const routes = source.routes.map((route) => ({ id: route.id, status: route.status, ok: route.status === 'started' }));
  const transports: TransportCheck[] = [];
  const buffers: BufferCheck[] = [];
  for (const transport of source.transports.all) {
    transports.push(transportCheck(transport, connectedStates));
    if (!isDepthReportingTransport(transport)) continue;
    for (const depth of transport.depths()) if (depth.transient !== true) buffers.push(bufferCheck(depth, highWaterMark));
  }
  const ready = routes.every((check) => check.ok) && transports.every((check) => check.ok) && buffers.every((check) => check.ok);
  return {
    live: { status: stopped?.() === true ? 'down' : 'up' },
    ready: { status: ready ? 'ready' : 'unready', checks: { routes, transports, buffers } },
  };
}

function transportCheck(transport: Transport, connectedStates: ReadonlySet<string>): TransportCheck {
  if (!isStatusReportingTransport(transport)) return { scheme: transport.scheme, state: 'not-reported', ok: true };
  let latest: TransportStatus | undefined;
  // the contract: status$ emits the current status at once on subscription
  transport.status$.subscribe((status) => (latest = status)).unsubscribe();
  const status = latest as TransportStatus | undefined;
  if (status === undefined) return { scheme: transport.scheme, state: 'unknown', ok: false };
  return { scheme: transport.scheme, state: status.state, ok: connectedStates.has(status.state), ...(status.lastError === undefined ? {} : { lastError: status.lastError }) };
}

function bufferCheck(depth: EndpointDepth, highWaterMark: number): BufferCheck {
  const full = depth.full === true;
  const below = (held: number | undefined, capacity: number | undefined): boolean => held === undefined || capacity === undefined || held < capacity * highWaterMark;
  return {
    uri: depth.uri,
    messages: depth.messages,
    ...(depth.capacityMessages === undefined ? {} : { capacityMessages: depth.capacityMessages }),
    ...(depth.bytes === undefined ? {} : { bytes: depth.bytes }),
    ...(depth.capacityBytes === undefined ? {} : { capacityBytes: depth.capacityBytes }),
    full,
    ok: !full && below(depth.messages, depth.capacityMessages) && below(depth.bytes, depth.capacityBytes),
  };
}
