import { Subject, VirtualTimeScheduler } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { DELAY_PARKED_AT, durableDelay } from '../../patterns/delay-durable.ts';
import { delay, InvalidDelayError, type DelayOptions, type DelayValue } from '../../patterns/delay.ts';
import { RouteDefinitionError, type Delivery, type Logger } from '../../src/core/index.ts';
import { InMemoryDelayedMessageStore, type DelayedMessageStore } from '../../src/stores/delayed-message-store.ts';
import { deferred, drive, Harness, settle, source, type HarnessOptions } from './harness.ts';

const KEY = 'test-route/test-step';

/** Runs virtual time up to `at`, one due instant at a time, letting promises run in between. */
async function runTo(scheduler: VirtualTimeScheduler, at: number): Promise<void> {
  await settle();
  for (let next = scheduler.actions[0]; next !== undefined && next.delay <= at; next = scheduler.actions[0]) {
    scheduler.maxFrames = next.delay;
    scheduler.flush();
    await settle();
  }
  scheduler.schedule(() => {}, at - scheduler.now());
  scheduler.maxFrames = at;
  scheduler.flush();
  await settle();
}

/** Delegates every method to `inner`, except those given. */
function wrap(inner: DelayedMessageStore, overrides: Partial<DelayedMessageStore>): DelayedMessageStore {
  return {
    put: (entry) => inner.put(entry),
    claimDue: (key, now, leaseMs, limit) => inner.claimDue(key, now, leaseMs, limit),
    nextAt: (key) => inner.nextAt(key),
    remove: (key, id) => inner.remove(key, id),
    release: (key, id, attempts, at) => inner.release(key, id, attempts, at),
    count: (key) => inner.count(key),
    ...overrides,
  };
}

/** A virtual clock, a store, and delayer "instances" sharing them; each records when it emitted what. */
function setup(storeOverride?: (inner: InMemoryDelayedMessageStore) => DelayedMessageStore) {
  const scheduler = new VirtualTimeScheduler();
  const memory = new InMemoryDelayedMessageStore();
  const store = storeOverride === undefined ? memory : storeOverride(memory);
  const instance = <T = string>(value: DelayValue<T>, options: DelayOptions = {}, harnessOptions: HarnessOptions = {}) => {
    const harness = new Harness({ scheduler, ...harnessOptions });
    const emitted: { at: number; delivery: Delivery<T> }[] = [];
    const input = new Subject<Delivery<T>>();
    let completed = false;
    const subscription = input.pipe(harness.build(delay<T>(value, { store, ...options }))).subscribe({
      next: (delivery) => emitted.push({ at: scheduler.now(), delivery }),
      complete: () => {
        completed = true;
      },
    });
    return { harness, input, emitted, subscription, isCompleted: () => completed, bodies: () => emitted.map((e) => e.delivery.message.body) };
  };
  return { scheduler, store: memory, instance };
}

const byHeader = (m: { headers: { readonly [name: string]: unknown } }): number => Number(m.headers.delayMs);

