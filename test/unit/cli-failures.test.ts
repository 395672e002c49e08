import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../../', import.meta.url));

interface Run {
  readonly stdout: () => string;
  readonly stderr: () => string;
  readonly exited: Promise<number | null>;
  readonly signal: (signal: NodeJS.Signals) => void;
  readonly waitForStdout: (pattern: RegExp) => Promise<RegExpMatchArray>;
}

const children = new Set<ChildProcess>();

// A failed assertion must not leave a CLI running forever.
afterEach(() => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  children.clear();
});

/** The real `interchange` binary, without the broker URLs of the environment running the tests. */
function cli(...args: string[]): Run {
  const { AMQP_URL: _amqp, MQTT_URL: _mqtt, ...env } = process.env;
  const child = spawn(process.execPath, ['--conditions=interchange-source', 'bin/interchange.js', ...args], { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  let stdout = '';
  let stderr = '';
  const waiters: (() => void)[] = [];
  child.stdout.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
    for (const wake of waiters.splice(0)) wake();
  });
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const exited = new Promise<number | null>((resolve) =>
    child.on('exit', (code) => {
      resolve(code);
      for (const wake of waiters.splice(0)) wake();
    }),
  );
  return {
    stdout: () => stdout,
    stderr: () => stderr,
    exited,
    signal: (signal) => child.kill(signal),
    waitForStdout: async (pattern) => {
      for (;;) {
        const match = pattern.exec(stdout);
        if (match !== null) return match;
        if (child.exitCode !== null || child.signalCode !== null) throw new Error(`exited (${child.exitCode ?? child.signalCode}) before ${pattern}; stdout:\n${stdout}\nstderr:\n${stderr}`);
        await new Promise<void>((resolve) => waiters.push(resolve));
      }
    },
  };
}

describe('interchange run, when things fail', () => {
  it('exits 1 naming the route and why when a route fails to start, never saying it runs', async () => {
    const run = cli('run', 'test/unit/fixtures/failing-start-route.ts');
    expect(await run.exited).toBe(1);
    expect(run.stderr()).toContain("interchange: route 'broken' failed to start: EndpointError: invalid options in 'memory:broken-in?capacity=zero': capacity must be a positive integer, got 'zero'\n");
    expect(run.stdout()).not.toContain('running');
  }, 20_000);

  it('exits 1 naming the route and the error when a source fails while running', async () => {
    const run = cli('run', 'test/unit/fixtures/failing-source-route.ts', '--quiet');
    await run.waitForStdout(/^interchange: 1 route running/m);
    expect(await run.exited).toBe(1);
    expect(run.stderr()).toContain("interchange: route 'doomed' failed: Error: connection lost for good\n");
    expect(run.stdout()).toMatch(/stopping: draining in-flight messages…\nstopped after \d+\.\d s; final counts/);
  }, 20_000);

  it('exits 1 saying how many messages went back to the source when the drain deadline passes', async () => {
    const run = cli('run', 'test/unit/fixtures/slow-route.ts', '--drain-timeout', '200', '--quiet');
    await run.waitForStdout(/^interchange: 1 route running/m);
    await new Promise((resolve) => setTimeout(resolve, 300)); // the message is taken and being processed
    run.signal('SIGINT');
    expect(await run.exited).toBe(1);
    expect(run.stderr()).toContain('interchange: drain deadline of 200 ms passed: 1 unsettled message went back to the source for redelivery (slow: 1); raise --drain-timeout to let them finish\n');
    expect(run.stdout()).toMatch(/final counts.*\nslow {2}in 1 {2}out 0 {2}filtered 0 {2}failed 0 {2}dead-lettered 0 {2}in-flight 0 /);
  }, 20_000);

  it('says what to set when a route uses amqp: without AMQP_URL', async () => {
    const run = cli('run', 'test/unit/fixtures/amqp-route.ts');
    expect(await run.exited).toBe(1);
    expect(run.stderr()).toContain("unknown scheme 'amqp' in 'amqp:queue/orders' (known: memory); set AMQP_URL=amqp://user:password@host:5672 for `interchange run`, or pass modules: [amqpModule({ url })]");
    expect(run.stderr()).toContain("route 'orders'");
  }, 20_000);
});
