import { isObservable, type Observable } from 'rxjs';
import type { Transport } from './transport.ts';

/** A transport's connection state as health checks read it; adapters add their own fields. */
export interface TransportStatus {
  /** The adapter's state name (`connected`, `reconnecting`, `closed`…). */
  readonly state: string;
  /** When the state was entered (epoch ms). */
  readonly since?: number;
  /** The last connection error, redacted. */
  readonly lastError?: string;
}

/**
 * An optional ability, apart from the `Transport` SPI: reporting connection state changes (for
 * health checks, the console, tests that cut a broker).
 *
 * Contract: `status$` emits the current status at once on subscription, then each change; it never
 * errors and completes at most when the transport is discarded.
 */
export interface StatusReportingTransport<S extends TransportStatus = TransportStatus> {
  readonly status$: Observable<S>;
}

/** Whether a transport reports its connection status (see `StatusReportingTransport`). */
export function isStatusReportingTransport(transport: Transport): transport is Transport & StatusReportingTransport {
  return isObservable((transport as Partial<StatusReportingTransport>).status$);
}