describe('delay with a store: options', () => {
  it('checks its options where the route is declared', () => {
    const store = new InMemoryDelayedMessageStore();
    expect(() => delay(10, { store, leaseMs: 0 })).toThrow(RouteDefinitionError);
    expect(() => delay(10, { store, pollIntervalMs: Number.NaN })).toThrow(RouteDefinitionError);
    expect(() => delay(10, { store, batchSize: 1.5 })).toThrow(RouteDefinitionError);
    expect(() => delay(10, { store, maxRedeliveries: 0 })).toThrow(RouteDefinitionError);
    expect(() => delay(10, { store, key: '' })).toThrow(RouteDefinitionError);
    expect(() => delay(10, { store, retryBackoff: { initialMs: -1, maxMs: 10 } })).toThrow(RouteDefinitionError);
  });

  it('holds each message in the store until due, then passes the same message on; `key` names the delayer in the store', async () => {
    const { scheduler, store, instance } = setup();
    const one = instance<string>(byHeader, { key: 'hb-key' });
    const a = source('a', { id: 'a', headers: { delayMs: 500, region: 'eu' } });
    one.input.next(a.delivery);
    await runTo(scheduler, 499);
    expect(await store.count('hb-key')).toBe(1);
    expect(one.emitted).toHaveLength(0);
    await runTo(scheduler, 500);
    expect(one.emitted.map((e) => e.at)).toEqual([500]);
    expect(one.emitted[0]?.delivery.message).toEqual(a.message);
  });

  it('a message with no wait left passes on at once, without the store, its source settled with it', async () => {
    const { scheduler, store, instance } = setup();
    const one = instance<string>(byHeader);
    const now = source('now', { headers: { delayMs: -5 } });
    one.input.next(now.delivery);
    await runTo(scheduler, 0);
    expect(one.bodies()).toEqual(['now']);
    expect(await store.count(KEY)).toBe(0);
    expect(now.outcome).toBe('pending');
    one.emitted[0]?.delivery.ack();
    expect(now.outcome).toBe('acked');
  });

  it('publishes the messages the store holds for it as the gauge `delayed`', async () => {
    const { scheduler, instance } = setup();
    const one = instance<string>(byHeader);
    one.input.next(source('a', { headers: { delayMs: 100 } }).delivery);
    one.input.next(source('b', { headers: { delayMs: 200 } }).delivery);
    await runTo(scheduler, 50);
    expect(one.harness.gauges.get('delayed')).toBe(2);
    await runTo(scheduler, 100);
    one.emitted[0]?.delivery.ack();
    await runTo(scheduler, 150);
    expect(one.harness.gauges.get('delayed')).toBe(1);
  });
});

describe('delay with a store: settlement', () => {
  it('acks the source only once the store has the message; the ack of the emitted delivery removes it from the store', async () => {
    const gate = deferred();
    const { scheduler, store, instance } = setup((inner) =>
      wrap(inner, {
        put: async (entry) => {
          await gate.promise;
          return inner.put(entry);
        },
      }),
    );
    const one = instance<string>(100);
    const a = source('a');
    one.input.next(a.delivery);
    await settle();
    expect(a.outcome).toBe('pending'); // the write is under way
    gate.resolve();
    await settle();
    expect(a.outcome).toBe('acked');
    expect(await store.count(KEY)).toBe(1);
    await runTo(scheduler, 100);
    expect(one.bodies()).toEqual(['a']);
    one.emitted[0]?.delivery.ack();
    await settle();
    expect(await store.count(KEY)).toBe(0);
  });

  it('the same message stored again (a redelivered source) is acked without a second copy', async () => {
    const { scheduler, store, instance } = setup();
    const one = instance<string>(100);
    const first = source('a', { id: 'same' });
    const again = source('a', { id: 'same' });
    one.input.next(first.delivery);
    one.input.next(again.delivery);
    await runTo(scheduler, 10);
    expect([first.outcome, again.outcome]).toEqual(['acked', 'acked']);
    expect(await store.count(KEY)).toBe(1);
    await runTo(scheduler, 200);
    expect(one.bodies()).toEqual(['a']);
  });

  it('a rejection downstream releases the message for another try after the backoff (1×, 2× initialMs)', async () => {
    const { scheduler, store, instance } = setup();
    const one = instance<string>(100, { retryBackoff: { initialMs: 1_000, maxMs: 60_000 } });
    one.input.next(source('a').delivery);
    await runTo(scheduler, 100);
    one.emitted[0]?.delivery.nack(new Error('downstream failed'));
    await runTo(scheduler, 1_099);
    expect(one.emitted).toHaveLength(1);
    await runTo(scheduler, 1_100);
    expect(one.emitted.map((e) => e.at)).toEqual([100, 1_100]);
    one.emitted[1]?.delivery.nack(new Error('downstream failed again'));
    await runTo(scheduler, 3_100);
    expect(one.emitted.map((e) => e.at)).toEqual([100, 1_100, 3_100]);
    one.emitted[2]?.delivery.ack();
    await settle();
    expect(await store.count(KEY)).toBe(0);
  });

  it('a message taken more than maxRedeliveries times fails permanently (DELAY_UNDELIVERABLE); removed once the handler settles it', async () => {
    const { scheduler, store, instance } = setup();
    const one = instance<string>(10, { maxRedeliveries: 2, retryBackoff: { initialMs: 100, maxMs: 100 } }, {
      failed: (delivery) => {
        delivery.ack(); // dead-lettered
        return undefined;
      },
    });
    one.input.next(source('a').delivery);
    await runTo(scheduler, 10);
    one.emitted[0]?.delivery.nack(new Error('no'));
    await runTo(scheduler, 110);
    one.emitted[1]?.delivery.nack(new Error('no'));
    await runTo(scheduler, 210);
    expect(one.emitted).toHaveLength(2);
    expect(one.harness.failures.map((f) => f.error)).toEqual([expect.objectContaining({ code: 'DELAY_UNDELIVERABLE', permanent: true })]);
    expect(one.harness.failures[0]?.attempt).toBe(3);
    expect(await store.count(KEY)).toBe(0);
  });
});

