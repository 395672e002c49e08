import { open, truncate } from 'node:fs/promises';

const CHUNK_BYTES = 1024 * 1024;

/**
 * Copies bytes `[from, to)` of a segment to `<segment>.corrupt-<n>` (the first n free) and syncs
 * it; returns its path. The bad bytes are kept for a human, never deleted by the buffer.
 */
export async function quarantineTail(path: string, from: number, to: number): Promise<string> {
  for (let n = 1; ; n += 1) {
    const target = `${path}.corrupt-${n}`;
    let out;
    try {
      out = await open(target, 'wx');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EEXIST') continue;
      throw error;
    }
    const source = await open(path, 'r');
    try {
      for (let offset = from; offset < to; ) {
        const chunk = Buffer.allocUnsafe(Math.min(CHUNK_BYTES, to - offset));
        const { bytesRead } = await source.read(chunk, 0, chunk.length, offset);
        if (bytesRead === 0) break;
        await out.write(chunk, 0, bytesRead);
        offset += bytesRead;
      }
      await out.sync();
    } finally {
      await source.close();
      await out.close();
    }
    return target;
  }
}

/** Cuts a file to `size` bytes and syncs it. */
export async function truncateSynced(path: string, size: number): Promise<void> {
  await truncate(path, size);
  const handle = await open(path, 'r+');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
