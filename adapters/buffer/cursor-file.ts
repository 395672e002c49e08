import { open, readFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../../src/core/index.ts';

/**
 * A buffer's persisted cursor: the lowest sequence number not yet acknowledged, in the file `cursor`
 * (JSON `{"seq":N}`). Written atomically — a temporary file, fsync, rename, fsync of the directory —
 * so a crash leaves the old cursor or the new one, never a torn one.
 */
export async function readCursor(directory: string, logger: Logger): Promise<number> {
  let text: string;
  try {
    text = await readFile(join(directory, 'cursor'), 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return 0;
    throw error;
  }
  let seq: unknown;
  try {
    seq = (JSON.parse(text) as { seq?: unknown } | null)?.seq;
  } catch {
    seq = undefined;
  }
  if (typeof seq === 'number' && Number.isSafeInteger(seq) && seq >= 0) return seq;
  logger.error(`buffer directory '${directory}': unreadable cursor file, starting from the oldest entry (entries acknowledged before are delivered again)`, { directory, cursor: text.slice(0, 100) });
  return 0;
}

/** Writes the cursor atomically (see `readCursor`). Callers serialise their writes. */
export async function writeCursor(directory: string, seq: number): Promise<void> {
  const temporary = join(directory, 'cursor.tmp');
  const handle = await open(temporary, 'w');
  try {
    await handle.writeFile(`${JSON.stringify({ seq })}\n`);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(temporary, join(directory, 'cursor'));
  await syncDirectory(directory);
}

/** fsync of a directory, so that a file created, renamed or deleted in it stays so after a crash. */
export async function syncDirectory(directory: string): Promise<void> {
  const handle = await open(directory, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
