import { setTimeout as sleep } from 'node:timers/promises';
import { backoffDelay, toError } from '../../src/core/index.ts';
import { ZeroMqBindError } from './zeromq-errors.ts';

/** What binding needs of a ZeroMQ socket. */
export interface Bindable {
  bind(address: string): Promise<void>;
}

/** The error code a zeromq call failed with (`EADDRINUSE`, `EAGAIN`…), if any. */
export function zmqCode(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/**
 * Binds `address`, retrying with backoff (100 ms doubling to 2 s, ±50 %) while it is in use — a
 * restarted process often finds its port still held for a moment — for at most `timeoutMs`, or until
 * `stopped()`. Rejects with `ZeroMqBindError` at once for any other failure (no such interface,
 * no permission), or when the time is up.
 */
export async function bindWithRetry(socket: Bindable, address: string, timeoutMs: number, stopped: () => boolean): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (let attempt = 0; ; attempt += 1) {
    try {
      await socket.bind(address);
      return;
    } catch (error) {
      const code = zmqCode(error);
      const left = deadline - Date.now();
      if (code !== 'EADDRINUSE' || left <= 0 || stopped()) {
        const permanent = code === 'EACCES' || code === 'EADDRNOTAVAIL';
        throw new ZeroMqBindError(address, `cannot bind ${address}: ${toError(error).message}${code === 'EADDRINUSE' ? ` (still in use after ${timeoutMs} ms)` : ''}`, { cause: error, permanent });
      }
      await sleep(Math.min(left, backoffDelay(attempt, { initialMs: 100, maxMs: 2_000 })));
    }
  }
}
