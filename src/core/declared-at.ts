import { join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Interchange's own facade (the DSL), core, runtime, channel and patterns, anchored at this package's root (not any folder with those names). */
const root = fileURLToPath(new URL('../../', import.meta.url));
const internalDirs = ['facade', 'src/dsl', 'src/core', 'src/runtime', 'src/channel', 'patterns'].map((dir) => join(root, dir) + sep);

function isInternal(path: string): boolean {
  return path.startsWith('node:') || /[\\/]node_modules[\\/]/.test(path) || internalDirs.some((dir) => path.startsWith(dir));
}

/**
 * `file:line` of the first stack frame outside Interchange's own DSL: where the user declared a
 * route or step. Called at definition time only, never per message.
 */
export function declaredAt(): string {
  const stack = new Error().stack?.split('\n').slice(1) ?? [];
  for (const frame of stack) {
    const match = /\(?((?:file:\/\/)?[^()\s]+):(\d+):\d+\)?$/.exec(frame.trim());
    if (match === null) continue;
    const file = match[1] ?? '';
    const path = file.startsWith('file://') ? fileURLToPath(file) : file;
    if (isInternal(path)) continue;
    return `${relative(process.cwd(), path)}:${match[2]}`;
  }
  return 'unknown';
}
