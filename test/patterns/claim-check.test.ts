import { randomUUID } from 'node:crypto';
import { ContainerModule } from 'inversify';
import { Subject, VirtualTimeScheduler } from 'rxjs';
import { afterEach, describe, expect, expectTypeOf, it } from 'vitest';
import { claimCheckIn, claimCheckOut, ClaimNotFoundError, decodeClaim, encodeClaim, sharedMemoryClaimCheckStore, type ClaimTicket } from '../../patterns/claim-check.ts';
import { ClaimCheckStore, InvalidClaimIdError, MemoryClaimCheckStore, type ClaimPutOptions } from '../../src/stores/claim-check-store.ts';
import { isPermanentFailure, Settlement, settlementOf, silentLogger, UnencodableMessageError, type GaveUpOutcome, type Logger, type Message } from '../../src/core/index.ts';
import { createIntegration, from, type Integration } from '../../facade/index.ts';
import { TestKit } from '../../facade/testing/index.ts';
import type { RouteBuilder } from '../../facade/route-builder.ts';
import { runUntil } from '../unit/virtual-time.ts';
import { deferred, drive, Harness, settle, source } from './harness.ts';

interface Order {
  readonly orderId: number;
  readonly lines: readonly string[];
}

interface Mail {
  readonly to: string;
  readonly attachment: Uint8Array | ClaimTicket<Uint8Array>;
}

/** A store whose calls the test controls: each put/get/remove waits for the test, or fails as told. */
class ControlledStore extends MemoryClaimCheckStore {
  readonly puts: { id: string; options: ClaimPutOptions | undefined }[] = [];
  readonly removes: string[] = [];
  failPut: Error | undefined = undefined;
  failGet: Error | undefined = undefined;
  failRemove: Error | undefined = undefined;
  gate: Promise<void> | undefined = undefined;

  override async put(id: string, data: Uint8Array, options?: ClaimPutOptions): Promise<void> {
    this.puts.push({ id, options });
    await this.gate;
    if (this.failPut !== undefined) throw this.failPut;
    return super.put(id, data, options);
  }

  override async get(id: string): Promise<Uint8Array | undefined> {
    if (this.failGet !== undefined) throw this.failGet;
    return super.get(id);
  }

  override async remove(id: string): Promise<void> {
    this.removes.push(id);
    if (this.failRemove !== undefined) throw this.failRemove;
    return super.remove(id);
  }
}

function recordingLogger(): Logger & { readonly warnings: { message: string; fields: Readonly<Record<string, unknown>> | undefined }[] } {
  const warnings: { message: string; fields: Readonly<Record<string, unknown>> | undefined }[] = [];
  return { ...silentLogger, warn: (message, fields) => warnings.push({ message, fields }), warnings };
}

const order: Order = { orderId: 7, lines: ['a', 'b'] };

