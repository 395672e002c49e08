import { ContainerModule } from 'inversify';
import { Observable } from 'rxjs';
import { afterEach, describe, expect, it } from 'vitest';
import type { MemoryTransport } from '../../facade/index.ts';
import { createDelivery, Transport, type Delivery, type Endpoint } from '../../src/spi.ts';
import { createMessage, DeadLetterHeaders, InterchangeError, deadLetter, discard, from, retryAfter, type Message, type RouteSource } from '../../facade/index.ts';
import { startTestIntegration, type TestIntegration, type TestKit } from '../../facade/testing/index.ts';

const running: TestIntegration[] = [];

async function start(routes: RouteSource[], modules: ContainerModule[] = []): Promise<{ app: TestIntegration['app']; kit: TestKit; memory: MemoryTransport }> {
  const test = await startTestIntegration({ routes, modules });
  running.push(test);
  return { app: test.app, kit: test.kit, memory: test.app.transport<MemoryTransport>('memory') };
}

afterEach(async () => {
  for (const test of running.splice(0)) await test.stop();
});

const until = async (condition: () => boolean, timeoutMs = 3_000): Promise<void> => {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
};

/** A source that hands out given messages and records how each was settled. */
class RecordingTransport implements Transport {
  readonly scheme = 'rec';
  readonly settlements = new Map<string, string[]>();
  constructor(private readonly messages: readonly Message[]) {}
  async connect(): Promise<void> {}
  async close(): Promise<void> {}
  async publish(): Promise<void> {}
  consume(_endpoint: Endpoint): Observable<Delivery> {
    return new Observable((subscriber) => {
      for (const message of this.messages) {
        const log: string[] = [];
        this.settlements.set(message.id, log);
        subscriber.next(createDelivery(message, { ack: () => log.push('ack'), nack: () => log.push('nack') }));
      }
    });
  }
}

