import { randomBytes } from 'node:crypto';
import { mkdir, open, readdir, rename, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { assertClaimId, isClaimId, type ClaimCheckStore, type ClaimPutOptions } from './claim-check-store.ts';

export interface FileClaimCheckStoreOptions {
  /** The directory claims are written to (created if missing); one file per claim. */
  readonly directory: string;
  /** The clock (epoch ms, default `Date.now`) that expiries are set and compared with. */
  readonly now?: () => number;
  /** `fsync` each claim file and the directory before `put` resolves (default `true`): durable through a power cut. */
  readonly fsync?: boolean;
  /** A temporary file of an interrupted write older than this is removed by `sweep` (default 60,000 ms). */
  readonly staleTempMs?: number;
}

const SUFFIX = '.claim';
const TEMP_PREFIX = '.tmp-';
/** Each claim file starts with its expiry: a big-endian float64 of epoch ms (`Infinity`: none). */
const HEADER_BYTES = 8;

/**
 * Claim check store on the local filesystem (`node:fs`), for a single host (or a shared volume): one
 * file per claim, `<claim id>.claim`, beginning with its expiry (8 bytes), then the data. The file
 * name is the claim id, which is always one Interchange made (`isClaimId`: never a path from a
 * message). Writes are atomic: a temporary file in the same directory, `fsync`ed, renamed over the
 * claim's name, the directory `fsync`ed — a crash leaves the old claim or the new one, never half of
 * one. `sweep` deletes expired claims and temporary files left by interrupted writes.
 * @example from('memory:scans').claimCheckIn({ store: new FileClaimCheckStore({ directory: '/var/lib/app/claims' }), ttlMs: 86_400_000 })
 */
export class FileClaimCheckStore implements ClaimCheckStore {
  private readonly directory: string;
  private readonly now: () => number;
  private readonly fsync: boolean;
  private readonly staleTempMs: number;
  private ready: Promise<void> | undefined;

  constructor({ directory, now = Date.now, fsync = true, staleTempMs = 60_000 }: FileClaimCheckStoreOptions) {
    this.directory = directory;
    this.now = now;
    this.fsync = fsync;
    this.staleTempMs = staleTempMs;
  }

  async put(id: string, data: Uint8Array, { ttlMs }: ClaimPutOptions = {}): Promise<void> {
    assertClaimId(id);
    await this.created();
    const header = Buffer.alloc(HEADER_BYTES);
    header.writeDoubleBE(ttlMs === undefined ? Number.POSITIVE_INFINITY : this.now() + ttlMs);
    const temp = join(this.directory, `${TEMP_PREFIX}${id}-${randomBytes(6).toString('hex')}`);
    const file = await open(temp, 'wx', 0o600);
    try {
      await file.writev([header, data]);
      if (this.fsync) await file.sync();
    } catch (error) {
      await file.close();
      await unlink(temp).catch(() => undefined);
      throw error;
    }
    await file.close();
    try {
      await rename(temp, this.pathOf(id));
    } catch (error) {
      await unlink(temp).catch(() => undefined);
      throw error;
    }
    if (this.fsync) await this.syncDirectory();
  }

  async get(id: string): Promise<Uint8Array | undefined> {
    assertClaimId(id);
    let content: Buffer;
    try {
      const file = await open(this.pathOf(id), 'r');
      try {
        content = await file.readFile();
      } finally {
        await file.close();
      }
    } catch (error) {
      if (isMissing(error)) return undefined;
      throw error;
    }
    if (content.byteLength < HEADER_BYTES || content.readDoubleBE(0) <= this.now()) return undefined;
    return new Uint8Array(content.buffer, content.byteOffset + HEADER_BYTES, content.byteLength - HEADER_BYTES);
  }

  async remove(id: string): Promise<void> {
    assertClaimId(id);
    await unlink(this.pathOf(id)).catch((error: unknown) => {
      if (!isMissing(error)) throw error;
    });
  }

  async sweep(): Promise<number> {
    let names: string[];
    try {
      names = await readdir(this.directory);
    } catch (error) {
      if (isMissing(error)) return 0;
      throw error;
    }
    const now = this.now();
    let swept = 0;
    for (const name of names) {
      const path = join(this.directory, name);
      if (name.startsWith(TEMP_PREFIX)) {
        const info = await stat(path).catch(() => undefined);
        if (info !== undefined && Date.now() - info.mtimeMs > this.staleTempMs) await unlink(path).catch(() => undefined);
        continue;
      }
      if (!name.endsWith(SUFFIX) || !isClaimId(name.slice(0, -SUFFIX.length))) continue;
      const expiry = await this.expiryOf(path);
      if (expiry.expiresAt > now) continue;
      // A put may have renamed a fresh claim over this name since it was read: delete only the file read.
      const current = await stat(path).catch(() => undefined);
      if (current === undefined || current.ino !== expiry.ino) continue;
      await unlink(path).then(
        () => {
          swept += 1;
        },
        () => undefined,
      );
    }
    return swept;
  }

  private pathOf(id: string): string {
    return join(this.directory, `${id}${SUFFIX}`);
  }

  private created(): Promise<void> {
    this.ready ??= mkdir(this.directory, { recursive: true, mode: 0o700 }).then(
      () => undefined,
      (error: unknown) => {
        this.ready = undefined;
        throw error;
      },
    );
    return this.ready;
  }

  /** A claim file's expiry and inode (a damaged file, shorter than its header, counts as expired). */
  private async expiryOf(path: string): Promise<{ readonly expiresAt: number; readonly ino: number }> {
    try {
      const file = await open(path, 'r');
      try {
        const header = Buffer.alloc(HEADER_BYTES);
        const { bytesRead } = await file.read(header, 0, HEADER_BYTES, 0);
        const { ino } = await file.stat();
        return { expiresAt: bytesRead < HEADER_BYTES ? Number.NEGATIVE_INFINITY : header.readDoubleBE(0), ino };
      } finally {
        await file.close();
      }
    } catch {
      return { expiresAt: Number.POSITIVE_INFINITY, ino: -1 }; // gone meanwhile, or unreadable: not this sweep's to delete
    }
  }

  private async syncDirectory(): Promise<void> {
    const directory = await open(this.directory, 'r');
    try {
      await directory.sync();
    } finally {
      await directory.close();
    }
  }
}

function isMissing(error: unknown): boolean {
  return typeof error === 'object' && error !== null && (error as { code?: unknown }).code === 'ENOENT';
}
