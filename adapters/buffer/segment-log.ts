import { open, unlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../../src/core/index.ts';
import { BufferWriteError } from './buffer-errors.ts';
import { syncDirectory } from './cursor-file.ts';
import { parseRecord } from './record-codec.ts';
import { recoverLog, segmentFileName, type ReadPosition, type Segment } from './segment-scan.ts';
import { quarantineTail } from './quarantine.ts';

/** A record read back from the log. */
export interface StoredRecord {
  readonly seq: number;
  /** Its bytes on disk, header included. */
  readonly size: number;
  readonly payload: Buffer;
}

export interface SegmentLogEvents {
  /** New records are durable (readable). */
  onDurable(): void;
  /** Records counted by the caller were lost: a failed write (`entries`, `bytes` of its records) or a corrupt range skipped while reading. */
  onLost(entries: number, bytes: number): void;
}

interface PendingWrite {
  readonly frames: readonly Buffer[];
  readonly firstSeq: number;
  readonly resolve: () => void;
  readonly reject: (error: Error) => void;
}

const READ_CHUNK_BYTES = 1024 * 1024;

/**
 * One buffer's append-only log of segment files (`<first seq, 20 digits>.log`), with one writer and
 * one reader.
 *
 * Contract:
 * - `append` resolves once its records are written and fsync'd. Group commit: appends made while a
 *   write is in flight share the next single write + fsync (never one fsync per record). A segment
 *   reaching `segmentBytes` is closed and the next one started (and the directory synced).
 * - A failed write or fsync rejects every append of that batch with `BufferWriteError`; their
 *   records are reported through `onLost`, the segment is cut back to its durable size and closed,
 *   and later appends go to a new segment.
 * - `readNext` reads durable records only, in sequence order, from where the last read stopped. A
 *   bad record found there (a disk that changed bytes after they were written) is logged as ERROR,
 *   the rest of its segment is kept in `<segment>.corrupt-<n>` and skipped (`onLost`), and reading
 *   goes on with the next segment.
 * - `deleteBelow(seq)` deletes the segments already read whose records all precede `seq` (never the
 *   one being appended to).
 */
export class SegmentLog {
  private active: { segment: Segment; handle: FileHandle; written: number } | undefined;
  private pending: PendingWrite[] = [];
  private flushing: Promise<void> | undefined;
  private reader: { segment: Segment; handle: FileHandle } | undefined;
  private closed = false;

  private constructor(
    private readonly directory: string,
    private readonly buffer: string,
    private readonly segments: Segment[],
    private readonly position: ReadPosition,
    private nextSeq: number,
    private readonly segmentBytes: number,
    private readonly logger: Logger,
    private readonly events: SegmentLogEvents,
  ) {}

  /** Recovers the log in `directory` (see `recoverLog`) and returns it with its unacknowledged entries and bytes. */
  static async open(directory: string, buffer: string, cursor: number, settings: { segmentBytes: number; logger: Logger; events: SegmentLogEvents }): Promise<{ log: SegmentLog; entries: number; bytes: number }> {
    const recovered = await recoverLog(directory, buffer, cursor, settings.logger);
    const log = new SegmentLog(directory, buffer, recovered.segments, recovered.read, recovered.nextSeq, settings.segmentBytes, settings.logger, settings.events);
    return { log, entries: recovered.entries, bytes: recovered.bytes };
  }

  /** The sequence number of the next record `readNext` returns (or would, once written): what the cursor may not pass. */
  get readSeq(): number {
    return this.position.seq;
  }

  /** Gives the next `count` sequence numbers, in order, to records about to be appended. */
  reserve(count: number): number {
    const first = this.nextSeq;
    this.nextSeq += count;
    return first;
  }

  /** Appends framed records whose sequence numbers run from `firstSeq` (reserved, in reservation order). */
  append(frames: readonly Buffer[], firstSeq: number): Promise<void> {
    if (this.closed) return Promise.reject(new BufferWriteError(`buffer '${this.buffer}' is closed`));
    return new Promise<void>((resolve, reject) => {
      this.pending.push({ frames, firstSeq, resolve, reject });
      this.flushing ??= this.flush();
    });
  }

  /** Whether durable records wait to be read. */
  hasUnread(): boolean {
    const segment = this.segments[this.position.index];
    if (segment === undefined) return false;
    return this.position.offset < segment.size || this.position.index < this.segments.length - 1;
  }

  /** Reads up to `maxEntries` durable records (fewer past `maxBytes`, at least one), in order; [] when none wait. */
  async readNext(maxEntries: number, maxBytes: number): Promise<StoredRecord[]> {
    const records: StoredRecord[] = [];
    let bytes = 0;
    while (records.length < maxEntries && bytes < maxBytes && !this.closed) {
      const segment = this.segments[this.position.index];
      if (segment === undefined) break;
      if (this.position.offset >= segment.size) {
        if (this.position.index >= this.segments.length - 1) break;
        this.moveTo(this.position.index + 1);
        continue;
      }
      const start = this.position.offset;
      const available = segment.size - start;
      const handle = await this.readHandle(segment);
      let chunk = await readAt(handle, start, Math.min(available, READ_CHUNK_BYTES));
      let at = 0;
      while (records.length < maxEntries && bytes < maxBytes && at < chunk.length) {
        const parsed = parseRecord(chunk, at, this.position.seq);
        if (parsed.kind === 'incomplete') {
          if (at > 0) break; // the rest in the next round
          if (parsed.size !== undefined && parsed.size <= available && parsed.size > chunk.length) {
            chunk = await readAt(handle, start, parsed.size); // one record longer than a chunk
            continue;
          }
          await this.skipCorrupt(segment, start, 'a record cut short');
          return records;
        }
        if (parsed.kind === 'bad') {
          await this.skipCorrupt(segment, start + at, parsed.reason);
          return records;
        }
        records.push({ seq: parsed.seq, size: parsed.size, payload: parsed.payload });
        bytes += parsed.size;
        at += parsed.size;
        this.position.seq += 1;
      }
      this.position.offset = start + at;
    }
    return records;
  }

  /** Deletes the segments already read whose records all precede `seq`, except the one being appended to. */
  async deleteBelow(seq: number): Promise<void> {
    let removed = 0;
    while (removed < this.position.index) {
      const segment = this.segments[removed] as Segment;
      if (segment.nextSeq > seq || segment === this.active?.segment) break;
      removed += 1;
    }
    if (removed === 0) return;
    const gone = this.segments.splice(0, removed);
    this.position.index -= removed;
    for (const segment of gone) await unlink(segment.path).catch(() => undefined);
  }

  /** Waits for the writes in flight, then closes the files. Appends after it reject. Idempotent. */
  async close(): Promise<void> {
    this.closed = true;
    while (this.flushing !== undefined) await this.flushing;
    await this.active?.handle.close();
    this.active = undefined;
    await this.reader?.handle.close();
    this.reader = undefined;
  }

  /** The group commit loop: every append waiting when a write starts goes into that write. */
  private async flush(): Promise<void> {
    await Promise.resolve(); // let the appends of the same turn join the first write
    try {
      while (this.pending.length > 0) {
        const batch = this.pending;
        this.pending = [];
        try {
          await this.write(batch);
          for (const write of batch) write.resolve();
          this.events.onDurable();
        } catch (cause) {
          const error = new BufferWriteError(`buffer '${this.buffer}': writing to its log failed: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
          await this.abandonActive();
          // records made durable before the failure stay in the log (and counted); the others are lost
          const durable = this.durableNext();
          let entries = 0;
          let bytes = 0;
          for (const write of batch) {
            write.frames.forEach((frame, at) => {
              if (write.firstSeq + at < durable) return;
              entries += 1;
              bytes += frame.length;
            });
            write.reject(error);
          }
          this.events.onLost(entries, bytes);
          this.logger.error(error.message, { buffer: this.buffer });
        }
      }
    } finally {
      this.flushing = undefined;
    }
  }

  /** Writes and syncs a batch, rotating segments as they fill. */
  private async write(batch: readonly PendingWrite[]): Promise<void> {
    let frames: Buffer[] = [];
    let bytes = 0;
    let first: number | undefined;
    let seq = 0;
    const commit = async (): Promise<void> => {
      if (frames.length === 0) return;
      const active = await this.activeFor(first as number);
      await writeAll(active.handle, frames, active.written);
      active.written += bytes;
      await active.handle.datasync();
      active.segment.size = active.written;
      active.segment.nextSeq = seq;
      frames = [];
      bytes = 0;
      first = undefined;
    };
    for (const write of batch) {
      for (const [at, frame] of write.frames.entries()) {
        seq = write.firstSeq + at;
        const written = this.active === undefined ? 0 : this.active.written;
        if (written + bytes > 0 && written + bytes + frame.length > this.segmentBytes) {
          await commit();
          await this.rotate();
        }
        first ??= seq;
        frames.push(frame);
        bytes += frame.length;
        seq += 1;
      }
    }
    await commit();
  }

  /** The segment being appended to, created (named by `firstSeq`) if there is none. */
  private async activeFor(firstSeq: number): Promise<NonNullable<SegmentLog['active']>> {
    if (this.active !== undefined) return this.active;
    const segment: Segment = { firstSeq, path: join(this.directory, segmentFileName(firstSeq)), nextSeq: firstSeq, size: 0 };
    const handle = await open(segment.path, 'wx');
    await syncDirectory(this.directory);
    this.segments.push(segment);
    this.active = { segment, handle, written: 0 };
    return this.active;
  }

  private async rotate(): Promise<void> {
    const active = this.active;
    this.active = undefined;
    await active?.handle.close();
  }

  /** After a failed write: cut the segment back to what is durable and stop appending to it. */
  private async abandonActive(): Promise<void> {
    const active = this.active;
    this.active = undefined;
    if (active === undefined) return;
    await active.handle.truncate(active.segment.size).catch(() => undefined);
    await active.handle.close().catch(() => undefined);
  }

  /** One past the last durable sequence number. */
  private durableNext(): number {
    const last = this.segments[this.segments.length - 1];
    return last === undefined ? 0 : last.nextSeq;
  }

  private async readHandle(segment: Segment): Promise<FileHandle> {
    if (this.reader?.segment === segment) return this.reader.handle;
    await this.reader?.handle.close();
    this.reader = undefined;
    const handle = await open(segment.path, 'r');
    this.reader = { segment, handle };
    return handle;
  }

  private moveTo(index: number): void {
    const next = this.segments[index] as Segment;
    this.position.index = index;
    this.position.offset = 0;
    this.position.seq = Math.max(this.position.seq, next.firstSeq);
  }

  /**
   * A bad record at `offset` of a segment being read: keeps the rest of the segment in a quarantine
   * file, counts its records as lost, and moves on to the next segment. The segment being appended
   * to is closed first, so that nothing more is written after the bad bytes.
   */
  private async skipCorrupt(segment: Segment, offset: number, reason: string): Promise<void> {
    if (segment === this.active?.segment) {
      while (this.flushing !== undefined) await this.flushing;
      if (segment === this.active?.segment) await this.rotate();
    }
    const quarantine = await quarantineTail(segment.path, offset, segment.size);
    const entries = Math.max(0, segment.nextSeq - this.position.seq);
    this.logger.error(`buffer '${this.buffer}': CORRUPT record in ${segment.path}: ${reason} at offset ${offset}; the segment's ${segment.size - offset} bytes from there (${entries} entries) are kept in ${quarantine} and NOT delivered; going on with the next segment`, { buffer: this.buffer, segment: segment.path, offset, quarantine });
    this.events.onLost(entries, segment.size - offset);
    this.position.offset = segment.size;
    this.position.seq = segment.nextSeq;
  }
}

async function readAt(handle: FileHandle, position: number, length: number): Promise<Buffer> {
  const chunk = Buffer.allocUnsafe(length);
  let filled = 0;
  while (filled < length) {
    const { bytesRead } = await handle.read(chunk, filled, length - filled, position + filled);
    if (bytesRead === 0) break;
    filled += bytesRead;
  }
  return chunk.subarray(0, filled);
}

/** `writev` until every byte is written (a short write is possible, e.g. near a full disk). */
async function writeAll(handle: FileHandle, frames: readonly Buffer[], position: number): Promise<void> {
  const pending = [...frames];
  let at = position;
  while (pending.length > 0) {
    const { bytesWritten } = await handle.writev(pending, at);
    at += bytesWritten;
    let left = bytesWritten;
    while (pending.length > 0 && left >= (pending[0] as Buffer).length) left -= (pending.shift() as Buffer).length;
    if (left > 0) pending[0] = (pending[0] as Buffer).subarray(left);
    if (bytesWritten === 0) throw new Error('the disk accepted no bytes');
  }
}
