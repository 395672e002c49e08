import { afterEach, describe, expect, it } from 'vitest';
import { createMessage, deadLetter, from, NotStartedError, withHeaders, type Message, type RouteSource } from '../../facade/index.ts';
import { createIntegration, type Integration } from '../../src/runtime/integration.ts';
import type { GaveUp, RouteObserver, RouteProbe } from '../../src/runtime/route-observer.ts';
import type { MemoryTransport } from '../../src/channel/memory-transport.ts';
import { parseEndpoint, silentLogger } from '../../src/core/index.ts';

/** Every call a probe gets, as text, per message id (the state `begin` returns is the message id). */
class Recorder implements RouteObserver {
  readonly events = new Map<string, string[]>();
  readonly gaveUp: GaveUp[] = [];
  readonly published: { step: string; uri: string; ids: string[] }[] = [];
  readonly attached: string[] = [];

  attach(route: { id: string }): RouteProbe<string> {
    this.attached.push(route.id);
    const log = (id: string, event: string): void => {
      const list = this.events.get(id) ?? [];
      list.push(event);
      this.events.set(id, list);
    };
    return {
      begin: (message) => {
        log(message.id, 'begin');
        return message.id;
      },
      carry: (id, message) => withHeaders(message, { carried: id }),
      enterStep: (id, step) => log(id, `enter ${step.id}`),
      leaveStep: (id, step, durationMs) => log(id, `leave ${step.id}${durationMs === undefined ? ' (branches)' : ''}`),
      end: (id, outcome, durationMs, error) => log(id, `end ${outcome}${error === undefined ? '' : ` ${error.message}`}${durationMs === undefined ? ' UNTIMED' : durationMs >= 0 ? '' : ' NEGATIVE'}`),
      publish: (step, uri, messages) => {
        this.published.push({ step: step.id, uri, ids: messages.map((message) => message.id) });
        return { messages: messages.map((message) => withHeaders(message, { sentBy: step.id })), done: () => {} };
      },
      gaveUp: (event) => this.gaveUp.push(event),
    };
  }
}

const apps: Integration[] = [];
afterEach(async () => {
  for (const app of apps.splice(0)) await app.stop({ drainTimeoutMs: 1_000 });
});

async function run(routes: RouteSource[], recorder: Recorder): Promise<{ app: Integration; memory: MemoryTransport }> {
  const app = createIntegration({ routes, observers: [recorder], logger: silentLogger });
  apps.push(app);
  await app.start();
  return { app, memory: app.transport<MemoryTransport>('memory') };
}

const settle = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 20));

const received = (memory: MemoryTransport, uri: string): Message[] => {
  const out: Message[] = [];
  memory.consume(parseEndpoint(uri), { prefetch: 1_000 }).subscribe((delivery) => {
    out.push(delivery.message);
    delivery.ack();
  });
  return out;
};

