import { describe, expect, it } from 'vitest';
import { recipientList } from '../../patterns/recipient-list.ts';
import { deferred, drive, Harness, settle, source, sources } from './harness.ts';

describe('recipientList', () => {
  it('sends each message to every recipient named for it, all at once', async () => {
    const harness = new Harness();
    const { output, send } = drive(harness.build(recipientList<{ priority: string }>((m) => (m.body.priority === 'high' ? ['memory:audit', 'memory:pager'] : ['memory:audit']))));
    const high = source({ priority: 'high' });
    const low = source({ priority: 'low' });
    send(high, low);
    expect(harness.published.map((call) => [call.uri, call.messages.map((m) => m.id)])).toEqual([
      ['memory:audit', [high.message.id]],
      ['memory:pager', [high.message.id]],
      ['memory:audit', [low.message.id]],
    ]);
    await settle();
    expect(output.messages).toEqual([high.message, low.message]);
  });

  it('passes the message on only once every recipient has confirmed', async () => {
    const confirms = new Map([
      ['memory:a', deferred()],
      ['memory:b', deferred()],
    ]);
    const harness = new Harness({ publish: (uri) => confirms.get(uri)!.promise });
    const { output, send } = drive(harness.build(recipientList(() => ['memory:a', 'memory:b'])));
    send(source('x'));
    expect(harness.published).toHaveLength(2);
    confirms.get('memory:b')!.resolve();
    await settle();
    expect(output.deliveries).toEqual([]);
    confirms.get('memory:a')!.resolve();
    await settle();
    expect(output.bodies).toEqual(['x']);
  });

  it('passes a message with no recipients on unsent', async () => {
    const harness = new Harness();
    const { output, send } = drive(harness.build(recipientList(() => [])));
    send(source('x'));
    await settle();
    expect(harness.published).toEqual([]);
    expect(output.bodies).toEqual(['x']);
  });

  it('fails the message when one send fails; other messages still go through', async () => {
    const boom = new Error('pager unreachable');
    const harness = new Harness({ publish: (uri, messages) => (uri === 'memory:pager' && messages[0]!.body === 'urgent' ? Promise.reject(boom) : Promise.resolve()) });
    const { output, send } = drive(harness.build(recipientList(() => ['memory:audit', 'memory:pager'])));
    const [urgent, routine] = sources(['urgent', 'routine']);
    send(urgent!, routine!);
    await settle();
    expect(output.bodies).toEqual(['routine']);
    expect(harness.failures.map((f) => [f.delivery.message.id, f.error])).toEqual([[urgent!.message.id, boom]]);
    expect(urgent!.nacks).toBe(1);
    expect(routine!.settlements).toBe(0);
  });

  it('fails only the message whose recipient function throws', async () => {
    const harness = new Harness();
    const { output, send } = drive(
      harness.build(
        recipientList<number>((m) => {
          if (m.body < 0) throw new Error('who gets negatives?');
          return ['memory:out'];
        }),
      ),
    );
    const inputs = sources([-1, 1]);
    send(...inputs);
    await settle();
    expect(output.bodies).toEqual([1]);
    expect(inputs.map((i) => i.nacks)).toEqual([1, 0]);
  });
});
