import { ContainerModule } from 'inversify';
import { Observable, type Subscriber } from 'rxjs';
import { afterEach, describe, expect, it } from 'vitest';
import { createMessage, from, reject, RouteDefinitionError, type Message, type RouteSource } from '../../facade/index.ts';
import { startTestIntegration, type TestIntegration } from '../../facade/testing/index.ts';
import { createDelivery, MemoryIdempotencyStore, Transport, type Delivery, type Endpoint } from '../../src/spi.ts';
import { createIntegration } from '../../src/runtime/integration.ts';
import { silentLogger } from '../../src/core/index.ts';
import type { RouteDefinition } from '../../src/dsl/route-definition.ts';
import { VirtualTimeScheduler } from 'rxjs';
import { runUntil } from './virtual-time.ts';

/** A source the test feeds by hand, recording how each delivery was settled, in order. */
class HandSource implements Transport {
  readonly scheme = 'hand';
  readonly settled: string[] = [];
  private subscriber: Subscriber<Delivery> | undefined;
  async connect(): Promise<void> {}
  async close(): Promise<void> {}
  async publish(): Promise<void> {}
  consume(_endpoint: Endpoint): Observable<Delivery> {
    return new Observable((subscriber) => {
      this.subscriber = subscriber;
    });
  }
  push(message: Message): void {
    this.subscriber?.next(createDelivery(message, { ack: () => this.settled.push(`ack ${message.id}`), nack: () => this.settled.push(`nack ${message.id}`) }));
  }
}

const running: TestIntegration[] = [];
afterEach(async () => {
  for (const test of running.splice(0)) await test.stop();
});

async function start(routes: RouteSource[], source = new HandSource()): Promise<TestIntegration & { source: HandSource }> {
  const module = new ContainerModule(({ bind }) => {
    bind(Transport).toConstantValue(source);
  });
  const test = await startTestIntegration({ routes, modules: [module] });
  running.push(test);
  return Object.assign(test, { source });
}

/** A promise the test resolves: a step that waits on it is "still running". */
function gate(): { promise: Promise<void>; open: () => void } {
  let open = (): void => {};
  const promise = new Promise<void>((resolve) => (open = resolve));
  return { promise, open };
}

const flush = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 10));

describe('delivery policy: at-least-once (the default)', () => {
  it('acks the source only once the output is confirmed', async () => {
    const step = gate();
    const { source, kit } = await start([from('hand:in').process(() => step.promise).to('memory:out')]);
    const out = kit.mock('memory:out');
    source.push(createMessage('a', { id: 'a' }));
    await flush();
    expect(source.settled).toEqual([]);
    step.open();
    await out.expect(1);
    await flush();
    expect(source.settled).toEqual(['ack a']);
  });

  it('rejects to the source when the step fails: the message comes back', async () => {
    const { source } = await start([from('hand:in').process(() => Promise.reject(new Error('boom'))).to('memory:out')]);
    source.push(createMessage('a', { id: 'a' }));
    await flush();
    expect(source.settled).toEqual(['nack a']);
  });

  it('leaves a route without the option as it was: no delivery key, no extra step', () => {
    const definition = from('memory:in', { prefetch: 5 }).to('memory:out').definition();
    expect(definition.sourceOptions).toEqual({ prefetch: 5 });
    expect(definition.steps.map((step) => step.kind)).toEqual(['to']);
  });
});

