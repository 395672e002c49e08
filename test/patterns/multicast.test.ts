import { afterEach, describe, expect, it } from 'vitest';
import { multicast } from '../../patterns/multicast.ts';
import { transform } from '../../patterns/transform.ts';
import type { AnyStep, StepFactory } from '../../src/core/index.ts';
import { createIntegration, from, silentLogger, type Integration } from '../../facade/index.ts';
import { TestKit } from '../../facade/testing/index.ts';
import { drive, Harness, settle, source } from './harness.ts';

const tag = (harness: Harness, name: string): AnyStep => harness.build(transform<string, string>((m) => `${name}:${m.body}`) as StepFactory<unknown, unknown>);

describe('multicast', () => {
  it('gives every branch the same message (same id) and merges their outputs', () => {
    const harness = new Harness();
    const { output, send } = drive(harness.build(multicast<string>([tag(harness, 'a'), tag(harness, 'b'), tag(harness, 'c')])));
    const input = source('hello', { id: 'm-1' });
    send(input);
    expect(output.bodies.sort()).toEqual(['a:hello', 'b:hello', 'c:hello']);
    expect(output.messages.map((m) => m.id)).toEqual(['m-1', 'm-1', 'm-1']);
  });

  it('acks the source exactly once, only after every copy is acked', () => {
    const harness = new Harness();
    const { output, send } = drive(harness.build(multicast<string>([tag(harness, 'a'), tag(harness, 'b'), tag(harness, 'c')])));
    const input = source('x');
    send(input);
    const [a, b, c] = output.deliveries;
    a!.ack();
    b!.ack();
    b!.ack();
    expect(input.settlements).toBe(0);
    c!.ack();
    expect(input.acks).toBe(1);
    expect(input.nacks).toBe(0);
    output.ackAll();
    expect(input.acks).toBe(1);
  });

  it('rejects the source with the reason of the copy that was nacked, once all copies settled', () => {
    const harness = new Harness();
    const { output, send } = drive(harness.build(multicast<string>([tag(harness, 'a'), tag(harness, 'b')])));
    const input = source('x');
    send(input);
    const reason = new Error('branch b could not deliver');
    output.deliveries[1]!.nack(reason);
    expect(input.settlements).toBe(0);
    output.deliveries[0]!.ack();
    expect(input.acks).toBe(0);
    expect(input.nacks).toBe(1);
    expect(input.reasons).toEqual([reason]);
  });

  it('keeps messages apart: each source settles on its own copies', () => {
    const harness = new Harness();
    const { output, send } = drive(harness.build(multicast<string>([tag(harness, 'a'), tag(harness, 'b')])));
    const first = source('1');
    const second = source('2');
    send(first, second);
    for (const delivery of output.deliveries) if (delivery.message.body === 'a:1' || delivery.message.body === 'b:1') delivery.ack();
    expect(first.acks).toBe(1);
    expect(second.settlements).toBe(0);
  });

  it('completes once its source and every branch completed', () => {
    const harness = new Harness();
    const { input, output, send } = drive(harness.build(multicast<string>([tag(harness, 'a'), tag(harness, 'b')])));
    send(source('x'));
    expect(output.completed).toBe(false);
    input.complete();
    expect(output.completed).toBe(true);
  });
});

describe('multicast through the runtime', () => {
  let app: Integration | undefined;
  let kit: TestKit | undefined;
  afterEach(async () => {
    kit?.close();
    await app?.stop({ drainTimeoutMs: 100 });
  });

  it('delivers every message to every branch and settles each source once', async () => {
    app = createIntegration({
      logger: silentLogger,
      routes: [from<number>('memory:in').multicast([(b) => b.to('memory:a'), (b) => b.transform((m) => m.body * 10).to('memory:b')])],
    });
    await app.start();
    kit = new TestKit(app);
    const a = kit.mock<number>('memory:a');
    const b = kit.mock<number>('memory:b');
    await kit.sendAll('memory:in', [1, 2, 3]);
    await Promise.all([a.expect(3), b.expect(3)]);
    expect(a.bodies()).toEqual([1, 2, 3]);
    expect(b.bodies()).toEqual([10, 20, 30]);
    expect(b.received.map((m) => m.id)).toEqual(a.received.map((m) => m.id));
    await settle();
    expect(app.metrics()['memory:in']).toMatchObject({ received: 3, completed: 6, rejected: 0, inFlight: 0 });
  });
});
