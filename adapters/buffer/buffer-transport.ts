import { mkdir } from 'node:fs/promises';
import { resolve } from 'node:path';
import { asyncScheduler, BehaviorSubject, Observable, type SchedulerLike, type Subscription } from 'rxjs';
import {
  consoleLogger,
  EndpointError,
  NotConnectedError,
  publishEach,
  type ConsumeOptions,
  type Delivery,
  type DepthReportingTransport,
  type Endpoint,
  type EndpointDepth,
  type Message,
  type StatusReportingTransport,
  type Transport,
  type TransportStatus,
} from '../../src/core/index.ts';
import { DEFAULT_MAX_BYTES, DEFAULT_MAX_ENTRIES, DEFAULT_REDELIVERY, DEFAULT_SEGMENT_BYTES, parseBufferEndpoint, validateBufferTransportOptions, type BufferTransportOptions } from './buffer-options.ts';
import type { BufferConsumer, BufferLimits, BufferSettings, BufferStats } from './buffer-types.ts';
import { DurableBuffer } from './durable-buffer.ts';

/** The buffer transport's status: its state and every open buffer's depth. */
export interface BufferTransportStatus extends TransportStatus {
  readonly state: 'idle' | 'open' | 'closed';
  /** The directory the buffers live in (resolved). */
  readonly directory: string;
  readonly buffers: readonly BufferStats[];
}

interface Slot {
  readonly opening: Promise<DurableBuffer>;
  opened?: DurableBuffer;
  /** The limits an endpoint URI stated for it, if any did. */
  stated?: BufferLimits;
}

/** How often at most the status is sampled again while buffers change. */
const STATUS_INTERVAL_MS = 250;

/**
 * Durable local buffers as a transport: `buffer:<name>` is a store-and-forward queue on the local
 * disk (Redpanda Connect's sqlite buffer, Vector's disk buffers), so one route can go on taking
 * messages while the destination of the next one is down: `from('mqtt:…')…to('buffer:telemetry')`,
 * then `from('buffer:telemetry')…to('amqp:…')`.
 *
 * Storage: our own append-only log of segment files with a CRC32 per record (`node:fs` and
 * `zlib.crc32`, Node ≥ 20.15), no dependency. SQLite was ruled out: better-sqlite3 13 segfaults on
 * this Node 20, version 12 needs a native build, and npm 11 gates install scripts. A log with a group
 * commit fsync is exactly the access pattern — append at the tail, read from the head, delete whole
 * segments once acknowledged. Layout: `<directory>/<name>/` holds `<first seq>.log` segments, the
 * `cursor` file and a `lock` file.
 *
 * Contract (the transport SPI, plus):
 * - `publish` resolves once every message is fsync'd (concurrent publishes share one write + fsync).
 *   A message that cannot be stored fails alone (`BufferUnencodableError` in a `PartialPublishError`).
 *   Bounded by `maxEntries` / `maxBytes` of unacknowledged entries per buffer (`?maxEntries=`,
 *   `?maxBytes=` per endpoint): when full, publish waits — never drops — with one WARN per episode.
 * - `consume`: one consumer per buffer at a time (a second one errors with `BufferBusyError`), in
 *   append order, at most `prefetch` unsettled. A nacked entry comes back (attempt + 1) after a
 *   backoff, before anything newer, forever: the buffer never dead-letters, the route's error policy
 *   does. Unsubscribing leaves the unsettled entries in the buffer, delivered again next.
 * - Acknowledged entries are deleted; the cursor is persisted at most every `cursorIntervalMs` (25 ms)
 *   and on close: after a crash, entries acknowledged in that window are delivered again
 *   (at-least-once: duplicates, never loss). Restart resumes from the cursor; a torn last record is
 *   truncated, a corrupt one quarantined (`<segment>.corrupt-<n>`, ERROR log) and skipped.
 * - A buffer directory is locked by one process (`BufferLockedError` names the holder's pid; a lock
 *   left by a dead process is taken over).
 * - `close` stops consuming, fails publishes still waiting for room, finishes writes, persists the
 *   cursors and releases the locks. Idempotent; `connect` opens again.
 */