describe('delivery policy: at-most-once', () => {
  it('acks the source as the route takes the message, before the step has finished', async () => {
    const step = gate();
    const { source, kit } = await start([from('hand:in', { delivery: 'at-most-once' }).process(() => step.promise).to('memory:out')]);
    const out = kit.mock('memory:out');
    source.push(createMessage('a', { id: 'a' }));
    await flush();
    expect(source.settled).toEqual(['ack a']);
    step.open();
    await out.expect(1);
    await flush();
    expect(source.settled).toEqual(['ack a']);
  });

  it('a rejection drops the message: never nacked, counted as rejected', async () => {
    const { source, app } = await start([
      from('hand:in', { delivery: 'at-most-once' })
        .process(() => Promise.reject(new Error('boom')))
        .to('memory:out'),
    ]);
    source.push(createMessage('a', { id: 'a' }));
    await flush();
    expect(source.settled).toEqual(['ack a']);
    expect(app.metrics()['hand:in']?.rejected).toBe(1);
  });

  it('still dead-letters a failure the error handler dead-letters', async () => {
    const { source, kit, app } = await start([
      from('hand:in', { delivery: 'at-most-once' })
        .deadLetterChannel('memory:dlq')
        .process(() => Promise.reject(new Error('boom')))
        .to('memory:out'),
    ]);
    const dlq = kit.mock('memory:dlq');
    source.push(createMessage('a', { id: 'a' }));
    await dlq.expect(1);
    await flush();
    expect(source.settled).toEqual(['ack a']);
    expect(app.metrics()['hand:in']?.deadLettered).toBe(1);
  });

  it('a stop past its deadline loses what was in flight: nothing is handed back for redelivery', async () => {
    const { source, app } = await start([from('hand:in', { delivery: 'at-most-once' }).process(() => new Promise<void>(() => {})).to('memory:out')]);
    source.push(createMessage('a', { id: 'a' }));
    await flush();
    await app.stop({ drainTimeoutMs: 20 });
    expect(source.settled).toEqual(['ack a']);
    expect(app.metrics()['hand:in']?.handedBack).toBe(1);
  });

  it('keeps admission bounded by prefetch: beyond it, deliveries wait unacked and unprocessed, and go back on stop', async () => {
    const step = gate();
    let started = 0;
    const { source, kit, app } = await start([
      from('hand:in', { delivery: 'at-most-once', prefetch: 2 })
        .process(
          () => {
            started += 1;
            return step.promise;
          },
          { concurrency: 10 },
        )
        .to('memory:out'),
    ]);
    const out = kit.mock('memory:out');
    for (const id of ['a', 'b', 'c', 'd', 'e']) source.push(createMessage(id, { id }));
    await flush();
    expect(source.settled).toEqual(['ack a', 'ack b']);
    expect(started).toBe(2);
    step.open();
    await out.expect(5);
    await flush();
    expect(source.settled).toEqual(['ack a', 'ack b', 'ack c', 'ack d', 'ack e']);

    const stuck = gate();
    const second = await start([from('hand:in', { id: 'stuck', delivery: 'at-most-once', prefetch: 1 }).process(() => stuck.promise).to('memory:out')]);
    for (const id of ['x', 'y']) second.source.push(createMessage(id, { id }));
    await flush();
    await second.app.stop({ drainTimeoutMs: 20 });
    expect(second.source.settled).toEqual(['ack x']); // y waited: neither acked nor processed, redelivered by the source
    expect(app.metrics()['hand:in']?.inFlight).toBe(0);
  });

  it('a replay into an at-most-once route still resolves with its real outcome', async () => {
    const { app } = await start([
      from('hand:in', { id: 'amo', delivery: 'at-most-once' })
        .process((m) => (m.body === 'bad' ? Promise.reject(new Error('boom')) : undefined))
        .to('memory:out'),
    ]);
    await expect(app.route('amo').replay(createMessage('bad'))).resolves.toBe('rejected');
    await expect(app.route('amo').replay(createMessage('good'))).resolves.toBe('completed');
  });

  it('acks the message even when the error handler rejects it', async () => {
    const { source } = await start([
      from('hand:in', { delivery: 'at-most-once' })
        .onError(() => reject())
        .process(() => {
          throw new Error('boom');
        })
        .to('memory:out'),
    ]);
    source.push(createMessage('a', { id: 'a' }));
    source.push(createMessage('b', { id: 'b' }));
    await flush();
    expect(source.settled).toEqual(['ack a', 'ack b']);
  });
});

/**
 * A windowed source like NATS core's: at most `prefetch` unsettled, the rest queued locally, and the
 * next one delivered synchronously from inside the settlement (ack) of the last.
 */
