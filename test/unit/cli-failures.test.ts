import { afterEach, describe, expect, it } from 'vitest';
import { cli, killCliProcesses, type CliRun } from '../support/cli-process.ts';


/** The real `interchange` binary, without the broker URLs of the environment running the tests. */
function interchange(...args: string[]): CliRun {
  const { AMQP_URL: _amqp, MQTT_URL: _mqtt, ...env } = process.env;
  return cli(args, env);
}

afterEach(killCliProcesses);

describe('interchange run, when things fail', () => {
  it('exits 1 naming the route and why when a route fails to start, never saying it runs', async () => {
    const run = interchange('run', 'test/unit/fixtures/failing-start-route.ts');
    expect(await run.exited).toBe(1);
    expect(run.stderr()).toContain("interchange: route 'broken' failed to start: EndpointError: invalid options in 'memory:broken-in?capacity=zero': capacity must be a positive integer, got 'zero'\n");
    expect(run.stdout()).not.toContain('running');
  }, 20_000);

  it('exits 1 naming the route and the error when a source fails while running', async () => {
    const run = interchange('run', 'test/unit/fixtures/failing-source-route.ts', '--quiet');
    await run.waitForStdout(/^interchange: 1 route running/m);
    expect(await run.exited).toBe(1);
    expect(run.stderr()).toContain("interchange: route 'doomed' failed: Error: connection lost for good\n");
    expect(run.stdout()).toMatch(/stopping: draining in-flight messages…\nstopped after \d+\.\d s; final counts/);
  }, 20_000);

  it('exits 1 saying how many messages went back to the source when the drain deadline passes', async () => {
    const run = interchange('run', 'test/unit/fixtures/slow-route.ts', '--drain-timeout', '200', '--quiet');
    await run.waitForStdout(/^interchange: 1 route running/m);
    await new Promise((resolve) => setTimeout(resolve, 300)); // the message is taken and being processed
    run.signal('SIGINT');
    expect(await run.exited).toBe(1);
    expect(run.stderr()).toContain('interchange: drain deadline of 200 ms passed: 1 unsettled message went back to the source for redelivery (slow: 1); raise --drain-timeout to let them finish\n');
    expect(run.stdout()).toMatch(/final counts.*\nslow {2}in 1 {2}out 0 {2}filtered 0 {2}failed 0 {2}dead-lettered 0 {2}in-flight 0 /);
  }, 20_000);

  it('says what to set when a route uses amqp: without AMQP_URL', async () => {
    const run = interchange('run', 'test/unit/fixtures/amqp-route.ts');
    expect(await run.exited).toBe(1);
    expect(run.stderr()).toContain("unknown scheme 'amqp' in 'amqp:queue/orders' (known: memory); set AMQP_URL=amqp://user:password@host:5672 for `interchange run`, or pass modules: [amqpModule({ url })]");
    expect(run.stderr()).toContain("route 'orders'");
  }, 20_000);
});