describe('claimCheckIn', () => {
  it('stores the body and passes on its ticket, same id and headers, the schema header dropped', async () => {
    const store = new MemoryClaimCheckStore();
    const harness = new Harness();
    const { output, send } = drive(harness.build(claimCheckIn<Order>({ store })));
    const input = source(order, { id: 'o-7', headers: { correlationId: 'c-1', schema: 'order@1' } });
    send(input);
    await settle();
    const [ticketed] = output.messages;
    expect(ticketed!.id).toBe('o-7');
    expect(ticketed!.headers).toMatchObject({ correlationId: 'c-1' });
    expect(ticketed!.headers.schema).toBeUndefined();
    expect(Object.keys(ticketed!.body)).toEqual(['claimCheck']);
    const stored = await store.get(ticketed!.body.claimCheck);
    expect(decodeClaim(ticketed!.body.claimCheck, stored!)).toEqual(order);
    expect(harness.counts.get('checkedIn')).toBe(1);
  });

  it('passes the message on only once the store write has completed', async () => {
    const store = new ControlledStore();
    const gate = deferred();
    store.gate = gate.promise;
    const { output, send } = drive(new Harness().build(claimCheckIn<Order>({ store })));
    send(source(order));
    await settle();
    expect(store.puts).toHaveLength(1);
    expect(output.deliveries).toHaveLength(0);
    gate.resolve();
    await settle();
    expect(output.deliveries).toHaveLength(1);
  });

  it('hands the ttlMs to the store', async () => {
    const store = new ControlledStore();
    const { send } = drive(new Harness().build(claimCheckIn<Order>({ store, ttlMs: 60_000 })));
    send(source(order));
    await settle();
    expect(store.puts.map((put) => put.options)).toEqual([{ ttlMs: 60_000 }]);
  });

  it('stores only the part chosen and passes on the body `replace` makes with its ticket', async () => {
    const store = new MemoryClaimCheckStore();
    const { output, send } = drive(
      new Harness().build(
        claimCheckIn<Mail, Uint8Array, Mail>({ store, part: (m) => m.body.attachment as Uint8Array, replace: (m, attachment) => ({ ...m.body, attachment }) }),
      ),
    );
    send(source<Mail>({ to: 'ann', attachment: Uint8Array.from([1, 2, 3]) }));
    await settle();
    const [body] = output.bodies;
    expect(body!.to).toBe('ann');
    const ticket = body!.attachment as ClaimTicket;
    expect(decodeClaim(ticket.claimCheck, (await store.get(ticket.claimCheck))!)).toEqual(Buffer.from([1, 2, 3]));
  });

  it('makes the claim id itself: the same message checked in again (a retry, a redelivery) writes the same claim, no leak', async () => {
    const store = new MemoryClaimCheckStore();
    const { output, send } = drive(new Harness().build(claimCheckIn<Order>({ store })));
    send(source(order, { id: 'o-7' }), source(order, { id: 'o-7' }));
    await settle();
    expect(store.size).toBe(1);
    expect(output.bodies[0]).toEqual(output.bodies[1]);
  });

  it('never lets a message overwrite another message’s claim: another id or other content is another claim', async () => {
    const store = new MemoryClaimCheckStore();
    const { output, send } = drive(new Harness().build(claimCheckIn<Order>({ store })));
    send(source(order, { id: 'o-7' }), source({ ...order, lines: ['forged'] }, { id: 'o-7' }), source(order, { id: 'o-8' }));
    await settle();
    expect(store.size).toBe(3);
    expect(new Set(output.bodies.map((body) => body.claimCheck)).size).toBe(3);
  });

  it('acks the source when the ticket is acked downstream, nacks it when it is rejected (the claim stays)', async () => {
    const store = new MemoryClaimCheckStore();
    const { output, send } = drive(new Harness().build(claimCheckIn<Order>({ store })));
    const [acked, rejected] = [source(order, { id: 'a' }), source(order, { id: 'r' })];
    send(acked, rejected);
    await settle();
    expect([acked.outcome, rejected.outcome]).toEqual(['pending', 'pending']);
    output.deliveries[0]!.ack();
    output.deliveries[1]!.nack(new Error('downstream failed'));
    expect([acked.outcome, rejected.outcome]).toEqual(['acked', 'nacked']);
    expect(store.size).toBe(2);
  });

  it('fails the message when the store write fails (retryable), and the next message still passes', async () => {
    const store = new ControlledStore();
    store.failPut = new Error('disk full');
    const harness = new Harness();
    const { output, send } = drive(harness.build(claimCheckIn<Order>({ store })));
    const failing = source(order);
    send(failing);
    await settle();
    expect(harness.failures.map((failure) => (failure.error as Error).message)).toEqual(['disk full']);
    expect(isPermanentFailure(harness.failures[0]!.error)).toBe(false);
    expect(failing.outcome).toBe('nacked');
    store.failPut = undefined;
    send(source(order, { id: 'next' }));
    await settle();
    expect(output.messages.map((m) => m.id)).toEqual(['next']);
  });

  it('retries a failed write when the error handler asks, on the step’s scheduler', async () => {
    const scheduler = new VirtualTimeScheduler();
    const store = new ControlledStore();
    store.failPut = new Error('connection reset');
    const harness = new Harness({ scheduler, failed: () => 500 });
    const { output, send } = drive(harness.build(claimCheckIn<Order>({ store })));
    send(source(order));
    await settle();
    expect(harness.failures).toHaveLength(1);
    store.failPut = undefined;
    await runUntil(scheduler, () => output.deliveries.length === 1);
    expect(scheduler.now()).toBe(500);
    expect(store.puts.map((put) => put.id)).toEqual([store.puts[0]!.id, store.puts[0]!.id]);
    expect(store.size).toBe(1);
  });

  it('sweeps expired claims every sweepEveryMs on the step’s scheduler while it runs, and stops sweeping when the step ends', async () => {
    const scheduler = new VirtualTimeScheduler();
    const store = new MemoryClaimCheckStore({ now: () => scheduler.now() });
    let sweeps = 0;
    const sweep = store.sweep.bind(store);
    store.sweep = () => {
      sweeps += 1;
      return sweep();
    };
    const harness = new Harness({ scheduler });
    const { input, send } = drive(harness.build(claimCheckIn<Order>({ store, ttlMs: 1_000, sweepEveryMs: 400 })));
    send(source(order, { id: 'a' }), source(order, { id: 'b' }));
    await settle();
    expect(store.size).toBe(2);
    scheduler.maxFrames = 800;
    scheduler.flush(); // sweeps at 400 and 800: nothing expired yet
    await settle();
    expect([sweeps, store.size]).toEqual([2, 2]);
    scheduler.maxFrames = 1_200;
    scheduler.flush();
    await settle();
    expect([sweeps, store.size, harness.counts.get('swept')]).toEqual([3, 0, 2]);
    input.complete();
    await settle();
    expect(scheduler.actions).toHaveLength(0); // no sweep left scheduled
  });

  it('logs a failed sweep and goes on sweeping', async () => {
    const scheduler = new VirtualTimeScheduler();
    const store = new MemoryClaimCheckStore();
    store.sweep = () => Promise.reject(new Error('db down'));
    const log = recordingLogger();
    const { input } = drive(new Harness({ scheduler, log }).build(claimCheckIn<Order>({ store, sweepEveryMs: 100 })));
    scheduler.maxFrames = 200;
    scheduler.flush();
    await settle();
    expect(log.warnings.map((w) => w.fields?.['error'])).toEqual(['db down', 'db down']);
    input.complete();
  });

  it('fails a body that is neither bytes nor JSON permanently, storing nothing', async () => {
    const store = new ControlledStore();
    const harness = new Harness();
    const { output, send } = drive(harness.build(claimCheckIn<unknown>({ store })));
    send(source(10n), source(undefined));
    await settle();
    expect(harness.failures.map((failure) => failure.error)).toEqual([expect.any(UnencodableMessageError), expect.any(UnencodableMessageError)]);
    expect(harness.failures.every((failure) => isPermanentFailure(failure.error))).toBe(true);
    expect(store.puts).toEqual([]);
    expect(output.deliveries).toEqual([]);
  });

  it('fails only the message whose `part` function throws', async () => {
    const store = new MemoryClaimCheckStore();
    const harness = new Harness();
    const step = claimCheckIn<number, number, string>({
      store,
      part: (m) => {
        if (m.body < 0) throw new Error('no part');
        return m.body;
      },
      replace: (_m, ticket) => ticket.claimCheck,
    });
    const { output, send } = drive(harness.build(step));
    send(source(-1), source(2));
    await settle();
    expect(harness.failures.map((failure) => (failure.error as Error).message)).toEqual(['no part']);
    expect(output.deliveries).toHaveLength(1);
  });

  it('on stop: completes only after the write in flight has passed its message on; unsubscribed, it leaves the message unsettled', async () => {
    const store = new ControlledStore();
    const gate = deferred();
    store.gate = gate.promise;
    const draining = drive(new Harness().build(claimCheckIn<Order>({ store })));
    draining.send(source(order));
    draining.input.complete();
    await settle();
    expect(draining.output.completed).toBe(false);
    gate.resolve();
    await settle();
    expect(draining.output.deliveries).toHaveLength(1);
    expect(draining.output.completed).toBe(true);

    const stopped = new ControlledStore();
    const held = deferred();
    stopped.gate = held.promise;
    const input = source(order);
    const step = new Harness().build(claimCheckIn<Order>({ store: stopped }));
    const emitted: unknown[] = [];
    const subject = new Subject<typeof input.delivery>();
    const subscription = subject.pipe(step).subscribe((delivery) => emitted.push(delivery));
    subject.next(input.delivery);
    subscription.unsubscribe();
    held.resolve();
    await settle();
    expect(emitted).toEqual([]);
    expect(input.outcome).toBe('pending'); // the transport redelivers it
  });
});

