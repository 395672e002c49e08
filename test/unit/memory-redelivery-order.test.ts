import { afterEach, describe, expect, it } from 'vitest';
import { MemoryTransport } from '../../src/channel/index.ts';
import { createMessage, from, type Logger, type Message } from '../../facade/index.ts';
import { parseEndpoint, type Delivery } from '../../src/spi.ts';
import { startTestIntegration, type TestIntegration } from '../../facade/testing/index.ts';
import { sleep } from '../support/wait.ts';

const numbered = (count: number): Message<number>[] => Array.from({ length: count }, (_, n) => createMessage(n + 1));

describe('memory transport: a rejected message goes back to its original place', () => {
  let transport: MemoryTransport;
  afterEach(async () => {
    await transport.close();
  });

  it('rejects in any order restore publish order among the queued messages', async () => {
    transport = new MemoryTransport();
    const endpoint = parseEndpoint('memory:orders');
    await transport.publish(endpoint, numbered(8));
    const intake = new AbortController();
    const held: Delivery[] = [];
    const first = transport.consume(endpoint, { prefetch: 5, signal: intake.signal }).subscribe((delivery) => held.push(delivery));
    expect(held.map((delivery) => delivery.message.body)).toEqual([1, 2, 3, 4, 5]);
    intake.abort(); // stops the intake: rejected messages stay queued for the next consumer
    for (const index of [2, 0, 4, 1, 3]) held[index]?.nack(new Error('rejected'));
    const again: number[] = [];
    const second = transport.consume(endpoint).subscribe((delivery) => {
      again.push(delivery.message.body as number);
      delivery.ack();
    });
    expect(again).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    first.unsubscribe();
    second.unsubscribe();
  });
});

describe('memory transport through a route', () => {
  const running: TestIntegration[] = [];
  afterEach(async () => {
    for (const test of running.splice(0)) await test.stop();
  });

  it("an aggregator stopping with onStop 'reject' gets its group back in the original order after a restart", async () => {
    const test = await startTestIntegration({
      routes: [
        from<number>('memory:in', { id: 'batches' })
          .aggregate({ correlate: () => 'all', strategy: (batch: number[] = [], m) => [...batch, m.body], size: 8, onStop: 'reject' })
          .to('memory:out'),
      ],
    });
    running.push(test);
    const { app, kit } = test;
    await kit.sendAll('memory:in', [1, 2, 3, 4, 5]);
    await expect.poll(() => app.metrics().batches?.inFlight).toBe(5);
    await app.stopRoute('batches', { drainTimeoutMs: 1_000 }); // rejects 1..5, in that order
    app.startRoute('batches');
    const out = kit.mock<number[]>('memory:out');
    await kit.sendAll('memory:in', [6, 7, 8]);
    await out.expect(1);
    expect(out.bodies()).toEqual([[1, 2, 3, 4, 5, 6, 7, 8]]);
  });
});

describe('memory transport: a channel that fills while nobody consumes it', () => {
  it('is logged once, at WARN, naming the channel', async () => {
    const warnings: [string, Readonly<Record<string, unknown>> | undefined][] = [];
    const logger: Logger = { info: () => {}, error: () => {}, warn: (message, fields) => void warnings.push([message, fields]) };
    const test = await startTestIntegration({ routes: [from('memory:in').to('memory:nobody-reads?capacity=2')], logger });
    try {
      void test.kit.sendAll('memory:in', [1, 2, 3, 4, 5, 6]);
      await expect.poll(() => warnings.length).toBe(1);
      await sleep(20);
      expect(warnings).toHaveLength(1);
      expect(warnings[0]?.[0]).toContain("'nobody-reads'");
      expect(warnings[0]?.[1]).toMatchObject({ channel: 'nobody-reads', capacity: 2 });
    } finally {
      await test.stop();
    }
  });
});
