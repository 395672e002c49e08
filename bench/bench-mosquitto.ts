import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * A Mosquitto of the benchmark's own on `port`, with the packaged config's limits except the queue cap
 * (`max_queued_messages 0`: the packaged 1,000 would drop what a benchmark publishes ahead), and
 * `inflight` unacknowledged QoS 1 messages per client (the packaged default is 20).
 */
export async function startBenchMosquitto(port: number, inflight: number, label = 'bench'): Promise<{ stop(): Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), `${label}-mosquitto-`));
  const config = join(dir, 'mosquitto.conf');
  writeFileSync(config, [`listener ${port} 127.0.0.1`, 'allow_anonymous true', 'user root', 'max_queued_messages 0', `max_inflight_messages ${inflight}`, 'persistence false', 'log_dest none'].join('\n') + '\n');
  const broker = spawn('mosquitto', ['-c', config], { stdio: 'ignore' });
  const deadline = Date.now() + 10_000;
  for (;;) {
    const up = await new Promise<boolean>((resolve) => {
      const socket = createConnection({ host: '127.0.0.1', port });
      socket.once('connect', () => {
        socket.end();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (up) break;
    if (Date.now() > deadline || broker.exitCode !== null) throw new Error(`bench: mosquitto did not start on port ${port} (in use?)`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return {
    stop: async () => {
      if (broker.exitCode === null) await new Promise<void>((resolve) => broker.once('exit', () => resolve()) && broker.kill('SIGTERM'));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