export class BufferTransport implements Transport, StatusReportingTransport<BufferTransportStatus>, DepthReportingTransport {
  readonly scheme = 'buffer';
  /** The directory the buffers live in, resolved. */
  readonly directory: string;
  private readonly maxEntries: number;
  private readonly maxBytes: number;
  private readonly settings: BufferSettings;
  private readonly scheduler: SchedulerLike;
  private readonly slots = new Map<string, Slot>();
  private readonly intakes = new Set<BufferConsumer>();
  private state: BufferTransportStatus['state'] = 'idle';
  private since = Date.now();
  private closing: Promise<void> | undefined;
  private statusTimer: Subscription | undefined;
  private readonly statusSubject: BehaviorSubject<BufferTransportStatus>;

  /** Throws `InvalidOptionsError` for invalid options (a missing `directory`, an unknown option…). */
  constructor(options: BufferTransportOptions) {
    validateBufferTransportOptions(options);
    const { directory, maxEntries = DEFAULT_MAX_ENTRIES, maxBytes = DEFAULT_MAX_BYTES, segmentBytes = DEFAULT_SEGMENT_BYTES, logger = consoleLogger, redelivery = DEFAULT_REDELIVERY, scheduler = asyncScheduler, cursorIntervalMs = 25 } = options;
    this.directory = resolve(directory);
    this.maxEntries = maxEntries;
    this.maxBytes = maxBytes;
    this.scheduler = scheduler;
    this.settings = { segmentBytes, logger, redelivery, scheduler, cursorIntervalMs, onChange: () => this.changed() };
    this.statusSubject = new BehaviorSubject<BufferTransportStatus>(this.snapshot());
  }

  get status$(): Observable<BufferTransportStatus> {
    return this.statusSubject.asObservable();
  }

  /** Creates the directory; after `close`, makes the transport usable again (buffers reopen on first use). */
  async connect(): Promise<void> {
    if (this.closing !== undefined) await this.closing;
    await mkdir(this.directory, { recursive: true });
    this.closing = undefined;
    this.setState('open');
  }

  async publish(endpoint: Endpoint, messages: readonly Message[]): Promise<void> {
    const buffer = await this.buffer(endpoint);
    await publishEach(messages, (message) => buffer.encode(message), (payloads) => buffer.append(payloads));
  }

  consume(endpoint: Endpoint, options: ConsumeOptions = {}): Observable<Delivery> {
    return new Observable<Delivery>((subscriber) => {
      if (options.signal?.aborted === true) {
        subscriber.complete();
        return undefined;
      }
      const consumer: BufferConsumer = {
        prefetch: Math.max(1, options.prefetch ?? 100),
        intake: true,
        unsettled: new Set(),
        emit: (delivery) => subscriber.next(delivery),
        fail: (error) => subscriber.error(error),
      };
      let buffer: DurableBuffer | undefined;
      let unsubscribed = false;
      // abort stops the intake only: emitted deliveries may still be settled, unsubscribing hands back the rest
      const onAbort = (): void => {
        consumer.intake = false;
      };
      options.signal?.addEventListener('abort', onAbort, { once: true });
      this.intakes.add(consumer);
      this.buffer(endpoint).then(
        (opened) => {
          if (unsubscribed) return;
          try {
            opened.attach(consumer);
            buffer = opened;
          } catch (error) {
            subscriber.error(error);
          }
        },
        (error: unknown) => {
          if (!unsubscribed) subscriber.error(error);
        },
      );
      return () => {
        unsubscribed = true;
        options.signal?.removeEventListener('abort', onAbort);
        this.intakes.delete(consumer);
        buffer?.detach(consumer);
      };
    });
  }