describe('delay with a store: a backlog, a poison message, a settlement racing a renewal', () => {
  it('a backlog in the store goes downstream at most batchSize (maxInFlight\'s default) at a time; each settlement makes room for more', async () => {
    const { scheduler, store, instance } = setup();
    for (let n = 0; n < 25; n += 1) await store.put({ key: KEY, message: { id: `m${n}`, headers: {}, body: `m${n}` }, dueAt: -1 });
    const one = instance<string>(10, { batchSize: 10 });
    await runTo(scheduler, 0);
    expect(one.emitted).toHaveLength(10); // not 25: the rest waits in the store
    for (const e of one.emitted.slice(0, 3)) e.delivery.ack();
    await runTo(scheduler, 0);
    expect(one.emitted).toHaveLength(13);
    expect(await store.count(KEY)).toBe(22);
    let acked = 3;
    while (acked < one.emitted.length) {
      const out = one.emitted.slice(acked);
      expect(out.length).toBeLessThanOrEqual(10);
      for (const e of out) e.delivery.ack();
      acked += out.length;
      await runTo(scheduler, 0);
    }
    expect(one.bodies()).toEqual(Array.from({ length: 25 }, (_, n) => `m${n}`)); // all of them, each once, in due order
    expect(await store.count(KEY)).toBe(0);
  });

  it('maxInFlight caps the deliveries out at once below batchSize', async () => {
    const scheduler = new VirtualTimeScheduler();
    const store = new InMemoryDelayedMessageStore();
    for (let n = 0; n < 8; n += 1) await store.put({ key: 'cap', message: { id: `m${n}`, headers: {}, body: n }, dueAt: -1 });
    const harness = new Harness({ scheduler });
    const step = durableDelay<number>({ store, dueAt: (_, now) => now + 10, key: 'cap', leaseMs: 30_000, pollIntervalMs: 1_000, batchSize: 10, retryBackoff: { initialMs: 100, maxMs: 100 }, maxInFlight: 3, maxRedeliveries: 5 });
    const out: Delivery<number>[] = [];
    new Subject<Delivery<number>>().pipe(harness.build(step)).subscribe((d) => out.push(d));
    await runTo(scheduler, 0);
    expect(out.map((d) => d.message.body)).toEqual([0, 1, 2]);
    out[1]?.nack(new Error('no')); // released for 100 ms: its slot goes to the next in the store
    await runTo(scheduler, 0);
    expect(out.map((d) => d.message.body)).toEqual([0, 1, 2, 3]);
    await runTo(scheduler, 5_000);
    expect(out).toHaveLength(4); // nothing settled since: still 3 out
  });

  it('a message taken more than maxRedeliveries times, rejected by the error handler (no dead-letter channel), is parked in the store: logged once, never taken again', async () => {
    const errors: { message: string; fields: Readonly<Record<string, unknown>> | undefined }[] = [];
    const log: Logger = { info: () => {}, warn: () => {}, error: (message, fields) => errors.push({ message, fields }) };
    const { scheduler, store, instance } = setup();
    const one = instance<string>(10, { maxRedeliveries: 2, retryBackoff: { initialMs: 100, maxMs: 100 } }, { log }); // the default handler rejects
    one.input.next(source('poison', { id: 'p' }).delivery);
    for (let t = 10; t <= 10_000; t += 50) {
      await runTo(scheduler, t);
      for (const e of one.emitted) e.delivery.nack(new Error('downstream fails'));
    }
    expect(one.emitted).toHaveLength(2);
    expect(one.harness.failures.map((f) => (f.error as { code?: string }).code)).toEqual(['DELAY_UNDELIVERABLE']);
    expect(one.harness.counts.get('parked')).toBe(1);
    expect(errors).toHaveLength(1);
    expect(errors[0]?.fields).toEqual(expect.objectContaining({ messageId: 'p', key: KEY, message: expect.objectContaining({ id: 'p', body: 'poison' }) }));
    expect(await store.count(KEY)).toBe(1); // kept for an operator…
    expect(await store.nextAt(KEY)).toBe(DELAY_PARKED_AT); // …available never
    const restarted = instance<string>(10, { maxRedeliveries: 2 });
    await runTo(scheduler, 20_000);
    expect(restarted.emitted).toHaveLength(0);
  });

  it('a settlement while a renewal claim is in flight: the claim\'s reply does not emit the message again', async () => {
    let hold: (() => void) | undefined;
    const { scheduler, store, instance } = setup((inner) =>
      wrap(inner, {
        claimDue: async (key, now, leaseMs, limit) => {
          const claimed = await inner.claimDue(key, now, leaseMs, limit);
          if (claimed.length > 0 && now >= 1_000) await new Promise<void>((resolve) => (hold = resolve)); // the store claimed; its reply is slow
          return claimed;
        },
      }),
    );
    const one = instance<string>(100, { leaseMs: 1_000, pollIntervalMs: 5_000 });
    one.input.next(source('a', { id: 'a' }).delivery);
    await runTo(scheduler, 1_100); // emitted at 100; its lease ends at 1 100: the renewal is under way
    expect(hold).toBeDefined();
    one.emitted[0]?.delivery.ack();
    await settle();
    hold?.();
    await runTo(scheduler, 20_000);
    expect(one.bodies()).toEqual(['a']);
    expect(await store.count(KEY)).toBe(0);
  });

  it('a rejection while a renewal claim is in flight: not emitted by the claim\'s reply, and retried after its backoff, not after the new lease', async () => {
    let hold: (() => void) | undefined;
    const { scheduler, instance } = setup((inner) =>
      wrap(inner, {
        claimDue: async (key, now, leaseMs, limit) => {
          const claimed = await inner.claimDue(key, now, leaseMs, limit);
          if (claimed.length > 0 && now === 1_100) await new Promise<void>((resolve) => (hold = resolve));
          return claimed;
        },
      }),
    );
    const one = instance<string>(100, { leaseMs: 1_000, pollIntervalMs: 5_000, retryBackoff: { initialMs: 100, maxMs: 100 } });
    one.input.next(source('a', { id: 'a' }).delivery);
    await runTo(scheduler, 1_100); // the renewal (2nd attempt) is claimed: the release of the 1st is ignored by the store
    one.emitted[0]?.delivery.nack(new Error('no'));
    await settle();
    hold?.();
    await settle();
    expect(one.emitted).toHaveLength(1);
    await runTo(scheduler, 3_000);
    expect(one.emitted.map((e) => e.at)).toEqual([100, 1_200]); // released again under the renewal's claim: 1 100 + 100
  });
});

