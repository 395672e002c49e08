import { open, readdir, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../../src/core/index.ts';
import { quarantineTail, truncateSynced } from './quarantine.ts';
import { parseRecord } from './record-codec.ts';

/** One segment file of a buffer's log: records with consecutive sequence numbers from `firstSeq`. */
export interface Segment {
  readonly firstSeq: number;
  readonly path: string;
  /** One past the sequence number of its last durable record. */
  nextSeq: number;
  /** Bytes of durable records (the file may be longer while a write is in flight). */
  size: number;
}

/** Where reading resumes: a segment (index in the log's list; the list's length when past its end), an offset in it, the next sequence number. */
export interface ReadPosition {
  index: number;
  offset: number;
  seq: number;
}

export interface RecoveredLog {
  readonly segments: Segment[];
  readonly read: ReadPosition;
  /** The next sequence number to append (never below the cursor). */
  readonly nextSeq: number;
  /** Records at or after the cursor: the buffer's unacknowledged entries, and their bytes. */
  readonly entries: number;
  readonly bytes: number;
}

const SEGMENT = /^(\d{20})\.log$/;
const CHUNK_BYTES = 1024 * 1024;

export function segmentFileName(firstSeq: number): string {
  return `${String(firstSeq).padStart(20, '0')}.log`;
}

/**
 * Opens a buffer's log as a crash left it: reads every segment, checks each record's checksum and
 * sequence number, and resumes at `cursor`.
 * - A torn record at the end of the last segment (a write the crash cut: never synced, so never
 *   acknowledged to a publisher) is truncated away, with an INFO log.
 * - Any other bad record: the segment's bytes from it on are kept in `<segment>.corrupt-<n>`, the
 *   segment is cut there, an ERROR is logged, and recovery goes on with the next segment. The
 *   entries in those bytes are not delivered (they are in the quarantine file, for a human).
 * - Segments wholly below the cursor (acknowledged) and empty ones are deleted.
 */
export async function recoverLog(directory: string, buffer: string, cursor: number, logger: Logger): Promise<RecoveredLog> {
  const files = (await readdir(directory)).filter((file) => SEGMENT.test(file)).sort();
  const segments: Segment[] = [];
  let read: ReadPosition | undefined;
  let entries = 0;
  let bytes = 0;
  let nextSeq = cursor;
  for (const [index, file] of files.entries()) {
    const path = join(directory, file);
    const firstSeq = Number((SEGMENT.exec(file) as RegExpExecArray)[1]);
    const scan = await scanSegment(path, firstSeq, cursor);
    if (scan.failure !== undefined) {
      const last = index === files.length - 1;
      if (last && (await isTorn(path, scan.size, scan.failure, scan.fileSize))) {
        logger.info(`buffer '${buffer}': truncated a torn record at the end of ${file} (offset ${scan.size}, ${scan.fileSize - scan.size} bytes): a write cut by a crash, never acknowledged to its publisher`, { buffer, segment: path, offset: scan.size });
        await truncateSynced(path, scan.size);
      } else {
        const quarantine = await quarantineTail(path, scan.size, scan.fileSize);
        logger.error(`buffer '${buffer}': CORRUPT segment ${file}: ${scan.failure.reason} at offset ${scan.size}; its ${scan.fileSize - scan.size} bytes from there are kept in ${quarantine} and NOT delivered; going on with the next segment`, { buffer, segment: path, offset: scan.size, quarantine });
        await truncateSynced(path, scan.size);
      }
    }
    nextSeq = Math.max(nextSeq, scan.nextSeq);
    if (scan.nextSeq <= cursor || scan.size === 0) {
      await unlink(path);
      continue;
    }
    segments.push({ firstSeq, path, nextSeq: scan.nextSeq, size: scan.size });
    entries += scan.entries;
    bytes += scan.bytes;
    read ??= { index: segments.length - 1, offset: scan.readOffset, seq: Math.max(cursor, firstSeq) };
  }
  return { segments, read: read ?? { index: segments.length, offset: 0, seq: nextSeq }, nextSeq, entries, bytes };
}

interface SegmentScan {
  /** Bytes of the valid records from the start. */
  readonly size: number;
  readonly fileSize: number;
  readonly nextSeq: number;
  /** Records at or after the cursor, and their bytes. */
  readonly entries: number;
  readonly bytes: number;
  /** Offset of the first record at or after the cursor (`size` if none). */
  readonly readOffset: number;
  readonly failure?: { readonly reason: string; readonly incomplete: boolean; readonly recordSize?: number | undefined };
}

async function scanSegment(path: string, firstSeq: number, cursor: number): Promise<SegmentScan> {
  const handle = await open(path, 'r');
  try {
    const fileSize = (await handle.stat()).size;
    let offset = 0;
    let seq = firstSeq;
    let entries = 0;
    let bytes = 0;
    let readOffset: number | undefined;
    let wanted = CHUNK_BYTES;
    while (offset < fileSize) {
      const length = Math.min(fileSize - offset, Math.max(wanted, CHUNK_BYTES));
      const chunk = Buffer.allocUnsafe(length);
      const { bytesRead } = await handle.read(chunk, 0, length, offset);
      const view = chunk.subarray(0, bytesRead);
      let at = 0;
      while (at < view.length) {
        const parsed = parseRecord(view, at, seq);
        if (parsed.kind === 'record') {
          if (seq >= cursor) {
            readOffset ??= offset + at;
            entries += 1;
            bytes += parsed.size;
          }
          at += parsed.size;
          seq += 1;
          continue;
        }
        if (parsed.kind === 'incomplete' && offset + at + (parsed.size ?? 16) <= fileSize) {
          wanted = parsed.size ?? CHUNK_BYTES; // the record goes on past this chunk: read it whole
          break;
        }
        const failure = parsed.kind === 'bad' ? { reason: parsed.reason, incomplete: false, recordSize: parsed.size } : { reason: 'a record cut short', incomplete: true, recordSize: parsed.size };
        return { size: offset + at, fileSize, nextSeq: seq, entries, bytes, readOffset: readOffset ?? offset + at, failure };
      }
      offset += at;
    }
    return { size: offset, fileSize, nextSeq: seq, entries, bytes, readOffset: readOffset ?? offset };
  } finally {
    await handle.close();
  }
}

/**
 * Whether the bad bytes at the end of the last segment are a write cut by a crash: a record cut
 * short, a bad record that is the file's last, or nothing but zeros from there on (blocks the file
 * system allocated but the crash left unwritten).
 */
async function isTorn(path: string, at: number, failure: NonNullable<SegmentScan['failure']>, fileSize: number): Promise<boolean> {
  if (failure.incomplete) return true;
  if (failure.recordSize !== undefined && at + failure.recordSize >= fileSize) return true;
  const handle = await open(path, 'r');
  try {
    for (let offset = at; offset < fileSize; ) {
      const chunk = Buffer.allocUnsafe(Math.min(CHUNK_BYTES, fileSize - offset));
      const { bytesRead } = await handle.read(chunk, 0, chunk.length, offset);
      if (bytesRead === 0) break;
      for (let index = 0; index < bytesRead; index += 1) if (chunk[index] !== 0) return false;
      offset += bytesRead;
    }
    return true;
  } finally {
    await handle.close();
  }
}
