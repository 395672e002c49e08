import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

// `interchange run` as a user starts it: the real bin, a child process, broker URLs from the environment.
const root = fileURLToPath(new URL('../../', import.meta.url));
const PASSWORD = 'se/cret?pw#x@y';
/** Any piece of the password long enough to give it away. */
const PIECES = ['se/cret', 'cret?pw', '?pw#', 'pw#x', '#x@y'];

async function run(file: string, env: Readonly<Record<string, string>>): Promise<{ code: number | null; output: string; stderr: string }> {
  const inherited = { ...process.env };
  for (const name of ['AMQP_URL', 'MQTT_URL', 'DATABASE_URL', 'REDIS_URL']) delete inherited[name];
  const child = spawn(process.execPath, ['--conditions=interchange-source', 'bin/interchange.js', 'run', file, '--quiet'], { cwd: root, env: { ...inherited, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  clearTimeout(timer);
  return { code, output: stdout + stderr, stderr };
}

describe('interchange run with a password that is not percent-encoded', () => {
  it('refuses AMQP_URL, says what to encode, and never prints the password', async () => {
    const { code, output, stderr } = await run('test/unit/fixtures/counting-route.ts', { AMQP_URL: `amqp://guest:${PASSWORD}@127.0.0.1:5672` });
    expect(code).toBe(1);
    expect(stderr).toContain('interchange: EndpointError: AMQP_URL has');
    expect(stderr).toContain("percent-encode '/' as %2F in the password");
    expect(stderr).toContain("'@' as %40 in the password of AMQP_URL");
    expect(stderr).toContain('amqp://guest:***@127.0.0.1:5672');
    for (const piece of PIECES) expect(output).not.toContain(piece);
  }, 20_000);

  it("refuses MQTT_URL in the flagship's own environment, before any client sees it", async () => {
    const { code, output, stderr } = await run('examples/mqtt-to-amqp/route.ts', { MQTT_URL: `mqtt://device:${PASSWORD}@127.0.0.1:1883` });
    expect(code).toBe(1);
    expect(stderr).toContain("MQTT_URL has '/', '?', '#', '@' unencoded in its user info");
    expect(stderr).toContain("percent-encode '/' as %2F in the password");
    for (const piece of PIECES) expect(output).not.toContain(piece);
  }, 20_000);
});