describe('delay with a store: failures inside', () => {
  it('a store that fails to write fails the message as transient (DELAY_STORE_FAILED): its source is not acked', async () => {
    const { scheduler, store, instance } = setup((inner) => wrap(inner, { put: () => Promise.reject(new Error('connection lost')) }));
    const one = instance<string>(100);
    const a = source('a');
    one.input.next(a.delivery);
    await runTo(scheduler, 10);
    expect(one.harness.failures.map((f) => f.error)).toEqual([expect.objectContaining({ code: 'DELAY_STORE_FAILED', permanent: false })]);
    expect(a.outcome).toBe('nacked');
    expect(await store.count(KEY)).toBe(0);
  });

  it('a throwing or invalid delay function fails that message only (InvalidDelayError is permanent)', async () => {
    const { scheduler, instance } = setup();
    const one = instance<string>((m) => {
      if (m.body === 'throws') throw new Error('no header');
      return m.body === 'nan' ? Number.NaN : 10;
    });
    const inputs = [source('throws'), source('nan'), source('ok')];
    for (const input of inputs) one.input.next(input.delivery);
    await runTo(scheduler, 10);
    expect(one.harness.failures.map((f) => (f.error as Error).message)).toEqual(['no header', expect.stringContaining('NaN')]);
    expect(one.harness.failures[1]?.error).toBeInstanceOf(InvalidDelayError);
    expect(inputs.map((i) => i.outcome)).toEqual(['nacked', 'nacked', 'acked']);
    expect(one.bodies()).toEqual(['ok']);
  });

  it('a store that fails while taking due messages is polled again after pollIntervalMs; nothing is lost', async () => {
    let failing = true;
    const { scheduler, instance } = setup((inner) => wrap(inner, { claimDue: (...args) => (failing ? Promise.reject(new Error('down')) : inner.claimDue(...args)) }));
    const one = instance<string>(100, { pollIntervalMs: 1_000 });
    one.input.next(source('a').delivery);
    await runTo(scheduler, 500);
    expect(one.emitted).toHaveLength(0);
    failing = false;
    await runTo(scheduler, 1_099);
    expect(one.emitted).toHaveLength(0);
    await runTo(scheduler, 1_100); // the poll at 100 failed: the next one a poll interval later
    expect(one.emitted.map((e) => e.at)).toEqual([1_100]);
  });
});

