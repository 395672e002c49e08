import { Container } from 'inversify';
import { resolve } from 'node:path';
import { VirtualTimeScheduler } from 'rxjs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BufferBusyError, BufferTransport, bufferModule, environment, type BufferTransportStatus } from '../../adapters/buffer/index.ts';
import { EndpointError, InvalidOptionsError, Logger, silentLogger, Transport, type Delivery } from '../../src/core/index.ts';
import { BufferFixture, consume, endpoint, eventually, numbered, settle } from './buffer-support.ts';

const fixture = new BufferFixture();
beforeEach(() => fixture.setUp());
afterEach(() => fixture.cleanup());

describe('buffer transport', () => {
  it('a nacked entry comes back after its backoff (virtual time), attempt + 1, before any newer entry', async () => {
    const scheduler = new VirtualTimeScheduler();
    const advanceTo = (frame: number): void => {
      scheduler.maxFrames = frame;
      scheduler.flush();
    };
    const transport = await fixture.transport({ scheduler, redelivery: { initialMs: 60, maxMs: 1_000, jitter: 0 } });
    const to = endpoint('nack');
    await transport.publish(to, numbered(4));
    const probe = consume(transport.consume(to, { prefetch: 1 }), (delivery: Delivery) => {
      if (delivery.message.id === 'm-1' && (delivery.message.headers.attempt ?? 1) < 3) delivery.nack(new Error('destination down'));
      else delivery.ack();
    });
    await probe.received(2);
    await settle();
    expect(probe.ids()).toEqual(['m-0', 'm-1']); // nothing newer overtakes the nacked entry while it waits

    advanceTo(59);
    await settle(20);
    expect(probe.count).toBe(2);
    advanceTo(60); // first backoff: 60 ms
    await probe.received(3);
    expect(probe.deliveries[2]?.message).toMatchObject({ id: 'm-1', headers: { attempt: 2 } });

    advanceTo(60 + 119);
    await settle(20);
    expect(probe.count).toBe(3);
    advanceTo(60 + 120); // second backoff: doubled
    await probe.received(6);
    await settle();
    expect(probe.ids()).toEqual(['m-0', 'm-1', 'm-1', 'm-1', 'm-2', 'm-3']);
    expect(probe.deliveries.map((delivery) => delivery.message.headers.attempt ?? 1)).toEqual([1, 1, 2, 3, 1, 1]);
    advanceTo(10_000); // the cursor timer
    await eventually(() => transport.stats()[0]?.entries === 0, 'every entry acked');
  });

  it('never dead-letters on its own: a permanent failure is redelivered too (the route decides)', async () => {
    const transport = await fixture.transport({ redelivery: { initialMs: 1, maxMs: 2 } });
    const to = endpoint('permanent');
    await transport.publish(to, numbered(1));
    const probe = consume(transport.consume(to), (delivery) => {
      if ((delivery.message.headers.attempt ?? 1) < 8) delivery.nack(new InvalidOptionsError('bad'));
      else delivery.ack();
    });
    await probe.received(8);
    expect(transport.stats()[0]).toMatchObject({ entries: 0 });
  });

  it('one consumer per buffer: a second concurrent consume errors with BufferBusyError; after unsubscribe it works', async () => {
    const transport = await fixture.transport();
    const to = endpoint('busy');
    await transport.publish(to, numbered(3));
    const first = consume(transport.consume(to), 'hold');
    await first.received(3);
    const second = consume(transport.consume(to));
    await eventually(() => second.error !== undefined, 'the second consumer to fail');
    expect(second.error).toBeInstanceOf(BufferBusyError);
    expect(String((second.error as Error).message)).toContain("buffer 'busy'");
    first.unsubscribe();
    const third = consume(transport.consume(to));
    await third.received(3);
    expect(third.deliveries.map((delivery) => delivery.message.headers.attempt)).toEqual([2, 2, 2]);
  });

  it('refuses bad names, unknown options and conflicting limits with EndpointError; bad transport options with InvalidOptionsError', async () => {
    const transport = await fixture.transport();
    await expect(transport.publish(endpoint('..'), numbered(1))).rejects.toBeInstanceOf(EndpointError);
    await expect(transport.publish(endpoint('a'.repeat(101)), numbered(1))).rejects.toBeInstanceOf(EndpointError);
    await expect(transport.publish(endpoint('ok', '?maxEntires=5'), numbered(1))).rejects.toThrow(/unknown option 'maxEntires' \(did you mean 'maxEntries'\?\)/);
    await expect(transport.publish(endpoint('ok', '?maxEntries=0'), numbered(1))).rejects.toThrow(/maxEntries must be a positive integer/);
    await transport.publish(endpoint('limited', '?maxEntries=5'), numbered(1));
    await expect(transport.publish(endpoint('limited', '?maxEntries=6'), numbered(1))).rejects.toThrow(/maxEntries=6.*maxEntries=5/);
    expect(transport.stats().find((stats) => stats.name === 'limited')?.capacityEntries).toBe(5);
    expect(() => new BufferTransport({ directory: '' })).toThrow(InvalidOptionsError);
    expect(() => new BufferTransport({ directory: 'x', maxEntries: 0 })).toThrow(/maxEntries must be >= 1/);
    expect(() => new BufferTransport({ directory: 'x', segmentSize: 5 } as never)).toThrow(/unknown option 'segmentSize'/);
  });

  it('stats and status$ report each buffer depth, and the state', async () => {
    const transport = await fixture.transport();
    const statuses: BufferTransportStatus[] = [];
    const subscription = transport.status$.subscribe((status) => statuses.push(status));
    const to = endpoint('depth');
    await transport.publish(to, numbered(5));
    const probe = consume(transport.consume(to, { prefetch: 2 }), 'hold');
    await probe.received(2);
    probe.deliveries[0]?.ack();
    await eventually(() => statuses.at(-1)?.buffers[0]?.forwarded === 1, 'a status with the ack');
    expect(transport.stats()).toEqual([{ name: 'depth', entries: 4, bytes: expect.any(Number), capacityEntries: 1_000_000, capacityBytes: 1024 ** 3, full: false, unsettled: 2, written: 5, forwarded: 1 }]);
    expect(statuses.at(-1)).toMatchObject({ state: 'open', directory: fixture.directory, buffers: [{ name: 'depth', entries: 4, unsettled: 2 }] });
    probe.unsubscribe();
    await transport.close();
    expect(statuses.at(-1)).toMatchObject({ state: 'closed', buffers: [{ name: 'depth', entries: 4 }] });
    subscription.unsubscribe();
  });

  it('close is idempotent, refuses later publishes, and connect opens the buffers again', async () => {
    const transport = await fixture.transport();
    const to = endpoint('reopen');
    await transport.publish(to, numbered(2));
    await Promise.all([transport.close(), transport.close()]);
    await expect(transport.publish(to, numbered(1, 'late'))).rejects.toMatchObject({ name: 'NotConnectedError' });
    await transport.connect();
    const probe = consume(transport.consume(to));
    await probe.received(2);
    expect(probe.ids()).toEqual(['m-0', 'm-1']);
  });

  it('bufferModule binds it as a Transport with the container logger; the environment binds it only for buffer: routes', async () => {
    const container = new Container();
    container.bind(Logger).toConstantValue(silentLogger);
    await container.load(bufferModule({ directory: fixture.directory }));
    const transports = container.getAll<Transport>(Transport);
    expect(transports).toHaveLength(1);
    expect(transports[0]).toBeInstanceOf(BufferTransport);
    expect(() => bufferModule({ directory: fixture.directory, maxBytes: -1 })).toThrow(InvalidOptionsError);

    const unbound = { isBound: () => false };
    expect(await environment.bind?.({ env: {}, schemes: new Set(['mqtt', 'amqp']), ...unbound })).toBeUndefined();
    expect(await environment.bind?.({ env: {}, schemes: new Set(['buffer']), isBound: () => true })).toBeUndefined();
    const byDefault = await environment.bind?.({ env: {}, schemes: new Set(['buffer']), ...unbound });
    expect(byDefault?.announcement).toContain(resolve('./.interchange/buffer'));
    const moved = await environment.bind?.({ env: { BUFFER_DIR: fixture.directory }, schemes: new Set(['buffer']), ...unbound });
    expect(moved?.announcement).toContain(fixture.directory);
    expect(moved?.announcement).toContain('BUFFER_DIR');
  });
});
