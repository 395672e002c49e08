/**
 * What examples/nats-to-redis does to a message, and its names: pure functions, no I/O.
 * A `parcel.scanned@1` scan (validated before it gets here) becomes a tracking event for the
 * customer-facing tracking service, which reads a Redis stream.
 */
import { createMessage, InterchangeError, type Message } from 'interchange-eip';
import type { ParcelScannedV1 } from '../../schemas/types.generated.ts';

/** What the tracking service reads from the Redis stream: one event per scan. */
export interface TrackingEvent {
  readonly parcelId: string;
  /** What the customer sees. */
  readonly status: 'IN_TRANSIT' | 'OUT_FOR_DELIVERY' | 'DELIVERED';
  /** The scan it comes from: `received`, `sorted`, … */
  readonly step: ParcelScannedV1['scan'];
  readonly facility: string;
  /** When the scan happened, milliseconds since 1970-01-01T00:00:00Z. */
  readonly at: number;
  /** The weight in kilograms (grams ÷ 1,000, not rounded). */
  readonly weightKg: number;
}

/** The flow's endpoints, all under one prefix (`FLOW_PREFIX`): one server, several flows (tenants, tests). */
export interface FlowNames {
  /** JetStream stream the scanners publish to. */
  readonly stream: string;
  /** Subject of the scans in that stream. */
  readonly subject: string;
  /** Redis stream of the tracking events. */
  readonly eventsKey: string;
  /** Redis stream of the scans the contract refused, with the reason. */
  readonly invalidKey: string;
  /** `nats:jetstream/<stream>/<subject>`: the route's source (its default durable consumer). */
  readonly source: string;
  /** `redis:stream/<events>?maxLen=…`: where tracking events go. */
  readonly events: string;
  /** `redis:stream/<invalid>?maxLen=…`: the dead letters. */
  readonly invalid: string;
}

/** Stream, subject and keys under `prefix` (letters, digits, `_`, `-`; up to 40): `''` → `PARCELS`, `parcels.scanned`, `tracking:events`. */
export function flowNames(prefix = ''): FlowNames {
  if (!/^[A-Za-z0-9_-]{0,40}$/.test(prefix)) throw new RangeError(`FLOW_PREFIX must be up to 40 letters, digits, _ and -, got '${prefix}'`);
  const stream = prefix === '' ? 'PARCELS' : `${prefix}_PARCELS`;
  const subject = prefix === '' ? 'parcels.scanned' : `${prefix}.parcels.scanned`;
  const eventsKey = prefix === '' ? 'tracking:events' : `${prefix}:tracking:events`;
  const invalidKey = prefix === '' ? 'tracking:invalid' : `${prefix}:tracking:invalid`;
  return {
    stream,
    subject,
    eventsKey,
    invalidKey,
    source: `nats:jetstream/${stream}/${subject}`,
    events: `redis:stream/${eventsKey}?maxLen=100000`,
    invalid: `redis:stream/${invalidKey}?maxLen=100000`,
  };
}

/** A valid `scannedAt` that is no instant JavaScript can hold (a leap second, `23:59:60`): permanent, dead-lettered. */
export class ScanTimeError extends InterchangeError {
  override readonly name = 'ScanTimeError';
  constructor(scannedAt: string) {
    super('SCAN_TIME_UNUSABLE', `scannedAt '${scannedAt}' is no instant the tracking service can store`, { permanent: true });
  }
}

const STATUS: Record<ParcelScannedV1['scan'], TrackingEvent['status']> = {
  received: 'IN_TRANSIT',
  sorted: 'IN_TRANSIT',
  loaded: 'IN_TRANSIT',
  'out-for-delivery': 'OUT_FOR_DELIVERY',
  delivered: 'DELIVERED',
};

/**
 * The message translator: scan → tracking event. Throws `ScanTimeError` (permanent) for a
 * `scannedAt` the contract admits but `Date` cannot hold.
 */
export function toTrackingEvent({ body }: Message<ParcelScannedV1>): TrackingEvent {
  const at = Date.parse(body.scannedAt);
  if (!Number.isFinite(at)) throw new ScanTimeError(body.scannedAt);
  return { parcelId: body.parcelId, status: STATUS[body.scan], step: body.scan, facility: body.facility, at, weightKg: body.weightGrams / 1000 };
}

/**
 * The sample scans a bare run publishes: three valid ones of parcel `PX-<run>` (received, sorted,
 * delivered) and two the contract refuses — an unknown scan with a negative weight, and a payload
 * that is not JSON at all.
 */
export function sampleScans(run: string = Date.now().toString(36).toUpperCase()): { readonly valid: Message[]; readonly invalid: Message[] } {
  const parcelId = `PX-${run}`;
  const scan = (step: ParcelScannedV1['scan'], facility: string, minutes: number): Message =>
    createMessage<ParcelScannedV1>({ parcelId, facility, scan: step, scannedAt: new Date(Date.UTC(2026, 0, 5, 8, minutes)).toISOString(), weightGrams: 2350 });
  return {
    valid: [scan('received', 'LYS2', 0), scan('sorted', 'LYS2', 45), scan('delivered', 'PAR11', 600)],
    invalid: [
      createMessage({ parcelId, facility: 'PAR11', scan: 'lost', scannedAt: '2026-01-05T18:30:00Z', weightGrams: -5 }),
      createMessage(`${parcelId} scanned at PAR11`, { headers: { contentType: 'text/plain' } }),
    ],
  };
}
