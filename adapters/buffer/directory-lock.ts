import { open, readFile, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../../src/core/index.ts';
import { BufferLockedError } from './buffer-errors.ts';

/**
 * The lock of one buffer directory: a file `lock` holding the holder's pid, created exclusively
 * (`O_EXCL`), so two processes never append to the same log.
 *
 * Contract: `acquire` resolves with the lock, or rejects with `BufferLockedError` naming the directory
 * and the holder's pid while that process runs (this process included: one transport per buffer). A
 * lock whose pid no longer runs is stale (its holder crashed): it is taken over, with an INFO log.
 * Limits: a dead holder's pid reused by an unrelated process keeps the lock (delete the file by hand);
 * two processes taking over the same stale lock at the same instant are not told apart.
 */
export class DirectoryLock {
  private released = false;

  private constructor(readonly path: string) {}

  static async acquire(directory: string, logger: Logger): Promise<DirectoryLock> {
    const path = join(directory, 'lock');
    for (let attempt = 0; ; attempt += 1) {
      try {
        const handle = await open(path, 'wx');
        try {
          await handle.writeFile(`${process.pid}\n`);
          await handle.sync();
        } finally {
          await handle.close();
        }
        return new DirectoryLock(path);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST' || attempt >= 3) throw error;
      }
      const holder = await holderPid(path);
      if (holder !== undefined && isRunning(holder)) throw new BufferLockedError(directory, holder);
      logger.info(`buffer directory '${directory}': taking over a stale lock${holder === undefined ? '' : ` of process ${holder}, which no longer runs`}`, { directory, stalePid: holder });
      await unlink(path).catch(ignoreMissing);
    }
  }

  /** Removes the lock file if it is still ours. Idempotent. */
  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    if ((await holderPid(this.path)) === process.pid) await unlink(this.path).catch(ignoreMissing);
  }
}

/** The pid in the lock file; undefined when it is missing or unreadable twice (a holder that died while writing it). */
async function holderPid(path: string): Promise<number | undefined> {
  for (let read = 0; read < 2; read += 1) {
    const text = await readFile(path, 'utf8').catch(() => '');
    const pid = Number.parseInt(text.trim(), 10);
    if (Number.isInteger(pid) && pid > 0) return pid;
    await new Promise((resolve) => setTimeout(resolve, 50)); // its writer may be between open and write
  }
  return undefined;
}

function isRunning(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM'; // it runs, as another user
  }
}

function ignoreMissing(error: unknown): void {
  if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
}