describe('claimCheckOut', () => {
  async function checkedIn(store: ClaimCheckStore, body: Order = order, ttlMs?: number): Promise<Message<ClaimTicket<Order>>> {
    const { output, send } = drive(new Harness().build(claimCheckIn<Order>({ store, ...(ttlMs === undefined ? {} : { ttlMs }) })));
    send(source(body, { id: 'o-7' }));
    await settle();
    return output.messages[0]!;
  }

  it('restores the stored body, typed back, keeping the message’s id and headers', async () => {
    const store = new MemoryClaimCheckStore();
    const ticketed = await checkedIn(store);
    const harness = new Harness();
    const { output, send } = drive(harness.build(claimCheckOut<ClaimTicket<Order>>({ store })));
    send(source(ticketed.body, { id: ticketed.id, headers: { correlationId: 'c-1' } }));
    await settle();
    expect(output.messages.map((m) => [m.id, m.body, m.headers.correlationId])).toEqual([['o-7', order, 'c-1']]);
    expectTypeOf(output.bodies).toEqualTypeOf<Order[]>();
    expect(harness.counts.get('checkedOut')).toBe(1);
  });

  it('tells the source how the restored message ended after it (filtered, dead-lettered), then removes the claim', async () => {
    /** A source delivery that records what it is told, as the runtime's execution does. */
    class Told extends Settlement<ClaimTicket<Order>> {
      readonly told: string[] = [];
      override noteOutcome(outcome: GaveUpOutcome, reason?: string): void {
        this.told.push(`${outcome}:${reason ?? ''}`);
      }
      protected onAck(): void {
        this.told.push('acked');
      }
      protected onNack(reason: Error): void {
        this.told.push(`nacked:${reason.message}`);
      }
    }
    const store = new MemoryClaimCheckStore();
    const ticketed = await checkedIn(store);
    const { output, input } = drive(new Harness().build(claimCheckOut<ClaimTicket<Order>>({ store })));
    const told = new Told(ticketed);
    input.next(told);
    await settle();
    const restored = output.deliveries[0]!;
    expect(restored.origin).toBe(ticketed);
    settlementOf(restored)?.noteOutcome('dead-lettered', 'boom'); // as the runtime's markOutcome after the check-out
    restored.ack();
    await settle();
    expect(told.told).toEqual(['dead-lettered:boom', 'acked']);
    expect(await store.get(ticketed.body.claimCheck)).toBeUndefined(); // removed once settled
  });

  it('restores a part with `ticket` and `restore`; bytes come back as bytes', async () => {
    const store = new MemoryClaimCheckStore();
    const { output: tickets, send: checkIn } = drive(
      new Harness().build(claimCheckIn<Mail, Uint8Array, Mail>({ store, part: (m) => m.body.attachment as Uint8Array, replace: (m, attachment) => ({ ...m.body, attachment }) })),
    );
    checkIn(source<Mail>({ to: 'ann', attachment: Uint8Array.from([0, 255]) }));
    await settle();
    const { output, send } = drive(
      new Harness().build(
        claimCheckOut<Mail, Uint8Array, { to: string; attachment: Uint8Array }>({ store, ticket: (m) => m.body.attachment as ClaimTicket<Uint8Array>, restore: (m, attachment) => ({ to: m.body.to, attachment }) }),
      ),
    );
    send(source(tickets.bodies[0]!));
    await settle();
    expect(output.bodies).toEqual([{ to: 'ann', attachment: Buffer.from([0, 255]) }]);
  });

  it('removes the claim only after the message was acked downstream, and acks the source first', async () => {
    const store = new ControlledStore();
    const ticketed = await checkedIn(store);
    const { output, send } = drive(new Harness().build(claimCheckOut<ClaimTicket<Order>>({ store })));
    const input = source(ticketed.body);
    send(input);
    await settle();
    expect(store.removes).toEqual([]);
    output.deliveries[0]!.ack();
    expect(input.outcome).toBe('acked');
    await settle();
    expect(store.removes).toEqual([ticketed.body.claimCheck]);
    expect(await store.get(ticketed.body.claimCheck)).toBeUndefined();
  });

  it('keeps the claim when the message is rejected downstream, so its redelivery checks out again', async () => {
    const store = new MemoryClaimCheckStore();
    const ticketed = await checkedIn(store);
    const { output, send } = drive(new Harness().build(claimCheckOut<ClaimTicket<Order>>({ store })));
    const first = source(ticketed.body);
    send(first);
    await settle();
    output.deliveries[0]!.nack(new Error('billing down'));
    expect(first.outcome).toBe('nacked');
    send(source(ticketed.body));
    await settle();
    expect(output.bodies).toEqual([order, order]);
  });

  it('with remove: false keeps the claim for further check-outs', async () => {
    const store = new ControlledStore();
    const ticketed = await checkedIn(store);
    const { output, send } = drive(new Harness().build(claimCheckOut<ClaimTicket<Order>>({ store, remove: false })));
    send(source(ticketed.body), source(ticketed.body));
    await settle();
    output.ackAll();
    await settle();
    expect(output.bodies).toEqual([order, order]);
    expect(store.removes).toEqual([]);
  });

  it('fails a missing, already checked out or expired claim with ClaimNotFoundError (permanent)', async () => {
    const scheduler = new VirtualTimeScheduler();
    const store = new MemoryClaimCheckStore({ now: () => scheduler.now() });
    const expiring = await checkedIn(store, { ...order, orderId: 8 }, 1_000);
    const harness = new Harness({ scheduler });
    const { output, send } = drive(harness.build(claimCheckOut<ClaimTicket<Order>>({ store })));
    send(source(expiring.body));
    await settle();
    expect(output.deliveries).toHaveLength(1); // before its ttl
    scheduler.schedule(() => undefined, 1_000);
    scheduler.flush();
    const [late, never] = [source(expiring.body), source({ claimCheck: randomUUID() })];
    send(late, never);
    await settle();
    expect(harness.failures.map((failure) => failure.error)).toEqual([expect.any(ClaimNotFoundError), expect.any(ClaimNotFoundError)]);
    expect(harness.failures.every((failure) => isPermanentFailure(failure.error))).toBe(true);
    expect([late.outcome, never.outcome]).toEqual(['nacked', 'nacked']);
  });

  it('refuses a ticket it did not make (no claimCheck, a path, another shape) with InvalidClaimIdError, asking no store', async () => {
    const store = new ControlledStore();
    const get = store.get.bind(store);
    let gets = 0;
    store.get = (id) => {
      gets += 1;
      return get(id);
    };
    const harness = new Harness();
    const { send } = drive(harness.build(claimCheckOut<unknown, unknown>({ store })));
    send(source({}), source({ claimCheck: '../../etc/passwd' }), source(null), source('text'));
    await settle();
    expect(harness.failures.map((failure) => failure.error)).toEqual(Array.from({ length: 4 }, () => expect.any(InvalidClaimIdError)));
    expect(harness.failures.every((failure) => isPermanentFailure(failure.error))).toBe(true);
    expect(gets).toBe(0);
  });

  it('fails the message (retryable) when the store read fails, leaving the claim in place', async () => {
    const store = new ControlledStore();
    const ticketed = await checkedIn(store);
    store.failGet = new Error('redis down');
    const harness = new Harness();
    const { send } = drive(harness.build(claimCheckOut<ClaimTicket<Order>>({ store })));
    const input = source(ticketed.body);
    send(input);
    await settle();
    expect(isPermanentFailure(harness.failures[0]!.error)).toBe(false);
    expect(input.outcome).toBe('nacked');
    expect(store.removes).toEqual([]);
    store.failGet = undefined;
    expect(await store.get(ticketed.body.claimCheck)).toBeDefined();
  });

  it('fails the message when `restore` throws, leaving the claim in place', async () => {
    const store = new ControlledStore();
    const ticketed = await checkedIn(store);
    const harness = new Harness();
    const step = claimCheckOut<ClaimTicket<Order>, Order, never>({
      store,
      ticket: (m) => m.body,
      restore: () => {
        throw new Error('bad restore');
      },
    });
    const { send } = drive(harness.build(step));
    send(source(ticketed.body));
    await settle();
    expect(harness.failures.map((failure) => (failure.error as Error).message)).toEqual(['bad restore']);
    expect(store.removes).toEqual([]);
  });

  it('logs a removal that fails after the ack; the source stays acked and the claim waits for its ttl', async () => {
    const store = new ControlledStore();
    const ticketed = await checkedIn(store);
    store.failRemove = new Error('connection lost');
    const log = recordingLogger();
    const { output, send } = drive(new Harness({ log }).build(claimCheckOut<ClaimTicket<Order>>({ store })));
    const input = source(ticketed.body);
    send(input);
    await settle();
    output.ackAll();
    await settle();
    expect(input.outcome).toBe('acked');
    expect(log.warnings).toHaveLength(1);
    expect(log.warnings[0]!.fields).toMatchObject({ claimId: ticketed.body.claimCheck, error: 'connection lost' });
  });

  it('on stop: completes once the read in flight has passed its message on', async () => {
    const store = new MemoryClaimCheckStore();
    const ticketed = await checkedIn(store);
    const { input, output, send } = drive(new Harness().build(claimCheckOut<ClaimTicket<Order>>({ store })));
    send(source(ticketed.body));
    input.complete();
    expect(output.completed).toBe(false);
    await settle();
    expect(output.bodies).toEqual([order]);
    expect(output.completed).toBe(true);
  });
});

