import { resolve } from 'node:path';
import type { AdapterEnvironment } from '../../src/core/index.ts';
import { BufferTransport } from './buffer-transport.ts';
import { bufferModule } from './buffer.module.ts';

/** Where `interchange run` keeps the buffers when `BUFFER_DIR` is not set (from the working directory). */
export const DEFAULT_BUFFER_DIR = './.interchange/buffer';

/**
 * The buffer adapter's declaration for `interchange run`: when a route uses `buffer:` and the route
 * file binds no `BufferTransport` itself, binds one in `BUFFER_DIR` (default `./.interchange/buffer`,
 * resolved against the working directory and announced).
 */
export const environment: AdapterEnvironment = {
  name: 'buffer',
  variables: [],
  bind: ({ env, schemes, isBound }) => {
    if (!schemes.has('buffer') || isBound(BufferTransport)) return undefined;
    const set = env.BUFFER_DIR !== undefined && env.BUFFER_DIR !== '';
    const directory = resolve(set ? (env.BUFFER_DIR as string) : DEFAULT_BUFFER_DIR);
    return { module: bufferModule({ directory }), announcement: `buffer: endpoints use durable buffers in ${directory} (${set ? 'BUFFER_DIR' : 'set BUFFER_DIR to move them'})` };
  },
};