class WindowedSource implements Transport {
  readonly scheme = 'win';
  readonly waiting: Message[] = [];
  private subscriber: Subscriber<Delivery> | undefined;
  private unsettled = 0;
  private prefetch = 1;
  async connect(): Promise<void> {}
  async close(): Promise<void> {}
  async publish(): Promise<void> {}
  consume(_endpoint: Endpoint, options: { prefetch?: number } = {}): Observable<Delivery> {
    this.prefetch = options.prefetch ?? 1;
    return new Observable((subscriber) => {
      this.subscriber = subscriber;
    });
  }
  push(message: Message): void {
    if (this.unsettled < this.prefetch) this.emit(message);
    else this.waiting.push(message);
  }
  private emit(message: Message): void {
    this.unsettled += 1;
    const settled = (): void => {
      this.unsettled -= 1;
      const next = this.waiting.shift();
      if (next !== undefined) this.emit(next);
    };
    this.subscriber?.next(createDelivery(message, { ack: settled, nack: settled }));
  }
}

describe('delivery policy: at-most-once over a source that delivers from inside an ack', () => {
  it('keeps the bound and the order: one message in the route at a time with prefetch 1, in publish order', async () => {
    const source = new WindowedSource();
    const module = new ContainerModule(({ bind }) => {
      bind(Transport).toConstantValue(source);
    });
    let active = 0;
    let most = 0;
    const order: number[] = [];
    const first = gate();
    const test = await startTestIntegration({
      routes: [
        from<number>('win:in', { id: 'windowed', prefetch: 1, delivery: 'at-most-once' })
          .process(async (m) => {
            order.push(m.body);
            active += 1;
            most = Math.max(most, active);
            if (m.body === 0) await first.promise;
            active -= 1;
          })
          .to('memory:windowed-out'),
      ],
      modules: [module],
    });
    running.push(test);
    const count = 900; // under the output channel's capacity (1,000, nobody consumes it)
    for (let n = 0; n < count; n += 1) source.push(createMessage(n, { id: `w${n}` }));
    await flush();
    expect(order).toEqual([0]); // the others wait: none admitted (nor acked) while the first is in the route
    first.open();
    const metrics = test.app.route('windowed').metrics;
    for (let turn = 0; turn < 500 && metrics.completed < count; turn += 1) await flush();
    expect(metrics.completed).toBe(count);
    expect(most).toBe(1);
    expect(order).toEqual(Array.from({ length: count }, (_, n) => n));
  });
});

describe('delivery policy: effectively-once', () => {
  it('starts the route with an idempotent consumer on the given store', () => {
    const definition = from('memory:in', { delivery: 'effectively-once', idempotency: { store: new MemoryIdempotencyStore() } }).to('memory:out').definition();
    expect(definition.steps.map((step) => [step.id, step.kind])).toEqual([
      ['idempotent-consumer', 'idempotent-consumer'],
      ['to-1', 'to'],
    ]);
    expect(definition.sourceOptions.delivery).toBe('effectively-once');
  });

  it('processes a message once: a redelivery or an upstream duplicate of a completed one is acked and dropped', async () => {
    let runs = 0;
    const { source, kit, app } = await start([
      from('hand:in', { delivery: 'effectively-once', idempotency: { store: new MemoryIdempotencyStore() } })
        .process(() => {
          runs += 1;
        })
        .to('memory:out'),
    ]);
    const out = kit.mock('memory:out');
    source.push(createMessage('a', { id: 'a' }));
    await out.expect(1);
    await flush();
    source.push(createMessage('a again', { id: 'a' }));
    await flush();
    expect(runs).toBe(1);
    expect(out.received).toHaveLength(1);
    expect(source.settled).toEqual(['ack a', 'ack a']);
    expect(app.metrics()['hand:in']?.filtered).toBe(1);
  });

  it('uses the given key', async () => {
    let runs = 0;
    const { source } = await start([
      from<{ order: string }>('hand:in', { delivery: 'effectively-once', idempotency: { store: new MemoryIdempotencyStore(), key: (m) => (m.body as { order: string }).order } })
        .process(() => {
          runs += 1;
        })
        .to('memory:out'),
    ]);
    source.push(createMessage({ order: 'o-1' }));
    await flush();
    source.push(createMessage({ order: 'o-1' }));
    source.push(createMessage({ order: 'o-2' }));
    await flush();
    expect(runs).toBe(2);
    expect(source.settled).toHaveLength(3);
  });

  it('a failure releases the key: the redelivery is processed', async () => {
    let runs = 0;
    const { source, kit } = await start([
      from('hand:in', { delivery: 'effectively-once', idempotency: { store: new MemoryIdempotencyStore() } })
        .process(() => {
          runs += 1;
          if (runs === 1) throw new Error('first time fails');
        })
        .to('memory:out'),
    ]);
    const out = kit.mock('memory:out');
    source.push(createMessage('a', { id: 'a' }));
    await flush();
    expect(source.settled).toEqual(['nack a']);
    source.push(createMessage('a', { id: 'a' }));
    await out.expect(1);
    await flush();
    expect(source.settled).toEqual(['nack a', 'ack a']);
  });
});

