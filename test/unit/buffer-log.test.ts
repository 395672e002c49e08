import { spawnSync } from 'node:child_process';
import { appendFile, open, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { BufferLockedError } from '../../adapters/buffer/index.ts';
import { createMessage, type Message } from '../../src/core/index.ts';
import { track } from '../../facade/testing/contract-probe.ts';
import { BufferFixture, consume, endpoint, eventually, numbered, settle } from './buffer-support.ts';

const fixture = new BufferFixture();
beforeEach(() => fixture.setUp());
afterEach(() => fixture.cleanup());

const segmentsOf = async (name: string): Promise<string[]> => (await readdir(join(fixture.directory, name))).filter((file) => file.endsWith('.log')).sort();

describe('buffer: durable log', () => {
  it('round-trips id, headers and every kind of body exactly (a Buffer comes back a Buffer)', async () => {
    const transport = await fixture.transport();
    const to = endpoint('kinds');
    const sent: Message[] = [
      createMessage(Buffer.from([0, 1, 2, 255, 10, 13]), { id: 'raw', headers: { contentType: 'application/octet-stream', 'x-count': 3, 'x-flag': false } }),
      createMessage(new Uint8Array([9, 8, 7]), { id: 'u8' }),
      createMessage('plain text ✓ ünï', { id: 'text', headers: { 'x-ratio': -2.5 } }),
      createMessage({ order: 42, lines: [{ sku: 'A', qty: 1 }], nothing: null }, { id: 'json' }),
      createMessage(undefined, { id: 'none' }),
      createMessage(7, { id: 'number', headers: { attempt: 3 } }),
    ];
    await transport.publish(to, sent);
    const probe = consume(transport.consume(to));
    await probe.received(sent.length);

    const got = probe.deliveries.map((delivery) => delivery.message);
    expect(got.map((message) => message.id)).toEqual(sent.map((message) => message.id));
    const [raw, u8, text, json, none, number] = got as [Message, Message, Message, Message, Message, Message];
    expect(Buffer.isBuffer(raw.body)).toBe(true);
    expect(raw.body).toEqual(Buffer.from([0, 1, 2, 255, 10, 13]));
    expect(raw.headers).toEqual(sent[0]?.headers);
    expect(u8.body).toBeInstanceOf(Uint8Array);
    expect(Buffer.isBuffer(u8.body)).toBe(false);
    expect([...(u8.body as Uint8Array)]).toEqual([9, 8, 7]);
    expect(text.body).toBe('plain text ✓ ünï');
    expect(text.headers['x-ratio']).toBe(-2.5);
    expect(json.body).toEqual({ order: 42, lines: [{ sku: 'A', qty: 1 }], nothing: null });
    expect(none.body).toBeUndefined();
    // `attempt` counts deliveries from this buffer: it starts afresh
    expect(number.body).toBe(7);
    expect(number.headers.attempt ?? 1).toBe(1);
  });

  it('a message that cannot be stored fails alone; the others of the publish are stored', async () => {
    const transport = await fixture.transport();
    const to = endpoint('unencodable');
    const bad = { id: 'bad', headers: { 'x-nested': { no: 1 } as never }, body: 1 } as Message;
    await expect(transport.publish(to, [createMessage(1, { id: 'a' }), bad, createMessage(2, { id: 'b' })])).rejects.toMatchObject({ name: 'PartialPublishError', failures: new Map([[1, expect.objectContaining({ name: 'BufferUnencodableError', permanent: true })]]) });
    const probe = consume(transport.consume(to));
    await probe.received(2);
    expect(probe.ids()).toEqual(['a', 'b']);
  });

  it('group commit: concurrent publishes share writes and fsyncs instead of one each', async () => {
    const transport = await fixture.transport();
    const to = endpoint('group');
    await transport.publish(to, numbered(1, 'warm')); // the buffer is open and its segment exists
    const probe = await open(join(fixture.directory, 'group', 'lock'), 'r');
    const prototype = Object.getPrototypeOf(probe) as { datasync: () => Promise<void> };
    await probe.close();
    const datasync = vi.spyOn(prototype, 'datasync');
    try {
      await Promise.all(Array.from({ length: 50 }, (_, index) => transport.publish(to, numbered(2, `p${index}`))));
      expect(datasync.mock.calls.length).toBeGreaterThan(0);
      expect(datasync.mock.calls.length).toBeLessThanOrEqual(5);
    } finally {
      datasync.mockRestore();
    }
    expect(transport.stats()[0]).toMatchObject({ name: 'group', entries: 101, written: 101 });
  });

  it('rotates segments at segmentBytes and still delivers everything in order', async () => {
    const transport = await fixture.transport({ segmentBytes: 1024 });
    const to = endpoint('rotate');
    const sent = numbered(60);
    for (let index = 0; index < 60; index += 10) await transport.publish(to, sent.slice(index, index + 10));
    expect((await segmentsOf('rotate')).length).toBeGreaterThan(3);
    for (const file of await segmentsOf('rotate')) expect((await stat(join(fixture.directory, 'rotate', file))).size).toBeLessThanOrEqual(1024);

    const probe = consume(transport.consume(to, { prefetch: 7 }));
    await probe.received(60);
    expect(probe.ids()).toEqual(sent.map((message) => message.id));
  });

  it('deletes the segments wholly below the persisted cursor once their entries are acked', async () => {
    const transport = await fixture.transport({ segmentBytes: 1024 });
    const to = endpoint('delete');
    await transport.publish(to, numbered(60));
    const before = await segmentsOf('delete');
    expect(before.length).toBeGreaterThan(3);

    const probe = consume(transport.consume(to, { prefetch: 10 }), 'hold');
    await probe.received(10);
    await settle();
    expect(await segmentsOf('delete')).toEqual(before); // nothing acked, nothing deleted
    await eventually(() => {
      for (const delivery of probe.unsettled()) delivery.ack();
      return probe.count === 60 && probe.unsettled().length === 0;
    }, 'every entry delivered and acked');
    await eventually(async () => (await segmentsOf('delete')).length === 1, 'only the last segment (being appended to) to remain');
    const cursor = async (): Promise<number> => (JSON.parse(await readFile(join(fixture.directory, 'delete', 'cursor'), 'utf8')) as { seq: number }).seq;
    await eventually(async () => (await cursor()) === 60, 'the cursor past the last entry');
    expect(transport.stats()[0]).toMatchObject({ entries: 0, bytes: 0, forwarded: 60 });
  });

  it('reopening resumes at the persisted cursor: acked entries are gone, the others come in order', async () => {
    const first = await fixture.transport();
    const to = endpoint('resume');
    const sent = numbered(10);
    await first.publish(to, sent);
    const probe = consume(first.consume(to, { prefetch: 4 }), 'hold');
    await probe.received(4);
    for (const delivery of [...probe.deliveries]) delivery.ack();
    await settle(30);
    probe.unsubscribe();
    await first.close();

    const second = await fixture.transport();
    const again = consume(second.consume(to));
    await again.received(6);
    await settle();
    expect(again.ids()).toEqual(sent.slice(4).map((message) => message.id));
    expect(fixture.logger.at('info').some((line) => line.includes("buffer 'resume' resumes with 6 entries"))).toBe(true);
  });

  it('truncates a torn record at the tail of the last segment (INFO) and goes on', async () => {
    const first = await fixture.transport();
    const to = endpoint('torn');
    await first.publish(to, numbered(5));
    await first.close();
    const [segment] = await segmentsOf('torn');
    const path = join(fixture.directory, 'torn', segment as string);
    const size = (await stat(path)).size;
    const torn = Buffer.alloc(30, 7);
    torn.writeUInt32LE(500, 0); // a header saying 500 bytes follow: the crash cut them
    await appendFile(path, torn);

    const second = await fixture.transport();
    await second.publish(to, numbered(2, 'm', 5));
    expect((await stat(path)).size).toBe(size);
    const probe = consume(second.consume(to));
    await probe.received(7);
    await settle();
    expect(probe.ids()).toEqual(numbered(7).map((message) => message.id));
    expect(fixture.logger.at('info').some((line) => line.includes('torn record'))).toBe(true);
    expect(fixture.logger.at('error')).toEqual([]);
  });

  it('quarantines a corrupt record (ERROR, <segment>.corrupt-1) and goes on with the next segment', async () => {
    const first = await fixture.transport({ segmentBytes: 512 });
    const to = endpoint('corrupt');
    const sent = numbered(30);
    await first.publish(to, sent);
    await first.close();
    const segments = await segmentsOf('corrupt');
    expect(segments.length).toBeGreaterThan(2);
    const path = join(fixture.directory, 'corrupt', segments[0] as string);
    const bytes = await readFile(path);
    const firstRecord = 16 + bytes.readUInt32LE(0);
    bytes[firstRecord + 20] = (bytes[firstRecord + 20] as number) ^ 0xff; // a bit flipped in the second record's payload
    await writeFile(path, bytes);

    const second = await fixture.transport({ segmentBytes: 512 });
    const probe = consume(second.consume(to));
    // the first record, then everything from the second segment on
    const second0 = Number((segments[1] as string).slice(0, 20));
    const expected = [sent[0], ...sent.slice(second0)].map((message) => (message as Message).id);
    await probe.received(expected.length);
    await settle();
    expect(probe.ids()).toEqual(expected);
    const errors = fixture.logger.at('error');
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(/CORRUPT segment .*checksum mismatch/);
    const files = await readdir(join(fixture.directory, 'corrupt'));
    expect(files).toContain(`${segments[0]}.corrupt-1`);
    expect((await stat(join(fixture.directory, 'corrupt', `${segments[0]}.corrupt-1`))).size).toBe(bytes.length - firstRecord);
  });

  it('a record found corrupt while reading (bytes changed on disk after the write) is quarantined and skipped, the rest delivered', async () => {
    const transport = await fixture.transport({ segmentBytes: 512 });
    const to = endpoint('rot');
    const sent = numbered(30);
    await transport.publish(to, sent);
    const segments = await segmentsOf('rot');
    const path = join(fixture.directory, 'rot', segments[0] as string);
    const bytes = await readFile(path);
    bytes[30] = (bytes[30] as number) ^ 0xff; // the first record's payload
    await writeFile(path, bytes);

    const probe = consume(transport.consume(to));
    const second0 = Number((segments[1] as string).slice(0, 20));
    await probe.received(30 - second0);
    await settle();
    expect(probe.ids()).toEqual(sent.slice(second0).map((message) => message.id));
    expect(fixture.logger.at('error')).toEqual([expect.stringMatching(/CORRUPT record .*checksum mismatch.*NOT delivered/)]);
    expect(await readdir(join(fixture.directory, 'rot'))).toContain(`${segments[0]}.corrupt-1`);
    await eventually(() => transport.stats()[0]?.entries === 0, 'the skipped entries no longer counted');
  });

  it('when full, publish waits (one WARN) and proceeds once acks free room (INFO); nothing dropped', async () => {
    const transport = await fixture.transport({ maxEntries: 3 });
    const to = endpoint('full');
    const sent = numbered(8);
    const published = track(transport.publish(to, sent));
    await eventually(() => transport.stats()[0]?.full === true, 'the buffer to be full');
    await settle();
    expect(published.state).toBe('pending');
    expect(transport.stats()[0]).toMatchObject({ entries: 3, capacityEntries: 3, full: true });
    const warnings = fixture.logger.at('warn');
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/buffer 'full' is FULL \(3 of 3 entries, \d+ of \d+ bytes\): its source is HELD/);

    const probe = consume(transport.consume(to, { prefetch: 1 }));
    await probe.received(8);
    await eventually(() => published.state === 'resolved', 'the publish to resolve');
    expect(probe.ids()).toEqual(sent.map((message) => message.id));
    expect(fixture.logger.at('warn')).toHaveLength(1);
    expect(fixture.logger.at('info').some((line) => line.includes("buffer 'full' has room again"))).toBe(true);
  });

  it('maxBytes bounds too, per endpoint; a record larger than maxBytes is refused, not waited for', async () => {
    const transport = await fixture.transport();
    const to = endpoint('bytes', '?maxBytes=400');
    const published = track(transport.publish(to, numbered(10)));
    await eventually(() => transport.stats()[0]?.full === true, 'the buffer to be full');
    expect(transport.stats()[0]?.bytes).toBeLessThanOrEqual(400);
    expect(published.state).toBe('pending');
    await expect(transport.publish(to, [createMessage('x'.repeat(500), { id: 'huge' })])).rejects.toMatchObject({ name: 'PartialPublishError' });
    const probe = consume(transport.consume(to));
    await probe.received(10);
    await eventually(() => published.state === 'resolved', 'the publish to resolve');
  });

  it('locks its directory: a second transport gets BufferLockedError naming the holder pid; a stale lock is taken over', async () => {
    const first = await fixture.transport();
    const to = endpoint('locked');
    await first.publish(to, numbered(1));
    const second = await fixture.transport();
    const refused = await second.publish(to, numbered(1, 'x')).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(BufferLockedError);
    expect(refused).toMatchObject({ holderPid: process.pid, directory: join(fixture.directory, 'locked') });
    expect(String((refused as Error).message)).toContain(`process ${process.pid}`);
    await first.close();

    // a lock left by a process that died
    const dead = spawnSync(process.execPath, ['-e', '']).pid as number;
    await writeFile(join(fixture.directory, 'locked', 'lock'), `${dead}\n`);
    const third = await fixture.transport();
    await third.publish(to, numbered(1, 'y'));
    expect(fixture.logger.at('info').some((line) => line.includes(`stale lock of process ${dead}`))).toBe(true);
    expect((await readFile(join(fixture.directory, 'locked', 'lock'), 'utf8')).trim()).toBe(String(process.pid));
    await third.close();
    await expect(stat(join(fixture.directory, 'locked', 'lock'))).rejects.toMatchObject({ code: 'ENOENT' });
  });
});