  /** Depth and counters of every buffer opened since `connect`. */
  stats(): BufferStats[] {
    const stats: BufferStats[] = [];
    for (const slot of this.slots.values()) if (slot.opened !== undefined) stats.push(slot.opened.stats());
    return stats;
  }

  /** Each open buffer's depth (`buffer:<name>`): entries not yet acknowledged by its consumer, their bytes, the bounds. */
  depths(): EndpointDepth[] {
    return this.stats().map((stats) => ({ uri: `buffer:${stats.name}`, messages: stats.entries, bytes: stats.bytes, capacityMessages: stats.capacityEntries, capacityBytes: stats.capacityBytes, full: stats.full }));
  }

  /** See the class contract. */
  close(): Promise<void> {
    if (this.closing !== undefined) return this.closing;
    this.setState('closed');
    for (const consumer of this.intakes) consumer.intake = false;
    const slots = [...this.slots.values()];
    this.slots.clear();
    this.closing = (async () => {
      const buffers = await Promise.all(slots.map((slot) => slot.opening.catch(() => undefined)));
      await Promise.all(buffers.map((buffer) => buffer?.close()));
      this.statusTimer?.unsubscribe();
      this.statusTimer = undefined;
      this.statusSubject.next({ ...this.snapshot(), buffers: buffers.flatMap((buffer) => (buffer === undefined ? [] : [buffer.stats()])) });
    })();
    return this.closing;
  }

  /** The endpoint's buffer, opened on first use; `EndpointError` for a bad name or options, or limits other than another endpoint stated. */
  private async buffer(endpoint: Endpoint): Promise<DurableBuffer> {
    if (this.state === 'closed') throw new NotConnectedError(`buffer transport is closed; cannot use '${endpoint.uri}'`);
    const parsed = parseBufferEndpoint(endpoint);
    const stated = parsed.maxEntries !== undefined || parsed.maxBytes !== undefined;
    const limits: BufferLimits = { maxEntries: parsed.maxEntries ?? this.maxEntries, maxBytes: parsed.maxBytes ?? this.maxBytes };
    const existing = this.slots.get(parsed.name);
    if (existing === undefined) {
      const slot: Slot = { opening: DurableBuffer.open(this.directory, parsed.name, limits, this.settings), ...(stated ? { stated: limits } : {}) };
      this.slots.set(parsed.name, slot);
      try {
        slot.opened = await slot.opening;
      } catch (error) {
        if (this.slots.get(parsed.name) === slot) this.slots.delete(parsed.name); // a later use tries again (a lock released since)
        throw error;
      }
      this.changed();
      return slot.opened;
    }
    const buffer = await existing.opening;
    if (stated) {
      if (existing.stated === undefined) {
        existing.stated = limits;
        buffer.setLimits(limits);
      } else if (existing.stated.maxEntries !== limits.maxEntries || existing.stated.maxBytes !== limits.maxBytes) {
        throw new EndpointError(`'${endpoint.uri}' states maxEntries=${limits.maxEntries}, maxBytes=${limits.maxBytes} for buffer '${parsed.name}', which another endpoint opened with maxEntries=${existing.stated.maxEntries}, maxBytes=${existing.stated.maxBytes}`);
      }
    }
    return buffer;
  }

  private setState(state: BufferTransportStatus['state']): void {
    if (state !== this.state) this.since = Date.now();
    this.state = state;
    this.statusSubject.next(this.snapshot());
  }

  /** A buffer changed: the status is sampled again soon (not on every entry). */
  private changed(): void {
    if (this.statusTimer !== undefined || this.state === 'closed') return;
    this.statusTimer = this.scheduler.schedule(() => {
      this.statusTimer = undefined;
      this.statusSubject.next(this.snapshot());
    }, STATUS_INTERVAL_MS);
  }

  private snapshot(): BufferTransportStatus {
    return { state: this.state, since: this.since, directory: this.directory, buffers: this.stats() };
  }
}
