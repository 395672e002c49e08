import type { IPublishPacket } from 'mqtt';
import { VirtualTimeScheduler } from 'rxjs';
import { afterEach, describe, expect, it } from 'vitest';
import { appendHop, historyOf, messageHistory, MessageHistoryHeader, recordHistory, type HistoryHop } from '../../patterns/message-history.ts';
import { createMessage, silentLogger } from '../../src/core/index.ts';
import { createIntegration, from, type Integration } from '../../facade/index.ts';
import { TestKit } from '../../facade/testing/index.ts';
import { amqpMemoryModule } from '../../adapters/amqp/index.ts';
import { decodeMessage, encodeMessage } from '../../adapters/mqtt/message-codec.ts';
import { drive, Harness, settle, source } from './harness.ts';

const hop = (step: string, at = 0): HistoryHop => ({ route: 'r', step, at });
const withHistory = (hops: unknown): string => JSON.stringify(hops);

describe('messageHistory', () => {
  it('appends { route, step, at } with the step scheduler’s time, the body and id untouched', async () => {
    const scheduler = new VirtualTimeScheduler();
    scheduler.schedule(() => undefined, 1_234);
    scheduler.flush();
    const harness = new Harness({ scheduler });
    const { output, send } = drive(harness.build(messageHistory<{ n: number }>()));
    send(source({ n: 1 }, { id: 'm-1', headers: { correlationId: 'c' } }));
    await settle();
    const [message] = output.messages;
    expect(message!.id).toBe('m-1');
    expect(message!.body).toEqual({ n: 1 });
    expect(message!.headers.correlationId).toBe('c');
    expect(historyOf(message!)).toEqual([{ route: 'test-route', step: 'test-step', at: 1_234 }]);
    expect(typeof message!.headers[MessageHistoryHeader]).toBe('string');
  });

  it('appends to the history the message already carries, oldest first', async () => {
    const { output, send } = drive(new Harness().build(messageHistory<string>()));
    send(source('x', { headers: { [MessageHistoryHeader]: withHistory([hop('a', 1), hop('b', 2)]) } }));
    await settle();
    expect(historyOf(output.messages[0]!).map((h) => h.step)).toEqual(['a', 'b', 'test-step']);
  });

  it('keeps the last 20 hops by default, dropping the oldest; maxHops sets the bound (at least 1)', () => {
    let message = createMessage('x');
    for (let index = 0; index < 25; index += 1) message = appendHop(message, hop(`s${index}`, index));
    expect(historyOf(message).map((h) => h.step)).toEqual(Array.from({ length: 20 }, (_, index) => `s${index + 5}`));
    expect(historyOf(appendHop(message, hop('last'), 3)).map((h) => h.step)).toEqual(['s23', 's24', 'last']);
    expect(historyOf(appendHop(message, hop('only'), 0)).map((h) => h.step)).toEqual(['only']);
  });

  it('applies maxHops in the step', async () => {
    const { output, send } = drive(new Harness().build(messageHistory<string>({ maxHops: 2 })));
    send(source('x', { headers: { [MessageHistoryHeader]: withHistory([hop('a'), hop('b'), hop('c')]) } }));
    await settle();
    expect(historyOf(output.messages[0]!).map((h) => h.step)).toEqual(['c', 'test-step']);
  });

  it('never fails a message on a forged or damaged header: starts over, or leaves the bad hops out', async () => {
    const harness = new Harness();
    const { output, send } = drive(harness.build(messageHistory<string>()));
    const damaged = ['not json', '{"route":"r"}', 'null', 'x'.repeat(70_000), withHistory([1, null, { route: 'r', step: 's' }, { route: 'r', step: 's', at: 'x' }, hop('kept', 5)])];
    send(...damaged.map((header) => source('x', { headers: { [MessageHistoryHeader]: header } })), source('x', { headers: { [MessageHistoryHeader]: 42 } }));
    await settle();
    expect(harness.failures).toEqual([]);
    expect(output.messages.map((m) => historyOf(m).map((h) => h.step))).toEqual([['test-step'], ['test-step'], ['test-step'], ['test-step'], ['kept', 'test-step'], ['test-step']]);
  });

  it('settles the source as the message settles downstream (ack and nack)', async () => {
    const { output, send } = drive(new Harness().build(messageHistory<number>()));
    const [acked, nacked] = [source(1), source(2)];
    send(acked, nacked);
    expect([acked.outcome, nacked.outcome]).toEqual(['pending', 'pending']);
    output.deliveries[0]!.ack();
    output.deliveries[1]!.nack(new Error('later step failed'));
    expect([acked.outcome, nacked.outcome]).toEqual(['acked', 'nacked']);
  });

  it('on stop: holds nothing, completes with its source at once', () => {
    const { input, output, send } = drive(new Harness().build(messageHistory<number>()));
    send(source(1));
    input.complete();
    expect(output.deliveries).toHaveLength(1);
    expect(output.completed).toBe(true);
  });

  it('survives MQTT 5 between Interchange peers (headers=all); a standard consumer drops it like every x-interchange-* header', () => {
    const message = appendHop(createMessage({ n: 1 }), hop('sent', 9));
    const { payload, properties } = encodeMessage(message, 5, 'all');
    const packet = { cmd: 'publish', topic: 't', qos: 1, dup: false, retain: false, payload: Buffer.from(payload), properties } as IPublishPacket;
    expect(historyOf(decodeMessage(packet, undefined, 1, false, { headers: 'all' }))).toEqual([hop('sent', 9)]);
    expect(decodeMessage(packet, undefined, 1).headers[MessageHistoryHeader]).toBeUndefined();
  });
});

