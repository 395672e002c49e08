import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Subscription } from 'rxjs';
import { redelivered } from '../../src/channel/index.ts';
import { NotConnectedError, redeliveryDecision, scheduleTracked, type Message } from '../../src/core/index.ts';
import { BufferDelivery, type SettlementSink } from './buffer-delivery.ts';
import type { BufferConsumer, BufferLimits, BufferSettings, BufferStats } from './buffer-types.ts';
import { BufferBusyError, BufferRecordError, BufferUnencodableError } from './buffer-errors.ts';
import { readCursor, writeCursor } from './cursor-file.ts';
import { DirectoryLock } from './directory-lock.ts';
import { decodePayload, encodePayload, frameRecord, RECORD_HEADER_BYTES } from './record-codec.ts';
import { SegmentLog } from './segment-log.ts';

interface Producer {
  readonly payloads: readonly Buffer[];
  index: number;
  readonly writes: Promise<void>[];
  readonly resolve: () => void;
  readonly reject: (error: Error) => void;
}

/** An entry read or handed back, not being delivered now. */
interface Entry {
  readonly seq: number;
  readonly size: number;
  readonly message: Message;
  readonly intakeError: Error | undefined;
  /** A nacked entry waits for its backoff before it is delivered again. */
  ready: boolean;
}

const READAHEAD_BYTES = 4 * 1024 * 1024;

/**
 * One durable buffer: a `SegmentLog` in its own directory (locked), bounded, delivered in append order
 * to one consumer, its cursor persisted.
 *
 * Contract:
 * - `append` resolves once every entry is fsync'd. While the buffer holds `maxEntries` entries or
 *   `maxBytes` bytes not yet acknowledged it waits (never drops), publishers served in arrival order;
 *   one WARN per full episode, one INFO when there is room again.
 * - Delivery: from the oldest entry not yet delivered, at most `prefetch` unsettled. A nacked entry
 *   comes back (attempt + 1) after a backoff (`redeliveryDecision` with the redelivery backoff,
 *   forever: the buffer never dead-letters), before any newer entry — nothing newer is delivered
 *   while it waits. Entries unsettled when the consumer detaches come back at once, attempt + 1.
 * - Acknowledged entries are deleted: the cursor (lowest entry not acknowledged) is written at most
 *   every `cursorIntervalMs` and on close, then the segments wholly below it are deleted. After a
 *   crash, entries acknowledged since the last cursor write are delivered again (at-least-once:
 *   duplicates, never loss).
 * - `close` stops delivering, fails the publishers still waiting for room (`NotConnectedError`),
 *   lets writes in flight finish, writes the cursor and releases the lock; settlements after it are
 *   ignored (those entries are delivered again on the next open).
 */
export class DurableBuffer implements SettlementSink {
  private entries = 0;
  private bytes = 0;
  private written = 0;
  private forwarded = 0;
  private full = false;
  private closed = false;
  private closing: Promise<void> | undefined;
  private readonly producers: Producer[] = [];
  private consumer: BufferConsumer | undefined;
  private readahead: Entry[] = [];
  private readonly returned: Entry[] = [];
  private reading = false;
  private dispatching = false;
  private dispatchAgain = false;
  private readonly timers = new Set<Subscription>();
  private cursorTimer: Subscription | undefined;
  private cursorWrite: Promise<void> = Promise.resolve();
  private persistedCursor: number;
  private log!: SegmentLog;

  private constructor(
    readonly name: string,
    readonly directory: string,
    private limits: BufferLimits,
    private readonly settings: BufferSettings,
    private readonly lock: DirectoryLock,
    cursor: number,
  ) {
    this.persistedCursor = cursor;
  }