describe('route observers', () => {
  it('see each execution begin, pass through its steps, publish and end, with how it ended', async () => {
    const recorder = new Recorder();
    const route = from<{ n: number }>('memory:in', { id: 'numbers' })
      .onError(() => deadLetter('negative'), { deadLetterUri: 'memory:dead' })
      .filter((message) => message.body.n !== 0, { id: 'non-zero' })
      .process(
        (message) => {
          if (message.body.n < 0) throw new Error('negative number');
        },
        { id: 'check' },
      )
      .to('memory:out', { id: 'send' });
    const { app, memory } = await run([route], recorder);
    const out = received(memory, 'memory:out');
    await app.transports.publish('memory:in', [createMessage({ n: 1 }, { id: 'ok' }), createMessage({ n: 0 }, { id: 'zero' }), createMessage({ n: -1 }, { id: 'bad' })]);
    await settle();

    expect(recorder.attached).toEqual(['numbers']);
    expect(recorder.events.get('ok')).toEqual(['begin', 'enter non-zero', 'leave non-zero', 'enter check', 'leave check', 'enter send', 'leave send', 'end completed']);
    expect(recorder.events.get('zero')).toEqual(['begin', 'enter non-zero', 'end filtered']);
    expect(recorder.events.get('bad')).toEqual(['begin', 'enter non-zero', 'leave non-zero', 'enter check', 'end dead-lettered']);
    // what `carry` returned is what the route carried on, and what `publish` returned is what was sent
    expect(out.map((message) => [message.id, message.headers.carried, message.headers.sentBy])).toEqual([['ok', 'ok', 'send']]);
    expect(recorder.published).toEqual([{ step: 'send', uri: 'memory:out', ids: ['ok'] }]);
    expect(recorder.gaveUp.map((event) => [event.outcome, event.step.id, event.uri, event.reason, event.deadLetter?.headers['x-interchange-step']])).toEqual([['dead-lettered', 'check', 'memory:dead', 'negative', 'check']]);

    expect(app.metrics().numbers?.steps).toEqual({ 'non-zero': { passed: 2, failed: 0 }, check: { passed: 1, failed: 1 }, send: { passed: 1, failed: 0 } });
  });

  it('see a step with branches left after its branch, without a duration of its own', async () => {
    const recorder = new Recorder();
    const route = from<{ n: number }>('memory:in', { id: 'router' }).choice(
      (choice) => choice.when((message) => message.body.n > 0, (branch) => branch.transform((message) => message.body, { id: 'positive' })).otherwise((branch) => branch.transform((message) => message.body, { id: 'other' })),
      { id: 'by-sign' },
    ).to('memory:out', { id: 'send' });
    const { app } = await run([route], recorder);
    await app.transports.publish('memory:in', [createMessage({ n: 5 }, { id: 'five' })]);
    await settle();
    expect(recorder.events.get('five')).toEqual(['begin', 'enter by-sign', 'enter positive', 'leave positive', 'leave by-sign (branches)', 'enter send', 'leave send', 'end completed']);
    expect(app.metrics().router?.steps.positive).toEqual({ passed: 1, failed: 0 });
    expect(app.metrics().router?.steps.other).toEqual({ passed: 0, failed: 0 });
  });

  it('follow the steps only of the executions a probe asks for (followSteps), and end every execution', async () => {
    const steps: string[] = [];
    const ended: string[] = [];
    const sampling: RouteObserver = {
      attach: (): RouteProbe<boolean> => ({
        begin: (message) => (message.body as number) % 2 === 0,
        followSteps: (even) => even,
        leaveStep: (_even, step, durationMs) => steps.push(`${step.id} ${durationMs === undefined ? 'untimed' : 'timed'}`),
        end: (even, outcome, durationMs) => ended.push(`${String(even)} ${outcome} ${durationMs === undefined ? 'untimed' : 'timed'}`),
      }),
    };
    const app = createIntegration({ routes: [from<number>('memory:in', { id: 'sampled' }).transform((message) => message.body, { id: 'same' }).to('memory:out', { id: 'send' })], observers: [sampling], logger: silentLogger });
    apps.push(app);
    await app.start();
    await app.transports.publish('memory:in', [1, 2, 3, 4].map((n) => createMessage(n)));
    await settle();
    expect(steps.sort()).toEqual(['same timed', 'same timed', 'send timed', 'send timed']); // 2 and 4 only
    expect(ended).toEqual(['false completed untimed', 'true completed timed', 'false completed untimed', 'true completed timed']);
  });

  it('count each step only while observed: unobserved, a route has no operator between its steps', async () => {
    const app = createIntegration({ routes: [from<number>('memory:in', { id: 'plain' }).filter((message) => message.body > 1).to('memory:out')] });
    apps.push(app);
    await app.start();
    await app.transports.publish('memory:in', [1, 2, 3].map((n) => createMessage(n)));
    await settle();
    expect(app.metrics().plain?.steps).toEqual({ 'filter-1': { passed: 0, failed: 0 }, 'to-1': { passed: 0, failed: 0 } });
    expect(app.metrics().plain?.completed).toBe(2);
  });
});

describe('replay into a route', () => {
  const route = (): RouteSource =>
    from<{ n: number }>('memory:replay-in', { id: 'replayed' })
      .onError(() => deadLetter('bad'), { deadLetterUri: 'memory:replay-dead' })
      .filter((message) => message.body.n !== 0)
      .process((message) => {
        if (message.body.n < 0) throw new Error('negative');
      })
      .to('memory:replay-out');

  it('runs a message through the route as its source would, and says how it ended', async () => {
    const recorder = new Recorder();
    const { app, memory } = await run([route()], recorder);
    const out = received(memory, 'memory:replay-out');
    const runtime = app.route('replayed');
    expect(await runtime.replay(createMessage({ n: 2 }, { id: 'r-ok', headers: { 'x-interchange-replays': 1 } }))).toBe('completed');
    expect(await runtime.replay(createMessage({ n: -2 }, { id: 'r-bad' }))).toBe('dead-lettered');
    expect(await runtime.replay(createMessage({ n: 0 }, { id: 'r-zero' }))).toBe('filtered');
    expect(out.map((message) => [message.id, message.headers['x-interchange-replays']])).toEqual([['r-ok', 1]]);
    expect(app.metrics().replayed).toMatchObject({ received: 3, completed: 1, filtered: 1, deadLettered: 1, inFlight: 0 });
    expect(recorder.events.get('r-bad')?.at(-1)).toBe('end dead-lettered');
  });

  it('is refused while the route is stopped', async () => {
    const { app } = await run([route()], new Recorder());
    await app.stopRoute('replayed');
    await expect(app.route('replayed').replay(createMessage({ n: 1 }))).rejects.toBeInstanceOf(NotStartedError);
  });
});
