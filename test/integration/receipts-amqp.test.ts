import { afterAll, expect, it } from 'vitest';
import { createMessage, parseEndpoint, silentLogger, type Message } from '../../src/core/index.ts';
import { createIntegration } from '../../src/runtime/integration.ts';
import { from } from '../../facade/route-builder.ts';
import { deadLetter } from '../../src/core/failure.ts';
import { amqpModule } from '../../adapters/amqp/index.ts';
import type { ReceiptBody } from '../../src/runtime/receipts.ts';
import { AMQP_URL, BrokerAdmin, connectedTransport, readUntilQuiet, sleep, uniqueName } from './amqp-support.ts';

const admin = new BrokerAdmin();
afterAll(() => admin.close());

it('receipts over RabbitMQ: delivered, filtered, dead-lettered, each correlated by the original id; a destination not allowed gets none', async () => {
  const inQueue = uniqueName('hH-rin');
  const outQueue = uniqueName('hH-rout');
  const dlq = uniqueName('hH-rdlq');
  const receipts = uniqueName('hH-receipts');
  const forbidden = uniqueName('hH-forbidden');
  admin.track({ queues: [inQueue, outQueue, dlq, receipts, forbidden] });
  const app = createIntegration({
    logger: silentLogger,
    modules: [amqpModule({ url: AMQP_URL, connectTimeoutMs: 5_000 })],
    routes: [
      from<{ kind: string }>(`amqp:queue/${inQueue}`, { id: 'hH-receipts', receipts: { allow: [`amqp:queue/${receipts}`] } })
        .onError(() => deadLetter('refused'), { deadLetterUri: `amqp:queue/${dlq}` })
        .filter((m) => m.body.kind !== 'skip')
        .process((m) => {
          if (m.body.kind === 'bad') throw new Error('bad order');
        })
        .to(`amqp:queue/${outQueue}`),
    ],
  });
  const publisher = await connectedTransport();
  await app.start();
  try {
    const ask = (id: string, kind: string, receiptTo = `amqp:queue/${receipts}`): Message => createMessage({ kind }, { id, headers: { receiptTo } });
    await publisher.publish(parseEndpoint(`amqp:queue/${inQueue}`), [ask('hH-ok', 'ok'), ask('hH-skip', 'skip'), ask('hH-bad', 'bad'), ask('hH-elsewhere', 'ok', `amqp:queue/${forbidden}`)]);
    const got = await readUntilQuiet(receipts, 3, 20_000);
    const byId = new Map(got.map((message) => [message.headers.correlationId, message.body as ReceiptBody]));
    expect(got).toHaveLength(3);
    expect(byId.get('hH-ok')).toMatchObject({ messageId: 'hH-ok', outcome: 'delivered', routeId: 'hH-receipts' });
    expect(byId.get('hH-skip')).toMatchObject({ messageId: 'hH-skip', outcome: 'filtered' });
    expect(byId.get('hH-bad')).toMatchObject({ messageId: 'hH-bad', outcome: 'dead-lettered', reason: expect.stringContaining('bad order') as string });
    // the message whose receiptTo the route does not allow was delivered, without a receipt
    const outputs = await readUntilQuiet(outQueue, 2, 20_000);
    expect(outputs.map((message) => message.id).sort()).toEqual(['hH-elsewhere', 'hH-ok']);
    await sleep(200);
    expect(await admin.messageCount(forbidden).catch(() => 0)).toBe(0);
    expect(await admin.messageCount(inQueue)).toBe(0);
  } finally {
    await app.stop();
    await publisher.close();
  }
});