  /**
   * Opens (creating it if need be) the buffer `name` under `root`: takes its lock (`BufferLockedError`
   * while another process holds it), reads its cursor and recovers its log.
   */
  static async open(root: string, name: string, limits: BufferLimits, settings: BufferSettings): Promise<DurableBuffer> {
    const directory = join(root, name);
    await mkdir(directory, { recursive: true });
    const lock = await DirectoryLock.acquire(directory, settings.logger);
    try {
      const cursor = await readCursor(directory, settings.logger);
      const buffer = new DurableBuffer(name, directory, limits, settings, lock, cursor);
      const opened = await SegmentLog.open(directory, name, cursor, {
        segmentBytes: settings.segmentBytes,
        logger: settings.logger,
        events: { onDurable: () => buffer.durable(), onLost: (entries, bytes) => buffer.lost(entries, bytes) },
      });
      buffer.log = opened.log;
      buffer.entries = opened.entries;
      buffer.bytes = opened.bytes;
      if (opened.entries > 0) settings.logger.info(`buffer '${name}' resumes with ${opened.entries} entries (${opened.bytes} bytes) not yet forwarded`, { buffer: name, entries: opened.entries, bytes: opened.bytes, directory });
      return buffer;
    } catch (error) {
      await lock.release();
      throw error;
    }
  }

  get maxEntries(): number {
    return this.limits.maxEntries;
  }

  get maxBytes(): number {
    return this.limits.maxBytes;
  }

  /** New bounds (a larger one admits waiting publishers at once). */
  setLimits(limits: BufferLimits): void {
    this.limits = limits;
    this.admit();
  }

  /** A message as a record payload; `BufferUnencodableError` when it cannot be stored, or is larger than `maxBytes`. */
  encode(message: Message): Buffer {
    const payload = encodePayload(message);
    if (payload.length + RECORD_HEADER_BYTES > this.limits.maxBytes) {
      throw new BufferUnencodableError(message.id, `its record of ${payload.length + RECORD_HEADER_BYTES} bytes is larger than the buffer's maxBytes (${this.limits.maxBytes})`);
    }
    return payload;
  }

