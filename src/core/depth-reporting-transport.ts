import type { Transport } from './transport.ts';

/** How much one endpoint of a transport holds (a queue, a durable buffer). */
export interface EndpointDepth {
  /** The endpoint's URI (`buffer:telemetry`). */
  readonly uri: string;
  /** Messages held, not yet taken and acknowledged by a consumer. */
  readonly messages: number;
  /** Bytes held, where the transport knows it. */
  readonly bytes?: number;
  /** Its bound in messages and bytes, where it has one. */
  readonly capacityMessages?: number;
  readonly capacityBytes?: number;
  /** At its bound: publishers are held until a consumer makes room. */
  readonly full?: boolean;
  /**
   * An in-process endpoint that fills and drains within microseconds under load (a `memory:` channel):
   * its depth is a metric, not a readiness signal nor a line on the CLI's live display.
   */
  readonly transient?: boolean;
}

/**
 * An optional ability, apart from the `Transport` SPI: saying how much each of its endpoints holds
 * (the CLI's live line, health checks, tests that watch a buffer rise and drain).
 *
 * Contract: `depths()` is synchronous and cheap (no I/O): counters the transport keeps anyway.
 */
export interface DepthReportingTransport {
  depths(): readonly EndpointDepth[];
}

/** Whether a transport reports its endpoints' depth (see `DepthReportingTransport`). */
export function isDepthReportingTransport(transport: Transport): transport is Transport & DepthReportingTransport {
  return typeof (transport as Partial<DepthReportingTransport>).depths === 'function';
}

/** `buffer:telemetry  depth 1234 (1.2 MiB)`, with the bound and `FULL` where there is one. */
export function depthLine(depth: EndpointDepth): string {
  const size = depth.bytes === undefined ? '' : ` (${mebibytes(depth.bytes)}${depth.capacityBytes === undefined ? '' : ` of ${mebibytes(depth.capacityBytes)}`})`;
  const bound = depth.capacityMessages === undefined ? '' : ` of ${depth.capacityMessages}`;
  return `${depth.uri}  depth ${depth.messages}${bound}${size}${depth.full === true ? '  FULL: sources held' : ''}`;
}

function mebibytes(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}
