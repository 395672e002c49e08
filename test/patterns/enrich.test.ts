import { ContainerModule } from 'inversify';
import { VirtualTimeScheduler } from 'rxjs';
import { afterEach, describe, expect, it } from 'vitest';
import { enrich } from '../../patterns/enrich.ts';
import { createIntegration, from, silentLogger, type Integration } from '../../facade/index.ts';
import { TestKit } from '../../facade/testing/index.ts';
import { deferred, drive, Harness, settle, source, sources } from './harness.ts';

/** A fetch whose calls are held until the test resolves them; counts how many run at once. */
function controlledFetch<T>() {
  const calls: { readonly body: T; resolve(value: string): void; reject(reason: unknown): void }[] = [];
  const stats = { inFlight: 0, maxInFlight: 0 };
  const fetch = (message: { body: T }): Promise<string> => {
    const call = deferred<string>();
    stats.inFlight += 1;
    stats.maxInFlight = Math.max(stats.maxInFlight, stats.inFlight);
    calls.push({ body: message.body, resolve: call.resolve, reject: call.reject });
    return call.promise.finally(() => {
      stats.inFlight -= 1;
    });
  };
  return { calls, stats, fetch };
}

describe('enrich', () => {
  it('merges what the fetch returned into a new body, keeping id and settlement', async () => {
    const harness = new Harness();
    const { output, send } = drive(harness.build(enrich<{ sku: string }, number, { sku: string; price: number }>(async (m) => m.body.sku.length * 10, (m, price) => ({ ...m.body, price }))));
    const input = source({ sku: 'abc' }, { id: 'o-1' });
    send(input);
    await settle();
    expect(output.messages.map((m) => [m.id, m.body])).toEqual([['o-1', { sku: 'abc', price: 30 }]]);
    output.ackAll();
    expect(input.acks).toBe(1);
  });

  it('runs at most `concurrency` fetches at once; later messages wait; completion order is free', async () => {
    const harness = new Harness();
    const { calls, stats, fetch } = controlledFetch<number>();
    const { input, output, send } = drive(harness.build(enrich<number, string, string>(fetch, (m, extra) => `${m.body}:${extra}`, { concurrency: 3 })));
    send(...sources([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]));
    input.complete();
    await settle();
    expect(calls.map((c) => c.body)).toEqual([0, 1, 2]);
    expect(stats.inFlight).toBe(3);
    // Answer newest first, one at a time: each answer lets exactly one waiting message start.
    const answered = new Set<number>();
    while (answered.size < 10) {
      const open = calls.filter((c) => !answered.has(c.body));
      expect(open.length).toBe(Math.min(3, 10 - answered.size));
      const newest = open[open.length - 1]!;
      answered.add(newest.body);
      newest.resolve(`x${answered.size}`);
      await settle();
      expect(stats.inFlight).toBeLessThanOrEqual(3);
    }
    expect(stats.maxInFlight).toBe(3);
    expect(output.bodies.map((b) => Number(b.split(':')[0])).sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(output.completed).toBe(true);
  });

  it('defaults to 8 fetches at once', async () => {
    const harness = new Harness();
    const { stats, fetch } = controlledFetch<number>();
    drive(harness.build(enrich<number, string, string>(fetch, (_m, extra) => extra))).send(...sources(Array.from({ length: 20 }, (_, i) => i)));
    await settle();
    expect(stats.inFlight).toBe(8);
  });

  it('fails only the message whose fetch rejects', async () => {
    const harness = new Harness();
    const boom = new Error('lookup failed');
    const { output, send } = drive(
      harness.build(
        enrich<number, number, number>(
          async (m) => {
            if (m.body === 2) throw boom;
            return m.body * 100;
          },
          (m, extra) => m.body + extra,
        ),
      ),
    );
    const inputs = sources([1, 2, 3]);
    send(...inputs);
    await settle();
    expect(output.bodies.sort()).toEqual([101, 303]);
    expect(harness.failures.map((f) => [f.delivery.message.id, f.error])).toEqual([[inputs[1]!.message.id, boom]]);
    expect(inputs.map((i) => i.nacks)).toEqual([0, 1, 0]);
  });

  it('keeps the concurrency bound when a failed fetch is retried', async () => {
    const scheduler = new VirtualTimeScheduler();
    const harness = new Harness({ scheduler, failed: (_d, _e, attempt) => (attempt === 1 ? 10 : undefined) });
    const { calls, stats, fetch } = controlledFetch<number>();
    const { output, send } = drive(harness.build(enrich<number, string, string>(fetch, (m, extra) => `${m.body}${extra}`, { concurrency: 2 })));
    send(...sources([1, 2, 3]));
    await settle();
    calls[0]!.reject(new Error('transient'));
    await settle();
    // 1 failed and waits for its retry; 2 and 3 are fetching.
    expect(calls.map((c) => c.body)).toEqual([1, 2, 3]);
    scheduler.flush();
    await settle();
    expect(stats.inFlight).toBe(2);
    expect(calls).toHaveLength(3);
    calls[1]!.resolve('!');
    await settle();
    expect(calls.map((c) => c.body)).toEqual([1, 2, 3, 1]);
    calls[2]!.resolve('!');
    calls[3]!.resolve('!');
    await settle();
    expect(stats.maxInFlight).toBe(2);
    expect(output.bodies.sort()).toEqual(['1!', '2!', '3!']);
    expect(harness.failures.map((f) => f.attempt)).toEqual([1]);
  });
});

describe('enrich through the runtime', () => {
  let app: Integration | undefined;
  let kit: TestKit | undefined;
  afterEach(async () => {
    kit?.close();
    await app?.stop({ drainTimeoutMs: 100 });
  });

  interface Prices {
    priceOf(sku: string): Promise<number>;
  }
  const Prices = Symbol('Prices');

  it('calls a service bound in the DI container', async () => {
    const asked: string[] = [];
    const prices: Prices = {
      priceOf: async (sku) => {
        asked.push(sku);
        return sku === 'apple' ? 3 : 5;
      },
    };
    app = createIntegration({
      logger: silentLogger,
      modules: [
        new ContainerModule(({ bind }) => {
          bind<Prices>(Prices).toConstantValue(prices);
        }),
      ],
      routes: [
        from<{ sku: string }>('memory:in')
          .enrich(
            (m, { service }) => service<Prices>(Prices).priceOf(m.body.sku),
            (m, price) => ({ ...m.body, price }),
          )
          .to('memory:out'),
      ],
    });
    await app.start();
    kit = new TestKit(app);
    const out = kit.mock<{ sku: string; price: number }>('memory:out');
    await kit.sendAll('memory:in', [{ sku: 'apple' }, { sku: 'pear' }]);
    await out.expect(2);
    expect(out.bodies().sort((a, b) => a.sku.localeCompare(b.sku))).toEqual([
      { sku: 'apple', price: 3 },
      { sku: 'pear', price: 5 },
    ]);
    expect(asked.sort()).toEqual(['apple', 'pear']);
  });
});
