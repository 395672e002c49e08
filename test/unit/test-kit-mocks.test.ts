import { afterEach, describe, expect, it } from 'vitest';
import { createIntegration, from, NotStartedError, type MemoryTransport } from '../../facade/index.ts';
import { startTestIntegration, TestKit, type TestIntegration } from '../../facade/testing/index.ts';

const running: TestIntegration[] = [];
afterEach(async () => {
  for (const test of running.splice(0)) await test.stop();
});

describe('TestKit.mock on a channel a route consumes', () => {
  it("observes the channel without taking the route's messages", async () => {
    const test = await startTestIntegration({
      routes: [from<number>('memory:in', { id: 'first' }).to('memory:mid'), from<number>('memory:mid', { id: 'second' }).transform((m) => m.body * 10).to('memory:out')],
    });
    running.push(test);
    const { app, kit } = test;
    const mid = kit.mock<number>('memory:mid');
    const out = kit.mock<number>('memory:out');
    const sent = Array.from({ length: 10 }, (_, n) => n + 1);
    await kit.sendAll('memory:in', sent);
    await mid.expect(10, { timeoutMs: 2_000 });
    await out.expect(10, { timeoutMs: 2_000 });
    expect(mid.mode).toBe('observe');
    expect(mid.bodies()).toEqual(sent);
    expect(out.bodies()).toEqual(sent.map((n) => n * 10));
    expect(app.metrics().second).toMatchObject({ received: 10, completed: 10 });
  });

  it('still consumes an endpoint no route consumes', async () => {
    const test = await startTestIntegration({ routes: [from<number>('memory:in').to('memory:out')] });
    running.push(test);
    const out = test.kit.mock<number>('memory:out');
    await test.kit.sendAll('memory:in', [1, 2]);
    await out.expect(2);
    expect(out.mode).toBe('consume');
    await expect.poll(() => test.app.transport<MemoryTransport>('memory').depth('out')).toBe(0);
  });
});

describe('TestKit before start()', () => {
  it('send fails with NotStartedError instead of a mock waiting in vain', async () => {
    const app = createIntegration({ routes: [from('memory:in').to('memory:out')] });
    await expect(new TestKit(app).send('memory:in', 'early')).rejects.toBeInstanceOf(NotStartedError);
  });
});
