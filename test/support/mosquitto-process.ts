import { spawn, type ChildProcess } from 'node:child_process';
import { createConnection } from 'node:net';
import { sleep } from './wait.ts';

/** Whether something accepts TCP connections on 127.0.0.1:`port`. */
export function accepting(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    socket.setTimeout(1_000, () => socket.destroy());
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
    socket.once('close', () => resolve(false));
  });
}

/**
 * Starts `mosquitto -c <configFile>` — a broker of a test's (or a benchmark's) own, never the
 * machine's — and resolves once every one of `ports` accepts connections. Fails if a port is already
 * taken (a second broker would not start), if Mosquitto exits (with what it printed), or after 10 s.
 */
export async function launchMosquitto(configFile: string, ports: readonly number[]): Promise<ChildProcess> {
  for (const port of ports) {
    if (await accepting(port)) throw new Error(`port ${port} is already taken: cannot start a Mosquitto of our own there`);
  }
  const child = spawn('mosquitto', ['-c', configFile], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  let failed: Error | undefined;
  child.once('error', (error) => {
    failed = error;
  });
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const deadline = Date.now() + 10_000;
  for (const port of ports) {
    while (!(await accepting(port))) {
      if (failed !== undefined) throw new Error(`cannot start mosquitto: ${failed.message}`);
      if (child.exitCode !== null) throw new Error(`mosquitto exited with ${child.exitCode}: ${stderr}`);
      if (Date.now() > deadline) throw new Error(`mosquitto did not listen on port ${port} within 10 s`);
      await sleep(50);
    }
  }
  return child;
}

/** Stops a Mosquitto of our own with SIGTERM (it saves its database on the way out); resolves on exit. */
export async function terminate(child: ChildProcess | undefined): Promise<void> {
  if (child === undefined || child.exitCode !== null) return;
  await new Promise<void>((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
  });
}