describe('delay with a store: instances, restarts, stop', () => {
  it('resumes what the store holds when it starts: overdue at once, the rest when due', async () => {
    const { scheduler, store, instance } = setup();
    await store.put({ key: KEY, message: { id: 'old', headers: {}, body: 'overdue' }, dueAt: -50 });
    await store.put({ key: KEY, message: { id: 'later', headers: {}, body: 'later' }, dueAt: 300 });
    const restarted = instance<string>(100);
    await runTo(scheduler, 0);
    expect(restarted.bodies()).toEqual(['overdue']);
    await runTo(scheduler, 300);
    expect(restarted.emitted.map((e) => [e.at, e.delivery.message.body])).toEqual([
      [0, 'overdue'],
      [300, 'later'],
    ]);
  });

  it('two instances on one store: each message is taken by one of them; one stored by the other is found within pollIntervalMs', async () => {
    const { scheduler, instance } = setup();
    const one = instance<string>(byHeader, { pollIntervalMs: 1_000 });
    const two = instance<string>(byHeader, { pollIntervalMs: 1_000 });
    for (let n = 0; n < 20; n += 1) (n % 2 === 0 ? one : two).input.next(source(`m${n}`, { id: `m${n}`, headers: { delayMs: 100 + n } }).delivery);
    await runTo(scheduler, 2_000);
    const all = [...one.bodies(), ...two.bodies()].sort();
    expect(all).toEqual(Array.from({ length: 20 }, (_, n) => `m${n}`).sort());
    // one instance stores, the other (asleep until its next poll) takes it no later than a poll interval after it was due
    const lone = instance<string>(byHeader, { pollIntervalMs: 1_000 });
    lone.subscription.unsubscribe();
    one.subscription.unsubscribe();
    const only = instance<string>(byHeader, { pollIntervalMs: 1_000 });
    await runTo(scheduler, 2_100);
    two.input.next(source('x', { id: 'x', headers: { delayMs: 50 } }).delivery);
    await runTo(scheduler, 4_000);
    const takers = [...two.emitted, ...only.emitted].filter((e) => e.delivery.message.id === 'x');
    expect(takers).toHaveLength(1);
    expect(takers[0]?.at).toBeGreaterThanOrEqual(2_150);
    expect(takers[0]?.at).toBeLessThanOrEqual(2_150 + 1_000);
  });

  it('a delivery left unsettled by an instance that died is taken again by another once the lease ends (a duplicate, never a loss)', async () => {
    const { scheduler, store, instance } = setup();
    let dead = false;
    const crashed = (): Promise<never> => Promise.reject(new Error('the process is gone'));
    const dying = wrap(store, { claimDue: (...args) => (dead ? crashed() : store.claimDue(...args)), nextAt: (key) => (dead ? crashed() : store.nextAt(key)) });
    const one = instance<string>(100, { store: dying, leaseMs: 1_000, pollIntervalMs: 200 });
    one.input.next(source('a', { id: 'a' }).delivery);
    await runTo(scheduler, 100);
    expect(one.emitted).toHaveLength(1); // and never settled: its instance dies
    dead = true;
    const two = instance<string>(100, { leaseMs: 1_000, pollIntervalMs: 200 });
    await runTo(scheduler, 1_099);
    expect(two.emitted).toHaveLength(0);
    await runTo(scheduler, 1_300);
    expect(two.emitted.map((e) => e.delivery.message.id)).toEqual(['a']);
    expect(one.emitted).toHaveLength(1);
  });

  it('an instance still holding a delivery past leaseMs renews its claim: not emitted twice, and its settlement still counts', async () => {
    const { scheduler, store, instance } = setup();
    const one = instance<string>(100, { leaseMs: 1_000, pollIntervalMs: 200, retryBackoff: { initialMs: 100, maxMs: 100 } });
    one.input.next(source('a', { id: 'a' }).delivery);
    await runTo(scheduler, 3_500);
    expect(one.emitted).toHaveLength(1);
    one.emitted[0]?.delivery.nack(new Error('late failure')); // released under its latest claim
    await runTo(scheduler, 3_600);
    expect(one.emitted.map((e) => e.at)).toEqual([100, 3_600]); // claimed at 100, renewed at 1 100, 2 100, 3 100: the 5th attempt
    one.emitted[1]?.delivery.ack();
    await settle();
    expect(await store.count(KEY)).toBe(0);
  });

  it('when the source completes: polling stops, stored messages stay in the store, the step completes once its emitted deliveries settle', async () => {
    const { scheduler, store, instance } = setup();
    const one = instance<string>(byHeader);
    one.input.next(source('soon', { headers: { delayMs: 100 } }).delivery);
    one.input.next(source('later', { headers: { delayMs: 5_000 } }).delivery);
    await runTo(scheduler, 100);
    expect(one.bodies()).toEqual(['soon']);
    one.input.complete();
    await runTo(scheduler, 200);
    expect(one.isCompleted()).toBe(false); // 'soon' is out, unsettled
    one.emitted[0]?.delivery.ack();
    await runTo(scheduler, 300);
    expect(one.isCompleted()).toBe(true);
    await runTo(scheduler, 10_000);
    expect(one.bodies()).toEqual(['soon']); // 'later' was never taken…
    expect(await store.count(KEY)).toBe(1); // …it waits in the store for the next run
  });

  it('unsubscribed with deliveries out (the stop deadline passed): they are released in the store at once, for the next run', async () => {
    const { scheduler, store, instance } = setup();
    const one = instance<string>(100, { leaseMs: 60_000 });
    one.input.next(source('a', { id: 'a' }).delivery);
    await runTo(scheduler, 100);
    expect(one.emitted).toHaveLength(1);
    one.subscription.unsubscribe();
    await settle();
    expect(await store.nextAt(KEY)).toBe(100); // available now, not after the lease
    const next = instance<string>(100);
    await runTo(scheduler, 100);
    expect(next.bodies()).toEqual(['a']);
    one.emitted[0]?.delivery.ack(); // a late settlement of the old run still removes it
    await settle();
    expect(await store.count(KEY)).toBe(0);
  });

  it('drive(): works with the harness helpers too (source completes with nothing held → completes)', async () => {
    const { scheduler } = setup();
    const harness = new Harness({ scheduler });
    const { input, output } = drive(harness.build(delay<string>(10, { store: new InMemoryDelayedMessageStore() })));
    input.complete();
    await runTo(scheduler, 10);
    expect(output.completed).toBe(true);
  });
});
