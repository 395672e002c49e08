import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { BufferTransport } from '../../adapters/buffer/index.ts';
import { parseEndpoint } from '../../src/core/index.ts';
import { ChildScript } from '../support/child-script.ts';
import { consume, eventually, RecordingLogger, settle } from './buffer-support.ts';

const CHILD = fileURLToPath(new URL('./buffer-crash-child.ts', import.meta.url));

describe('buffer: a publisher killed mid-stream (SIGKILL)', () => {
  let directory = '';
  let child: ChildScript | undefined;
  let transport: BufferTransport | undefined;

  afterEach(async () => {
    await child?.kill();
    await transport?.close();
    if (directory !== '') await rm(directory, { recursive: true, force: true });
  });

  it('loses no acknowledged message: after reopening, every batch whose publish resolved is there, in order', async () => {
    directory = await mkdtemp(join(tmpdir(), 'interchange-buffer-crash-'));
    child = new ChildScript(CHILD, [directory]);
    await eventually(() => (child as ChildScript).lines.length >= 60, 'the child to acknowledge 60 batches', 20_000);
    await child.kill('SIGKILL');
    const acknowledged = [...child.lines];

    const logger = new RecordingLogger();
    transport = new BufferTransport({ directory, logger, segmentBytes: 16 * 1024 });
    await transport.connect();
    const probe = consume(transport.consume(parseEndpoint('buffer:crash'), { prefetch: 500 }));
    await eventually(() => (transport as BufferTransport).stats()[0] !== undefined, 'the buffer to open');
    const total = (transport.stats()[0] as { entries: number }).entries;
    await probe.received(total);
    await settle();
    expect(probe.count).toBe(total);
    expect(logger.at('error')).toEqual([]);

    const ids = probe.ids();
    for (const publisher of ['a', 'b']) {
      const mine = ids.filter((id) => id.startsWith(`${publisher}-`)).map((id) => id.split('-').slice(1).map(Number) as [number, number]);
      // in publish order, without gaps, from the first message on
      mine.forEach(([batch, index], at) => expect(batch * 10 + index).toBe(at));
      const lastAcknowledged = Math.max(-1, ...acknowledged.filter((line) => line.startsWith(`${publisher} `)).map((line) => Number(line.split(' ')[1])));
      // every acknowledged batch is there (at-least-once: a batch written but not yet acknowledged may be too)
      expect(mine.length).toBeGreaterThanOrEqual((lastAcknowledged + 1) * 10);
    }
    expect(ids.length).toBeGreaterThanOrEqual(acknowledged.length * 10);
  });
});