  /** Appends encoded messages, waiting for room; resolves once all are fsync'd. */
  append(payloads: readonly Buffer[]): Promise<void> {
    if (this.closed) return Promise.reject(new NotConnectedError(`buffer '${this.name}' is closed`));
    if (payloads.length === 0) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      this.producers.push({ payloads, index: 0, writes: [], resolve, reject });
      this.admit();
    });
  }

  /** Attaches the consumer; throws `BufferBusyError` if the buffer has one already, `NotConnectedError` once closed. */
  attach(consumer: BufferConsumer): void {
    if (this.closed) throw new NotConnectedError(`buffer '${this.name}' is closed`);
    if (this.consumer !== undefined) throw new BufferBusyError(this.name);
    this.consumer = consumer;
    this.settings.onChange();
    this.dispatch();
  }

  /** Detaches the consumer: its unsettled deliveries come back first for the next one, attempt + 1. */
  detach(consumer: BufferConsumer): void {
    if (this.consumer !== consumer) return;
    this.consumer = undefined;
    for (const delivery of consumer.unsettled) this.giveBack({ seq: delivery.seq, size: delivery.size, message: redelivered(delivery.message), intakeError: delivery.intakeError, ready: true });
    consumer.unsettled.clear();
    this.settings.onChange();
  }

  stats(): BufferStats {
    return {
      name: this.name,
      entries: this.entries,
      bytes: this.bytes,
      capacityEntries: this.limits.maxEntries,
      capacityBytes: this.limits.maxBytes,
      full: this.full,
      unsettled: this.consumer?.unsettled.size ?? 0,
      written: this.written,
      forwarded: this.forwarded,
    };
  }

  acked(delivery: BufferDelivery): void {
    if (this.closed || this.consumer?.unsettled.delete(delivery) !== true) return;
    this.entries -= 1;
    this.bytes -= delivery.size;
    this.forwarded += 1;
    this.scheduleCursor();
    this.admit();
    this.dispatch();
    this.settings.onChange();
  }

  nacked(delivery: BufferDelivery, reason: Error): void {
    if (this.closed || this.consumer?.unsettled.delete(delivery) !== true) return;
    const attempt = delivery.message.headers.attempt ?? 1;
    const decision = redeliveryDecision({ attempt, maxDeliveries: 1, reason, backoff: this.settings.redelivery });
    const delayMs = decision.action === 'redeliver' ? decision.delayMs : 0;
    const entry: Entry = { seq: delivery.seq, size: delivery.size, message: redelivered(delivery.message), intakeError: delivery.intakeError, ready: delayMs <= 0 };
    this.giveBack(entry);
    if (!entry.ready) {
      scheduleTracked(this.settings.scheduler, this.timers, delayMs, () => {
        entry.ready = true;
        this.dispatch();
      });
    }
    this.dispatch();
  }

  /** See the class contract. Idempotent. */
  close(): Promise<void> {
    this.closing ??= this.shutDown();
    return this.closing;
  }

  private async shutDown(): Promise<void> {
    this.closed = true;
    for (const timer of this.timers) timer.unsubscribe();
    this.timers.clear();
    this.cursorTimer?.unsubscribe();
    if (this.consumer !== undefined) this.consumer.intake = false;
    const error = new NotConnectedError(`buffer '${this.name}' was closed while the publish waited for room`);
    for (const producer of this.producers.splice(0)) producer.reject(error);
    try {
      await this.log.close();
      await this.persistCursor();
    } finally {
      await this.lock.release();
    }
  }

  /** Moves waiting publishers' entries into the log while there is room, the first publisher's all before the next's. */
  private admit(): void {
    if (this.closed) return;
    for (;;) {
      const producer = this.producers[0];
      if (producer === undefined) break;
      let count = 0;
      let bytes = 0;
      for (let at = producer.index; at < producer.payloads.length; at += 1) {
        const size = RECORD_HEADER_BYTES + (producer.payloads[at] as Buffer).length;
        if (this.entries + count + 1 > this.limits.maxEntries || this.bytes + bytes + size > this.limits.maxBytes) break;
        count += 1;
        bytes += size;
      }
      if (count > 0) {
        const first = this.log.reserve(count);
        const frames = producer.payloads.slice(producer.index, producer.index + count).map((payload, at) => frameRecord(first + at, payload));
        this.entries += count;
        this.bytes += bytes;
        producer.index += count;
        producer.writes.push(
          this.log.append(frames, first).then(() => {
            this.written += count;
          }),
        );
      }
      if (producer.index < producer.payloads.length) {
        this.becameFull();
        return;
      }
      this.producers.shift();
      Promise.all(producer.writes).then(() => producer.resolve(), producer.reject);
    }
    if (this.full) {
      this.full = false;
      this.settings.logger.info(`buffer '${this.name}' has room again (${this.entries} entries, ${this.bytes} bytes): its publishers go on`, { buffer: this.name, entries: this.entries, bytes: this.bytes });
      this.settings.onChange();
    }
  }

  private becameFull(): void {
    if (this.full) return;
    this.full = true;
    const { maxEntries, maxBytes } = this.limits;
    this.settings.logger.warn(
      `buffer '${this.name}' is FULL (${this.entries} of ${maxEntries} entries, ${this.bytes} of ${maxBytes} bytes): its source is HELD — publishers wait, nothing is dropped — until the consumer forwards entries`,
      { buffer: this.name, entries: this.entries, bytes: this.bytes, maxEntries, maxBytes, directory: this.directory },
    );
    this.settings.onChange();
  }

  private durable(): void {
    this.settings.onChange();
    this.dispatch();
  }

  private lost(entries: number, bytes: number): void {
    this.entries -= entries;
    this.bytes -= bytes;
    this.admit();
    this.settings.onChange();
  }

  private giveBack(entry: Entry): void {
    let at = this.returned.length;
    while (at > 0 && (this.returned[at - 1] as Entry).seq > entry.seq) at -= 1;
    this.returned.splice(at, 0, entry);
  }

  /** Hands entries to the consumer while it has room: handed-back ones first (in order, each once ready), then new ones. */
  private dispatch(): void {
    if (this.dispatching) {
      this.dispatchAgain = true;
      return;
    }
    this.dispatching = true;
    try {
      do {
        this.dispatchAgain = false;
        this.handOut();
      } while (this.dispatchAgain);
    } finally {
      this.dispatching = false;
    }
    this.fill();
  }

  private handOut(): void {
    const consumer = this.consumer;
    if (consumer === undefined || !consumer.intake || this.closed) return;
    while (consumer.unsettled.size < consumer.prefetch && this.consumer === consumer && consumer.intake) {
      let entry = this.returned[0];
      if (entry !== undefined) {
        if (!entry.ready) return; // nothing newer overtakes a nacked entry waiting for its backoff
        this.returned.shift();
      } else {
        entry = this.readahead.shift();
        if (entry === undefined) return;
      }
      const delivery = new BufferDelivery(entry.message, entry.seq, entry.size, this, entry.intakeError);
      consumer.unsettled.add(delivery);
      consumer.emit(delivery);
    }
  }

  /** Reads the next durable entries ahead of the consumer, one read at a time. */
  private fill(): void {
    const consumer = this.consumer;
    if (this.reading || this.closed || consumer === undefined || !consumer.intake) return;
    const want = Math.min(1024, Math.max(64, consumer.prefetch * 2));
    if (this.readahead.length >= want / 2 || !this.log.hasUnread()) return;
    this.reading = true;
    this.log.readNext(want - this.readahead.length, READAHEAD_BYTES).then(
      (records) => {
        this.reading = false;
        if (this.closed) return;
        for (const record of records) this.readahead.push(this.entryOf(record.seq, record.size, record.payload));
        if (records.length > 0 || this.log.hasUnread()) this.dispatch(); // a corrupt range skipped reads nothing: go on
      },
      (error: unknown) => {
        this.reading = false;
        if (this.closed) return;
        const failure = error instanceof Error ? error : new Error(String(error));
        this.settings.logger.error(`buffer '${this.name}': reading its log failed: ${failure.message}`, { buffer: this.name, directory: this.directory });
        this.consumer?.fail(failure);
      },
    );
  }

  private entryOf(seq: number, size: number, payload: Buffer): Entry {
    try {
      return { seq, size, message: decodePayload(payload), intakeError: undefined, ready: true };
    } catch (error) {
      const intakeError = error instanceof BufferRecordError ? error : new BufferRecordError(String(error));
      return { seq, size, message: { id: `buffer:${this.name}#${seq}`, headers: {}, body: Buffer.from(payload) }, intakeError, ready: true };
    }
  }

  /** The lowest sequence number not acknowledged: nothing below it is needed any more. */
  private cursor(): number {
    let low = this.readahead[0]?.seq ?? this.log.readSeq;
    const returned = this.returned[0];
    if (returned !== undefined && returned.seq < low) low = returned.seq;
    for (const delivery of this.consumer?.unsettled ?? []) if (delivery.seq < low) low = delivery.seq;
    return low;
  }

  private scheduleCursor(): void {
    if (this.cursorTimer !== undefined || this.closed) return;
    this.cursorTimer = this.settings.scheduler.schedule(() => {
      this.cursorTimer = undefined;
      void this.persistCursor();
    }, this.settings.cursorIntervalMs);
  }

  /** Writes the cursor if it moved, then deletes the segments below it (writes run one at a time). */
  private persistCursor(): Promise<void> {
    this.cursorWrite = this.cursorWrite.then(async () => {
      const seq = this.cursor();
      if (seq <= this.persistedCursor) return;
      try {
        await writeCursor(this.directory, seq);
        this.persistedCursor = seq;
        await this.log.deleteBelow(seq);
      } catch (error) {
        this.settings.logger.error(`buffer '${this.name}': writing its cursor failed (acknowledged entries may be delivered again): ${error instanceof Error ? error.message : String(error)}`, { buffer: this.name, directory: this.directory });
      }
    });
    return this.cursorWrite;
  }
}
