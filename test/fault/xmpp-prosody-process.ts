import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { accepting } from '../support/mosquitto-process.ts';
import { sleep, until } from '../support/wait.ts';

const REPOSITORY_CONFIG = fileURLToPath(new URL('../../scripts/prosody/prosody.cfg.lua', import.meta.url));

/**
 * A Prosody of a fault test's own: the repository's config (scripts/prosody/prosody.cfg.lua) with its
 * own loopback port and data directory (owned by the prosody user, as prosodyctl switches to it) —
 * never the machine's on 5222. Started with `prosodyctl start` (daemonized), killed with SIGKILL.
 */
export class OwnProsody {
  readonly dir = mkdtempSync(join(tmpdir(), 'hx-prosody-fault-'));
  readonly config = join(this.dir, 'prosody.cfg.lua');

  constructor(readonly port: number) {
    chownSync(this.dir, uidOf('prosody'), gidOf('prosody'));
    chmodSync(this.dir, 0o755);
    const text = readFileSync(REPOSITORY_CONFIG, 'utf8').replaceAll('/var/lib/prosody-interchange', this.dir).replace('c2s_ports = { 5222 }', `c2s_ports = { ${port} }`);
    if (!text.includes(`c2s_ports = { ${port} }`)) throw new Error('the repository config has no c2s_ports = { 5222 } line to replace');
    writeFileSync(this.config, text, { mode: 0o644 });
  }

  get service(): string {
    return `xmpp://127.0.0.1:${this.port}`;
  }

  register(name: string, password: string): string {
    execFileSync('prosodyctl', ['--config', this.config, 'register', name, 'localhost', password], { stdio: 'pipe' });
    return `${name}@localhost`;
  }

  async start(): Promise<void> {
    if (await accepting(this.port)) throw new Error(`port ${this.port} is taken: cannot start a Prosody of our own there`);
    execFileSync('prosodyctl', ['--config', this.config, 'start'], { stdio: 'pipe' });
    await until(() => accepting(this.port), () => `prosody did not listen on ${this.port} (see ${this.dir}/prosody.err)`, 15_000);
  }

  /** SIGKILL: a crash (no clean stream close, no session hibernation survives it). */
  async kill(): Promise<void> {
    let pid: number;
    try {
      pid = Number(readFileSync(join(this.dir, 'prosody.pid'), 'utf8').trim());
    } catch {
      return;
    }
    if (!Number.isInteger(pid) || pid <= 0) return;
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      return;
    }
    await until(async () => !(await accepting(this.port)), () => `prosody ${pid} still listens on ${this.port}`, 10_000);
    await sleep(50);
    rmSync(join(this.dir, 'prosody.pid'), { force: true });
  }

  async dispose(): Promise<void> {
    await this.kill();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

function uidOf(user: string): number {
  return Number(execFileSync('id', ['-u', user], { encoding: 'utf8' }).trim());
}

function gidOf(user: string): number {
  return Number(execFileSync('id', ['-g', user], { encoding: 'utf8' }).trim());
}
