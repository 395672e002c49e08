import { relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const internal = /[\\/](src[\\/](dsl|core|runtime)|patterns)[\\/]|node:internal|node_modules/;

/**
 * `file:line` of the first stack frame outside Interchange's own DSL: where the user declared a
 * route or step. Called at definition time only, never per message.
 */
export function declaredAt(): string {
  const stack = new Error().stack?.split('\n').slice(1) ?? [];
  for (const frame of stack) {
    const match = /\(?((?:file:\/\/)?[^()\s]+):(\d+):\d+\)?$/.exec(frame.trim());
    if (match === null || internal.test(match[1] ?? '')) continue;
    const file = match[1] ?? '';
    const path = file.startsWith('file://') ? fileURLToPath(file) : file;
    return `${relative(process.cwd(), path)}:${match[2]}`;
  }
  return 'unknown';
}