describe('message history through the runtime', () => {
  let app: Integration | undefined;
  let kit: TestKit | undefined;
  afterEach(async () => {
    kit?.close();
    await app?.stop({ drainTimeoutMs: 200 });
    app = undefined;
  });

  it('records one hop per .history() step, across routes joined by AMQP (the real wire encoding), named by step id', async () => {
    const amqp = amqpMemoryModule({ logger: silentLogger, topology: { queues: [{ name: 'hC-history' }] } });
    app = createIntegration({
      logger: silentLogger,
      modules: [amqp],
      routes: [
        from<{ n: number }>('memory:hC-history-in', { id: 'intake' }).history({ id: 'received' }).transform((m) => ({ n: m.body.n + 1 })).history({ id: 'translated' }).to('amqp:queue/hC-history'),
        from<{ n: number }>('amqp:queue/hC-history', { id: 'billing' }).history().to('memory:hC-history-out'),
      ],
    });
    await app.start();
    kit = new TestKit(app);
    const out = kit.mock<{ n: number }>('memory:hC-history-out');
    await kit.sendAll('memory:hC-history-in', [{ n: 1 }]);
    const [message] = await out.expect(1);
    expect(message!.body).toEqual({ n: 2 });
    expect(historyOf(message!).map(({ route, step }) => `${route}/${step}`)).toEqual(['intake/received', 'intake/translated', 'billing/history-1']);
    const times = historyOf(message!).map((h) => h.at);
    expect([...times].sort((a, b) => a - b)).toEqual(times);
  });

  it('recordHistory: a hop after every top-level step, named by step id; what `to` sends has the hops before it', async () => {
    app = createIntegration({
      logger: silentLogger,
      routes: [
        recordHistory(
          from<number>('memory:hC-every-in', { id: 'every' })
            .filter((m) => m.body > 0, { id: 'positive' })
            .transform((m) => m.body * 10)
            .choice((c) => c.when((m) => m.body > 50, (b) => b.setHeaders(() => ({ big: true }))), { id: 'size' })
            .to('memory:hC-every-mid', { id: 'send' }),
          { maxHops: 10 },
        ),
      ],
    });
    await app.start();
    kit = new TestKit(app);
    const mid = kit.mock<number>('memory:hC-every-mid');
    await kit.sendAll('memory:hC-every-in', [-1, 9]);
    const [message] = await mid.expect(1);
    expect(message!.body).toBe(90);
    expect(historyOf(message!).map((h) => `${h.route}/${h.step}`)).toEqual(['every/positive', 'every/transform-1', 'every/size']);
    await expect.poll(() => app!.metrics()['every']?.completed).toBe(1);
  });
});