describe('claim check codec', () => {
  it('round-trips JSON values and bytes, and refuses damaged data permanently', () => {
    for (const value of [order, 'text', 0, null, [1, 'x'], { nested: { deep: true } }]) expect(decodeClaim('c', encodeClaim(value))).toEqual(value);
    expect(decodeClaim('c', encodeClaim(Buffer.from('raw')))).toEqual(Buffer.from('raw'));
    expect(() => decodeClaim('c', Uint8Array.from([7, 1]))).toThrow(expect.objectContaining({ code: 'CLAIM_UNDECODABLE', permanent: true }));
    expect(() => decodeClaim('c', Uint8Array.from([0, 123]))).toThrow(expect.objectContaining({ code: 'CLAIM_UNDECODABLE' }));
  });
});

describe('claim check through the runtime', () => {
  let app: Integration | undefined;
  let kit: TestKit | undefined;
  afterEach(async () => {
    kit?.close();
    await app?.stop({ drainTimeoutMs: 200 });
    app = undefined;
  });

  it('types the ticket and the restored body in the DSL', () => {
    const checkIn = from<Order>('memory:hC-types').claimCheckIn();
    expectTypeOf(checkIn).toEqualTypeOf<RouteBuilder<ClaimTicket<Order>>>();
    expectTypeOf(checkIn.claimCheckOut()).toEqualTypeOf<RouteBuilder<Order>>();
    expectTypeOf(from<unknown>('memory:hC-types').claimCheckOut<Order>()).toEqualTypeOf<RouteBuilder<Order>>();
    const part = from<{ to: string; attachment: Uint8Array }>('memory:hC-types').claimCheckIn({ part: (m) => m.body.attachment, replace: (m, attachment) => ({ to: m.body.to, attachment }) });
    expectTypeOf(part).toEqualTypeOf<RouteBuilder<{ to: string; attachment: ClaimTicket<Uint8Array> }>>();
    const restored = part.claimCheckOut({ ticket: (m) => m.body.attachment, restore: (m, attachment) => ({ to: m.body.to, attachment }) });
    expectTypeOf(restored).toEqualTypeOf<RouteBuilder<{ to: string; attachment: Uint8Array }>>();
  });

  it('carries a body from one route to another through the store bound in the container, the ticket on the wire, the claim removed after', async () => {
    const store = new MemoryClaimCheckStore();
    app = createIntegration({
      logger: silentLogger,
      modules: [new ContainerModule(({ bind }) => void bind(ClaimCheckStore).toConstantValue(store))],
      routes: [
        from<Order>('memory:hC-in', { id: 'hC-checkin' }).claimCheckIn({ id: 'park' }).to('memory:hC-tickets'),
        from<unknown>('memory:hC-tickets', { id: 'hC-checkout' }).claimCheckOut<Order>().to('memory:hC-out'),
      ],
    });
    await app.start();
    kit = new TestKit(app);
    const tickets = kit.mock<ClaimTicket<Order>>('memory:hC-tickets');
    const out = kit.mock<Order>('memory:hC-out');
    await kit.sendAll('memory:hC-in', [order]);
    const [restored] = await out.expect(1);
    expect(restored!.body).toEqual(order);
    expect(Object.keys(tickets.bodies()[0]!)).toEqual(['claimCheck']);
    await expect.poll(() => store.size).toBe(0);
    expect(app.metrics()['hC-checkout']).toMatchObject({ completed: 1, failed: 0 });
  });

  it('falls back to the process’s shared in-memory store when none is given nor bound', async () => {
    app = createIntegration({
      logger: silentLogger,
      routes: [from<Order>('memory:hC-shared-in').claimCheckIn().claimCheckOut({ remove: false }).to('memory:hC-shared-out')],
    });
    await app.start();
    kit = new TestKit(app);
    const out = kit.mock<Order>('memory:hC-shared-out');
    const before = sharedMemoryClaimCheckStore().size;
    await kit.sendAll('memory:hC-shared-in', [order]);
    await out.expect(1);
    expect(sharedMemoryClaimCheckStore().size).toBe(before + 1);
  });

  it('dead-letters a check-out of an unknown claim at once, never retried, while other messages pass', async () => {
    const scheduler = new VirtualTimeScheduler();
    const store = new MemoryClaimCheckStore();
    app = createIntegration({
      logger: silentLogger,
      scheduler,
      routes: [
        from<unknown>('memory:hC-dl-in', { id: 'hC-dl' })
          .claimCheckOut<Order>({ store })
          .to('memory:hC-dl-out')
          .onError(() => ({ action: 'retry', delayMs: 100 }), { maxAttempts: 5, deadLetterUri: 'memory:hC-dl-dead' }),
      ],
    });
    await app.start();
    kit = new TestKit(app);
    const dead = kit.mock('memory:hC-dl-dead');
    await kit.sendAll('memory:hC-dl-in', [{ claimCheck: randomUUID() }]);
    await runUntil(scheduler, () => dead.received.length === 1);
    expect(dead.received[0]!.headers).toMatchObject({ 'x-interchange-error-code': 'CLAIM_NOT_FOUND', 'x-interchange-attempts': 1 });
    expect(app.metrics()['hC-dl']).toMatchObject({ retried: 0, deadLettered: 1 });
  });
});
