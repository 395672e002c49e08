import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { launchMosquitto, terminate } from '../support/mosquitto-process.ts';

/**
 * A Mosquitto of the test's own on a loopback port, with its own config: the machine's broker is
 * never touched. `persistence`: saved on every change (autosave_interval 1 + autosave_on_changes),
 * as a broker that must lose nothing across a restart is configured; without it nothing survives one.
 */
export class OwnMosquitto {
  readonly url: string;
  private process: ChildProcess | undefined;
  private readonly dir: string;
  private readonly config: string;

  constructor(
    readonly port: number,
    persistence: boolean,
  ) {
    this.url = `mqtt://127.0.0.1:${port}`;
    this.dir = mkdtempSync(join(tmpdir(), `mosquitto-${port}-`));
    this.config = join(this.dir, 'mosquitto.conf');
    writeFileSync(
      this.config,
      [
        `listener ${port} 127.0.0.1`,
        'allow_anonymous true',
        'user root',
        'max_queued_messages 0', // the packaged default (1000) silently drops beyond it
        `persistence ${persistence}`,
        `persistence_location ${this.dir}/`,
        ...(persistence ? ['autosave_interval 1', 'autosave_on_changes true'] : []),
        'log_dest none',
      ].join('\n') + '\n',
    );
  }

  async start(): Promise<void> {
    this.process = await launchMosquitto(this.config, [this.port]);
  }

  /** SIGTERM (Mosquitto saves its database on the way out when persistence is on); resolves on exit. */
  async stop(): Promise<void> {
    const child = this.process;
    this.process = undefined;
    await terminate(child);
  }

  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }

  async dispose(): Promise<void> {
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