describe('route runtime', () => {
  it('acks every source delivery exactly once, whatever happens to it in the route', async () => {
    const messages = Array.from({ length: 60 }, (_, n) => createMessage({ n }));
    const recording = new RecordingTransport(messages);
    const { kit, app } = await start(
      [
        from<{ n: number }>('rec:in')
          .deadLetterChannel('memory:dlq')
          .filter((m) => m.body.n % 5 !== 0)
          .split((m) => [m.body.n, m.body.n + 1000])
          .transform((m) => {
            if (m.body === 7) throw new Error('seven');
            return m.body;
          })
          .choice((c) => c.when((m) => m.body % 2 === 0, (b) => b.to('memory:even')).otherwise((b) => b.to('memory:odd'))),
      ],
      [new ContainerModule(({ bind }) => void bind<Transport>(Transport).toConstantValue(recording))],
    );
    const even = kit.mock('memory:even');
    const odd = kit.mock('memory:odd');
    await until(() => [...recording.settlements.values()].every((log) => log.length > 0));
    await new Promise((resolve) => setTimeout(resolve, 50));
    for (const [id, log] of recording.settlements) expect({ id, log }).toEqual({ id, log: ['ack'] });
    expect(even.received.length + odd.received.length).toBe(48 * 2 - 1);
    expect(app.metrics()['rec:in']).toMatchObject({ received: 60, filtered: 12, deadLettered: 1, inFlight: 0 });
  });

  it('dead-letters a message whose step throws, naming route, step and declaration line, and keeps running', async () => {
    const { kit, app } = await start([
      from<{ n: number }>('memory:in', { id: 'numbers' })
        .deadLetterChannel('memory:dlq')
        .transform((m) => {
          if (m.body.n === 2) throw new RangeError('two is not allowed');
          return m.body.n * 10;
        }, { id: 'times-ten' })
        .to('memory:out'),
    ]);
    const out = kit.mock<number>('memory:out');
    const dlq = kit.mock<{ n: number }>('memory:dlq');
    await kit.sendAll('memory:in', [{ n: 1 }, { n: 2 }, { n: 3 }]);
    await out.expect(2);
    const [dead] = await dlq.expect(1);
    expect(out.bodies()).toEqual([10, 30]);
    expect(dead?.body).toEqual({ n: 2 });
    expect(dead?.headers).toMatchObject({
      [DeadLetterHeaders.code]: 'STEP_FAILED',
      [DeadLetterHeaders.error]: 'two is not allowed',
      [DeadLetterHeaders.route]: 'numbers',
      [DeadLetterHeaders.step]: 'times-ten',
      [DeadLetterHeaders.attempts]: 1,
    });
    expect(dead?.headers[DeadLetterHeaders.declaredAt]).toMatch(/^test\/unit\/route-runtime\.test\.ts:\d+$/);
    await kit.send('memory:in', { n: 4 });
    await out.expect(3);
    expect(app.route('numbers').status).toBe('started');
  });

  it('bounds retries: an always-failing step runs maxAttempts times, then is dead-lettered', async () => {
    let runs = 0;
    const { kit, app } = await start([
      from('memory:in', { id: 'r' })
        .onError(() => retryAfter(1), { maxAttempts: 4, deadLetterUri: 'memory:dlq' })
        .process(() => {
          runs += 1;
          throw new Error('down');
        })
        .to('memory:out'),
    ]);
    const dlq = kit.mock('memory:dlq');
    await kit.send('memory:in', 'x');
    const [dead] = await dlq.expect(1);
    expect(runs).toBe(4);
    expect(dead?.headers[DeadLetterHeaders.attempts]).toBe(4);
    await until(() => app.metrics().r?.inFlight === 0);
    expect(app.metrics().r).toMatchObject({ failed: 4, retried: 3, deadLettered: 1, inFlight: 0 });
  });

  it('never retries a permanent failure, whatever the handler asks', async () => {
    let runs = 0;
    const { kit, app } = await start([
      from('memory:in', { id: 'r' })
        .onError(() => retryAfter(1), { maxAttempts: 5, deadLetterUri: 'memory:dlq' })
        .process(() => {
          runs += 1;
          throw new InterchangeError('BAD_INPUT', 'the message itself is wrong', { permanent: true });
        })
        .to('memory:out'),
    ]);
    const dlq = kit.mock('memory:dlq');
    await kit.send('memory:in', 'x');
    const [dead] = await dlq.expect(1);
    expect(runs).toBe(1);
    expect(dead?.headers).toMatchObject({ [DeadLetterHeaders.code]: 'BAD_INPUT', [DeadLetterHeaders.reason]: 'not retried: the message itself is at fault' });
    await until(() => app.metrics().r?.inFlight === 0);
    expect(app.metrics().r).toMatchObject({ failed: 1, retried: 0, deadLettered: 1 });
  });

  it('retries a transient failure and then delivers', async () => {
    let runs = 0;
    const { kit } = await start([
      from('memory:in')
        .onError(() => retryAfter(2), { maxAttempts: 3 })
        .process(() => {
          runs += 1;
          if (runs < 3) throw new Error('flaky');
        })
        .to('memory:out'),
    ]);
    const out = kit.mock('memory:out');
    await kit.send('memory:in', 'x');
    await out.expect(1);
    expect(runs).toBe(3);
  });

  it('without a dead-letter channel, rejects to the source, whose redelivery is bounded too', async () => {
    let runs = 0;
    const { kit, memory, app } = await start([
      from('memory:in', { id: 'r' })
        .process(() => {
          runs += 1;
          throw new Error('always');
        })
        .to('memory:out'),
    ]);
    await kit.send('memory:in', 'poison');
    await until(() => memory.depth('in.dead') === 1);
    expect(runs).toBe(5);
    expect(app.metrics().r).toMatchObject({ rejected: 5, inFlight: 0 });
  });

  it('discard policy acks and counts; a throwing error handler rejects', async () => {
    const { kit, app, memory } = await start([
      from<string>('memory:a', { id: 'a' })
        .onError(() => discard('not interesting'))
        .transform(() => {
          throw new Error('x');
        })
        .to('memory:out'),
      from<string>('memory:b', { id: 'b' })
        .onError(() => {
          throw new Error('handler bug');
        })
        .transform(() => {
          throw new Error('x');
        })
        .to('memory:out'),
    ]);
    await kit.send('memory:a', 'm');
    await kit.send('memory:b', 'm');
    await until(() => app.metrics().a?.discarded === 1 && memory.depth('b.dead') === 1);
    expect(memory.depth('a')).toBe(0);
    expect(app.metrics().b?.rejected).toBe(5);
  });

  it('a deadLetter policy without a dead-letter channel rejects instead of losing the message', async () => {
    const { kit, app } = await start([
      from('memory:in', { id: 'r' })
        .onError(() => deadLetter('bad'))
        .transform(() => {
          throw new Error('x');
        })
        .to('memory:out'),
    ]);
    await kit.send('memory:in', 'm');
    await until(() => app.metrics().r?.rejected === 5);
  });

  it('drops expired messages at intake, acked and counted', async () => {
    const { kit, app } = await start([from('memory:in', { id: 'r' }).to('memory:out')]);
    const out = kit.mock('memory:out');
    await kit.sendMessages('memory:in', [createMessage('stale', { headers: { expiresAt: Date.now() - 1 } }), createMessage('fresh', { headers: { expiresAt: Date.now() + 60_000 } })]);
    await out.expect(1);
    expect(out.bodies()).toEqual(['fresh']);
    expect(app.metrics().r).toMatchObject({ received: 2, expired: 1, completed: 1 });
  });

  it('stop() drains in-flight messages before it resolves', async () => {
    const { kit, app, memory } = await start([
      from<number>('memory:in', { id: 'slow' })
        .process(() => new Promise((resolve) => setTimeout(resolve, 100)), { concurrency: 10 })
        .to('memory:out'),
    ]);
    await kit.sendAll('memory:in', [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    await until(() => app.metrics().slow?.inFlight === 10);
    await app.stopRoute('slow');
    expect(app.metrics().slow).toMatchObject({ inFlight: 0, completed: 10 });
    expect(memory.depth('out')).toBe(10);
    expect(app.route('slow').status).toBe('stopped');
    await kit.send('memory:in', 11);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(memory.depth('in')).toBe(1);
    app.startRoute('slow');
    await until(() => memory.depth('out') === 11);
  });

  it('stop() gives up at the deadline and hands unsettled deliveries back to the source', async () => {
    const { kit, app, memory } = await start([
      from('memory:in', { id: 'stuck' })
        .process(() => new Promise<void>(() => {}))
        .to('memory:out'),
    ]);
    await kit.send('memory:in', 'x');
    await until(() => app.metrics().stuck?.inFlight === 1);
    const started = Date.now();
    await app.stopRoute('stuck', { drainTimeoutMs: 100 });
    expect(Date.now() - started).toBeGreaterThanOrEqual(90);
    expect(memory.depth('in')).toBe(1);
  });

  it('a step can use a service bound in the container', async () => {
    const Prices = Symbol('Prices');
    interface Prices {
      of(sku: string): Promise<number>;
    }
    const prices: Prices = { of: async (sku) => (sku === 'a' ? 3 : 5) };
    const { kit } = await start(
      [
        from<{ sku: string }>('memory:in')
          .enrich((m, { service }) => service<Prices>(Prices).of(m.body.sku), (m, price) => ({ ...m.body, price }))
          .to('memory:out'),
      ],
      [new ContainerModule(({ bind }) => void bind<Prices>(Prices).toConstantValue(prices))],
    );
    const out = kit.mock('memory:out');
    await kit.sendAll('memory:in', [{ sku: 'a' }, { sku: 'b' }]);
    await out.expect(2);
    expect(out.bodies()).toEqual([
      { sku: 'a', price: 3 },
      { sku: 'b', price: 5 },
    ]);
  });
});
