import { createServer, type Socket } from 'node:net';
import pg from 'pg';
import { afterEach, expect, it, vi } from 'vitest';
import { openDatabase, PgDatabase } from '../../../adapters/postgres/database.ts';
import { DatabaseError } from '../../../adapters/postgres/postgres-errors.ts';
import type { Logger } from '../../../src/core/index.ts';

// PgDatabase.listen's first connection: when it fails, listen() rejects and nothing keeps running
// (no reconnect timer, no client left open). No server is needed: a closed port, or a stubbed client.

afterEach(() => {
  vi.useRealTimers();
  vi.restoreAllMocks();
});

/** A loopback port nothing listens on (connections are refused at once). */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

function recordingLogger(): Logger & { readonly warnings: string[] } {
  const warnings: string[] = [];
  return { warnings, info: () => undefined, error: () => undefined, warn: (message: string) => void warnings.push(message) };
}

/** Resolves once a `pg.Client` emitted 'end' (and the listeners of that event ran). */
function clientEnded(): Promise<void> {
  const emit = pg.Client.prototype.emit;
  return new Promise((resolve) => {
    vi.spyOn(pg.Client.prototype, 'emit').mockImplementation(function (this: pg.Client, event: string | symbol, ...args: unknown[]) {
      const handled = emit.call(this, event, ...args);
      if (event === 'end') resolve();
      return handled;
    });
  });
}

it('a first LISTEN connection that cannot connect: listen() rejects and, after close(), no retry ever runs', async () => {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
  const url = `postgres://x:y@127.0.0.1:${await closedPort()}/x`;
  const log = recordingLogger();
  const connects = vi.spyOn(pg.Client.prototype, 'connect');
  const ended = clientEnded();
  const db = new PgDatabase(new pg.Pool({ connectionString: url }), url, log);

  await expect(db.listen('hp_listen_refused', () => undefined)).rejects.toThrow(/ECONNREFUSED/);
  await db.close();
  await ended; // pg emits 'end' after the failed connect's socket closed, later than the rejection
  expect(vi.getTimerCount()).toBe(0); // no reconnect pending
  await vi.advanceTimersByTimeAsync(60_000);

  expect(connects).toHaveBeenCalledTimes(1);
  expect(log.warnings).toEqual([]);
});

it('a first LISTEN that fails after connecting: its client is ended, listen() rejects, nothing is retried', async () => {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
  const connect = vi.spyOn(pg.Client.prototype, 'connect').mockResolvedValue(undefined as never);
  vi.spyOn(pg.Client.prototype, 'query').mockRejectedValue(new Error('permission denied for LISTEN') as never);
  const end = vi.spyOn(pg.Client.prototype, 'end').mockResolvedValue(undefined as never);
  const db = new PgDatabase(new pg.Pool(), undefined, recordingLogger());

  await expect(db.listen('hp_listen_denied', () => undefined)).rejects.toThrow('permission denied for LISTEN');

  expect(end).toHaveBeenCalledTimes(1);
  expect(vi.getTimerCount()).toBe(0);
  await vi.advanceTimersByTimeAsync(60_000);
  expect(connect).toHaveBeenCalledTimes(1);
  await db.close();
});

it('listen() on a closed database rejects with DatabaseError without connecting', async () => {
  const connect = vi.spyOn(pg.Client.prototype, 'connect');
  const db = new PgDatabase(new pg.Pool(), undefined, recordingLogger());
  await db.close();
  await expect(db.listen('hp_listen_closed', () => undefined)).rejects.toMatchObject({ name: 'DatabaseError' });
  expect(connect).not.toHaveBeenCalled();
});

it('openDatabase({ connectionTimeoutMs }) against a server that accepts and never answers rejects with DatabaseError instead of hanging', async () => {
  const sockets = new Set<Socket>();
  const silent = createServer((socket) => void sockets.add(socket.resume())); // reads, never writes, never closes
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  const { port } = silent.address() as { port: number };
  try {
    await expect(openDatabase({ url: `postgres://x:y@127.0.0.1:${port}/x`, connectionTimeoutMs: 200, queryTimeoutMs: 200, keepAliveMs: 1_000, log: recordingLogger() })).rejects.toBeInstanceOf(DatabaseError);
  } finally {
    for (const socket of sockets) socket.destroy();
    await new Promise<void>((resolve) => silent.close(() => resolve()));
  }
}, 10_000);
