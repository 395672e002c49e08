import { afterEach, describe, expect, it } from 'vitest';
import { cli, killCliProcesses, type CliRun } from '../support/cli-process.ts';


const interchange = (...args: string[]): CliRun => cli(args);

afterEach(killCliProcesses);

describe('interchange run', () => {
  it('shows the live line, drains on SIGINT, prints the final counts and exits 0', async () => {
    const run = interchange('run', 'test/unit/fixtures/counting-route.ts', '--drain-timeout', '2000');
    await run.waitForStdout(/^interchange: 1 route running from test\/unit\/fixtures\/counting-route\.ts \(fixture\)/m);
    // Not a TTY: a line is printed once a counter changed; wait for the one with every message settled.
    const live = await run.waitForStdout(/^fixture {2}in 5 {2}out 4 {2}filtered 1 {2}failed 0 {2}dead-lettered 0 {2}in-flight 0 {2}(\d+\.\d) msg\/s$/m);
    expect(Number(live[1])).toBeGreaterThan(0);
    run.signal('SIGINT');
    expect(await run.exited).toBe(0);
    const lines = run.stdout().trimEnd().split('\n');
    expect(lines.at(-3)).toBe('stopping: draining in-flight messages…');
    expect(lines.at(-2)).toMatch(/^stopped after \d+\.\d s; final counts/);
    expect(lines.at(-1)).toMatch(/^fixture {2}in 5 {2}out 4 {2}filtered 1 {2}failed 0 {2}dead-lettered 0 {2}in-flight 0 {2}\d+\.\d msg\/s$/);
    expect(run.stderr()).toBe('');
  }, 20_000);

  it('calls the route file\'s onStopped after the drain, before the final counts', async () => {
    const run = interchange('run', 'test/unit/fixtures/reporting-route.ts', '--quiet');
    await run.waitForStdout(/^interchange: 1 route running/m);
    run.signal('SIGINT'); // the message is still being processed
    expect(await run.exited).toBe(0);
    const lines = run.stdout().trimEnd().split('\n');
    expect(lines.at(-4)).toBe('stopping: draining in-flight messages…');
    expect(lines.at(-3)).toBe('onStopped: completed 1, in-flight 0');
    expect(lines.at(-2)).toMatch(/^stopped after \d+\.\d s; final counts/);
  }, 20_000);

  it('exits 1 at once on a second signal while draining', async () => {
    const run = interchange('run', 'test/unit/fixtures/slow-route.ts', '--drain-timeout', '60000');
    await run.waitForStdout(/^slow {2}in 1 {2}out 0 {2}filtered 0 {2}failed 0 {2}dead-lettered 0 {2}in-flight 1 /m);
    run.signal('SIGINT');
    await run.waitForStdout(/^stopping: draining in-flight messages…$/m);
    run.signal('SIGINT');
    expect(await run.exited).toBe(1);
    expect(run.stderr()).toContain('SIGINT again: exiting without draining');
    expect(run.stdout()).not.toContain('final counts');
  }, 20_000);

  it('exits 1 naming the route, the problem and the line when a route is invalid', async () => {
    const run = interchange('run', 'test/unit/fixtures/bad-route.ts');
    expect(await run.exited).toBe(1);
    expect(run.stderr()).toContain("unknown scheme 'nope' in 'nope:x'");
    expect(run.stderr()).toContain("route 'bad'");
    expect(run.stderr()).toContain('test/unit/fixtures/bad-route.ts:4');
    expect(run.stdout()).toBe('');
  }, 20_000);

  it('exits 2 with the usage when there is no command', async () => {
    const run = interchange();
    expect(await run.exited).toBe(2);
    expect(run.stderr()).toContain('interchange: no command given');
    expect(run.stderr()).toContain('Usage:\n  interchange run <routes.ts>');
  }, 20_000);

  it('exits 2 with the usage for an unknown command or a missing route file', async () => {
    const unknown = interchange('serve');
    const missing = interchange('run', 'test/unit/fixtures/no-such-file.ts');
    expect(await unknown.exited).toBe(2);
    expect(unknown.stderr()).toContain("unknown command 'serve'");
    expect(await missing.exited).toBe(2);
    expect(missing.stderr()).toContain('no such route file: test/unit/fixtures/no-such-file.ts');
    expect(missing.stderr()).toContain('Usage:');
  }, 20_000);

  it('prints the usage on stdout and exits 0 for --help', async () => {
    const run = interchange('--help');
    expect(await run.exited).toBe(0);
    expect(run.stdout()).toContain('--drain-timeout <ms>');
    expect(run.stderr()).toBe('');
  }, 20_000);
});