describe('delivery policy: effectively-once after a crash', () => {
  it("a redelivered copy whose claim a dead consumer holds waits for the claim's lease, not the source's redeliveries", async () => {
    const scheduler = new VirtualTimeScheduler();
    const store = new MemoryIdempotencyStore({ leaseMs: 5_000, now: () => scheduler.now() });
    await store.claim('a'); // the consumer that crashed holding it
    let runs = 0;
    const source = new HandSource();
    const module = new ContainerModule(({ bind }) => {
      bind(Transport).toConstantValue(source);
    });
    const test = await startTestIntegration({
      scheduler,
      modules: [module],
      routes: [
        from('hand:in', { delivery: 'effectively-once', idempotency: { store } })
          .process(() => {
            runs += 1;
          })
          .to('memory:out'),
      ],
    });
    running.push(test);
    source.push(createMessage('a', { id: 'a' }));
    await runUntil(scheduler, () => scheduler.now() >= 4_000);
    expect(source.settled).toEqual([]); // neither rejected (which would spend a redelivery) nor processed
    expect(runs).toBe(0);
    await runUntil(scheduler, () => source.settled.length > 0);
    expect(scheduler.now()).toBeGreaterThanOrEqual(5_000);
    expect(runs).toBe(1);
    expect(source.settled).toEqual(['ack a']);
  });
});

describe('delivery policy: build-time checks', () => {
  const build = (route: RouteSource): unknown => createIntegration({ routes: [route], logger: silentLogger });

  it('effectively-once without a store is a RouteDefinitionError naming the option', () => {
    expect(() => build(from('memory:in', { delivery: 'effectively-once' }).to('memory:out'))).toThrow(RouteDefinitionError);
    expect(() => build(from('memory:in', { delivery: 'effectively-once' }).to('memory:out'))).toThrow(/idempotency store/);
  });

  it('an idempotency store without effectively-once is refused, not ignored', () => {
    expect(() => build(from('memory:in', { idempotency: { store: new MemoryIdempotencyStore() } }).to('memory:out'))).toThrow(/effectively-once/);
  });

  it('an unknown policy (a definition built by hand) is refused', () => {
    const definition = { ...from('memory:in').to('memory:out').definition(), sourceOptions: { delivery: 'exactly-once' } } as unknown as RouteDefinition;
    expect(() => build({ definition: () => definition })).toThrow(/unknown delivery policy 'exactly-once'/);
  });

  it('a hand-built effectively-once definition must start with its idempotent consumer', () => {
    const definition: RouteDefinition = { ...from('memory:in').to('memory:out').definition(), sourceOptions: { delivery: 'effectively-once', idempotency: { store: new MemoryIdempotencyStore() } } };
    expect(() => build({ definition: () => definition })).toThrow(/'idempotent-consumer' step first/);
  });

  it('receipts.allow must be a predicate or URI prefixes', () => {
    const definition = { ...from('memory:in').to('memory:out').definition(), sourceOptions: { receipts: { allow: [''] } } } as RouteDefinition;
    expect(() => build({ definition: () => definition })).toThrow(/receipts.allow/);
  });
});
