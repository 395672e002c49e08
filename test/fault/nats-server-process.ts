import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../support/free-port.ts';
import { accepting } from '../support/mosquitto-process.ts';
import { sleep } from '../support/wait.ts';

/**
 * A nats-server of a test's own (JetStream on, its own store directory, its own loopback port) —
 * never the machine's shared one on 4222. `restart` stops it gracefully (SIGTERM: JetStream flushes its
 * file store) and starts it again on the same port and store.
 */
export class OwnNatsServer {
  private child: ChildProcess | undefined;
  private constructor(
    readonly port: number,
    private readonly storeDir: string,
  ) {}

  static async start(): Promise<OwnNatsServer> {
    const server = new OwnNatsServer(await freePort(), mkdtempSync(join(tmpdir(), 'hn-nats-')));
    await server.launch();
    return server;
  }

  get url(): string {
    return `nats://127.0.0.1:${this.port}`;
  }

  async restart(downMs = 500): Promise<void> {
    await this.stop();
    await sleep(downMs);
    await this.launch();
  }

  async stop(): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (child === undefined || child.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      child.once('exit', () => resolve());
      child.kill('SIGTERM');
    });
  }

  async dispose(): Promise<void> {
    await this.stop();
    rmSync(this.storeDir, { recursive: true, force: true });
  }

  private async launch(): Promise<void> {
    if (await accepting(this.port)) throw new Error(`port ${this.port} is already taken`);
    const child = spawn('/usr/sbin/nats-server', ['-a', '127.0.0.1', '-p', String(this.port), '-js', '-sd', this.storeDir], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    this.child = child;
    const deadline = Date.now() + 10_000;
    while (!(await accepting(this.port))) {
      if (child.exitCode !== null) throw new Error(`nats-server exited with ${child.exitCode}: ${stderr.slice(-2_000)}`);
      if (Date.now() > deadline) throw new Error(`nats-server did not listen on ${this.port} within 10 s`);
      await sleep(50);
    }
  }
}
