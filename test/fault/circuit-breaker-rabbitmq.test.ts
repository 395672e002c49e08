import { afterAll, expect, it } from 'vitest';
import { ensureRabbitRunningAsync, rabbitmqctlAsync } from './rabbitmq-control.ts';
import { createIntegration, createMessage, from, type Logger } from '../../facade/index.ts';
import { TestKit } from '../../facade/testing/index.ts';
import { amqpModule } from '../../adapters/amqp/index.ts';
import { CIRCUIT_STATE_GAUGE } from '../../patterns/circuit-breaker.ts';
import { AMQP_URL, BrokerAdmin, readUntilQuiet, sleep, until } from '../integration/amqp-support.ts';

// Issue #18's "done when" for the circuit breaker: a route whose breaker guards a RabbitMQ queue, fed
// at a fixed rate; RabbitMQ's application is stopped under it, then started again. Always leaves
// RabbitMQ running.
const admin = new BrokerAdmin();
afterAll(async () => {
  await ensureRabbitRunningAsync();
  await admin.close();
});

/** Keeps the breaker's info lines (`circuit breaker open` …), in order. */
class Transitions implements Logger {
  readonly lines: string[] = [];
  info(message: string): void {
    if (message.startsWith('circuit breaker ')) this.lines.push(message.slice('circuit breaker '.length));
  }
  warn(): void {}
  error(): void {}
}

it('RabbitMQ stopped under a circuit breaker: it opens, parks messages in the fallback, and closes again through a half-open trial once RabbitMQ is back — nothing lost', async () => {
  const queue = `hD-cb-${Date.now().toString(36)}`;
  admin.track({ queues: [queue] });
  const parkedUri = `memory:hD-parked-${Date.now().toString(36)}`;
  const transitions = new Transitions();
  const app = createIntegration({
    logger: transitions,
    // a publish waits for the connection at most 1 s, then fails the call (the breaker counts it)
    modules: [amqpModule({ url: AMQP_URL, topology: { queues: [{ name: queue }] }, reconnect: { initialDelayMs: 100, maxDelayMs: 1_000 }, publishTimeoutMs: 1_000 })],
    routes: [
      // redelivered by the memory source after a failed call (the default error handler rejects): into the fallback once open
      from<{ n: number }>('memory:hD-cb-in?maxDeliveries=1000', { id: 'hD-cb' }).circuitBreaker((b) => b.to(`amqp:queue/${queue}`), {
        id: 'breaker',
        windowSize: 5,
        minimumCalls: 5,
        failureRateThreshold: 50,
        openMs: 2_000,
        halfOpenCalls: 1,
        fallback: (b) => b.to(parkedUri),
      }),
    ],
  });
  await app.start();
  const kit = new TestKit(app);
  const parked = kit.mock<{ n: number }>(parkedUri);
  const figures = () => app.route('hD-cb').metrics.steps['breaker'];
  const state = (): number | undefined => figures()?.gauges?.state;

  // the fixed-rate publisher: 25 messages a second, whatever the route does
  let sent = 0;
  const publishing = setInterval(() => {
    const n = sent;
    sent += 1;
    void kit.sendMessages('memory:hD-cb-in', [createMessage({ n }, { id: `hD-${n}` })]);
  }, 40);
  const states: number[] = [];
  const sampling = setInterval(() => {
    const now = state();
    if (now !== undefined && states.at(-1) !== now) states.push(now);
  }, 5);
  let stopped = false;
  let sentWhenClosed = 0;
  try {
    await until(async () => (await admin.messageCount(queue)) >= 25, () => `queue ${queue} did not fill`, 30_000);
    expect(state()).toBe(CIRCUIT_STATE_GAUGE.closed);

    await rabbitmqctlAsync('stop_app');
    stopped = true;
    await until(() => state() === CIRCUIT_STATE_GAUGE.open, () => `breaker did not open: ${JSON.stringify(figures())}`, 30_000);
    expect(figures()?.counts?.opened).toBeGreaterThanOrEqual(1);
    // while RabbitMQ is away, messages go to the fallback
    const parkedAtOpen = parked.received.length;
    await until(() => parked.received.length >= parkedAtOpen + 25, () => `parked ${parked.received.length}`, 30_000);
    await sleep(4_000); // through at least one half-open trial that fails (open 2 s, then the trial's publish times out after 1 s)
    expect(figures()?.counts?.opened, 'a failed half-open trial opens it again').toBeGreaterThanOrEqual(2);

    await ensureRabbitRunningAsync();
    stopped = false;
    await until(() => state() === CIRCUIT_STATE_GAUGE.closed, () => `breaker did not close: ${JSON.stringify(figures())}, transitions ${transitions.lines.join(' → ')}`, 60_000);
    sentWhenClosed = sent;
    // closed again: new messages reach the queue
    await until(() => sent >= sentWhenClosed + 25, () => `publisher stalled at ${sent}`, 10_000);
  } finally {
    clearInterval(publishing);
    clearInterval(sampling);
    if (stopped) await ensureRabbitRunningAsync();
  }
  await sleep(200); // the publisher's last sends
  await app.stop({ drainTimeoutMs: 30_000 });

  const counts = figures()?.counts ?? {};
  await until(() => parked.received.length >= (counts.fallback ?? 0), () => `parked ${parked.received.length} of ${counts.fallback}`, 10_000);
  const inQueue = await readUntilQuiet(queue, sent - sentWhenClosed, 60_000); // at least what was sent after the close
  const queued = new Set(inQueue.map((message) => message.id));
  const parkedIds = new Set(parked.received.map((message) => message.id));
  kit.close();
  const lost = Array.from({ length: sent }, (_, n) => `hD-${n}`).filter((id) => !queued.has(id) && !parkedIds.has(id));
  const afterClose = Array.from({ length: sent - sentWhenClosed }, (_, k) => `hD-${sentWhenClosed + k}`);
  console.log(
    `circuit breaker: ${sent} sent at 25/s, ${queued.size} in the queue, ${parkedIds.size} parked; opened ${counts.opened}, rejected ${counts.rejected}, ` +
      `fallback ${counts.fallback}; states ${states.join(' → ')}; transitions ${transitions.lines.join(' → ')}`,
  );
  // the gauge went closed → open → … → closed (a half-open spell may be shorter than the sampling), and
  // the log shows each change once: open and half-open alternate while the trials fail, then a trial succeeds
  expect(states[0]).toBe(CIRCUIT_STATE_GAUGE.closed);
  expect(states).toContain(CIRCUIT_STATE_GAUGE.open);
  expect(states.at(-1)).toBe(CIRCUIT_STATE_GAUGE.closed);
  expect(transitions.lines[0]).toBe('open');
  expect(transitions.lines.slice(-2)).toEqual(['half-open', 'closed']);
  expect(transitions.lines.slice(0, -1).every((line, index) => line === (index % 2 === 0 ? 'open' : 'half-open'))).toBe(true);
  expect(transitions.lines.filter((line) => line === 'open')).toHaveLength(counts.opened ?? -1);
  // every message the breaker did not let through went to the fallback, and nothing was lost
  expect(counts.fallback).toBe(parked.received.length);
  expect(counts.rejected).toBe(counts.fallback);
  expect(parkedIds.size).toBeGreaterThanOrEqual(25);
  expect(lost).toEqual([]);
  // after the close, messages reach the queue again (and none of them was parked)
  expect(afterClose.filter((id) => !queued.has(id))).toEqual([]);
  expect(afterClose.filter((id) => parkedIds.has(id))).toEqual([]);
});
