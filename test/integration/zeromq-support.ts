import { createServer } from 'node:net';

/**
 * `count` TCP ports free on 127.0.0.1 right now (each listened on with port 0, then released): unique
 * per test, so parallel test files do not collide. ZeroMQ has no server: its tests bind their own.
 */
export async function freePorts(count: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from(
      { length: count },
      () =>
        new Promise<ReturnType<typeof createServer>>((resolve, reject) => {
          const server = createServer();
          server.once('error', reject);
          server.listen(0, '127.0.0.1', () => resolve(server));
        }),
    ),
  );
  const ports = servers.map((server) => {
    const address = server.address();
    if (address === null || typeof address === 'string') throw new Error('no TCP port');
    return address.port;
  });
  await Promise.all(servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve()))));
  return ports;
}

/** A port pool: `next()` gives the next free port, throwing when the pool is used up. */
export async function portPool(count: number): Promise<{ next(): number }> {
  const ports = await freePorts(count);
  return {
    next(): number {
      const port = ports.shift();
      if (port === undefined) throw new Error(`port pool of ${count} used up`);
      return port;
    },
  };
}
