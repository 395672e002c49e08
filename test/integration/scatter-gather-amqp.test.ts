import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { createIntegration, createMessage, from, silentLogger, type Integration } from '../../facade/index.ts';
import { TestKit } from '../../facade/testing/index.ts';
import { parseEndpoint } from '../../src/spi.ts';
import { amqpModule } from '../../adapters/amqp/index.ts';
import { AMQP_URL, BrokerAdmin, connectedTransport, sleep, uniqueName, until } from './amqp-support.ts';

/**
 * Issue #18's "done when" for scatter-gather: two AMQP-backed services (responder routes on real
 * RabbitMQ queues), one slower than the completion timeout; the partial result goes on after the
 * timeout, flagged, with the fast service's reply.
 */
const admin = new BrokerAdmin();
const running: { app: Integration; kit: TestKit }[] = [];

afterEach(async () => {
  for (const { app, kit } of running.splice(0)) {
    kit.close();
    await app.stop({ drainTimeoutMs: 200 });
  }
  await admin.cleanup();
});
afterAll(() => admin.close());

interface Quote {
  readonly vendor: string;
  readonly price: number;
}

/** A vendor service: replies with its quote to `{replyTo}`, after `delayMs`. */
function vendor(queue: string, quote: Quote, delayMs = 0) {
  return from<{ sku: string }>(`amqp:queue/${queue}`, { id: `vendor-${quote.vendor}` })
    .process(() => (delayMs > 0 ? sleep(delayMs) : undefined))
    .transform(() => quote)
    .to('amqp:queue/{replyTo}');
}

describe('scatter-gather over AMQP', () => {
  it('after the completion timeout the partial result goes on, flagged, with the fast service\'s reply; the source is acked once it settled', async () => {
    const [quotes, fast, slow] = ['hE-sg-quotes', 'hE-sg-fast', 'hE-sg-slow'].map(uniqueName) as [string, string, string];
    admin.track({ queues: [quotes, fast, slow] });
    const app = createIntegration({
      logger: silentLogger,
      modules: [amqpModule({ url: AMQP_URL, topology: { queues: [{ name: quotes }, { name: fast }, { name: slow }] } })],
      routes: [
        from<{ sku: string }>(`amqp:queue/${quotes}`, { id: 'quotes' })
          .scatterGather<Quote, { sku: string; quotes: Quote[]; missing: string[] }>([`amqp:queue/${fast}`, `amqp:queue/${slow}`], {
            timeoutMs: 1_000,
            aggregate: ({ replies, missing }, message) => ({ sku: message.body.sku, quotes: replies.map((r) => r.message.body), missing: [...missing] }),
          })
          .to('memory:hE-sg-gathered'),
        vendor(fast, { vendor: 'fast', price: 10 }),
        vendor(slow, { vendor: 'slow', price: 8 }, 3_000),
      ],
    });
    await app.start();
    const kit = new TestKit(app);
    running.push({ app, kit });
    const gathered = kit.mock<{ sku: string; quotes: Quote[]; missing: string[] }>('memory:hE-sg-gathered');
    const feeder = await connectedTransport();
    try {
      await feeder.publish(parseEndpoint(`amqp:queue/${quotes}`), [createMessage({ sku: 'A-1' }, { id: 'hE-sg-1' })]);
    } finally {
      await feeder.close();
    }
    const [result] = await gathered.expect(1, { timeoutMs: 10_000 });
    expect(result!.body).toEqual({ sku: 'A-1', quotes: [{ vendor: 'fast', price: 10 }], missing: [`amqp:queue/${slow}`] });
    expect(result!.id).toBe('hE-sg-1');
    expect(result!.headers.scatterGatherPartial).toBe(true);
    expect(JSON.parse(String(result!.headers.scatterGatherMissing))).toEqual([`amqp:queue/${slow}`]);
    expect(app.metrics().quotes?.steps['scatterGather-1']?.counts).toMatchObject({ partial: 1, missing: 1 });
    // the gathered message settled (the mock acked it): the source is acked, its queue empty, nothing unacked
    await until(async () => (await admin.messageCount(quotes)) === 0, () => 'the source was acked');
    // the slow service's late reply is dropped, not passed on a second time
    await sleep(2_500);
    expect(gathered.received).toHaveLength(1);
  });

  it('when no service replies in time the message fails with ScatterGatherError and is dead-lettered', async () => {
    const [quotes, a, b] = ['hE-sg2-quotes', 'hE-sg2-a', 'hE-sg2-b'].map(uniqueName) as [string, string, string];
    admin.track({ queues: [quotes, a, b] });
    const app = createIntegration({
      logger: silentLogger,
      modules: [amqpModule({ url: AMQP_URL, topology: { queues: [{ name: quotes }, { name: a }, { name: b }] } })],
      routes: [
        from(`amqp:queue/${quotes}`)
          .scatterGather([`amqp:queue/${a}`, `amqp:queue/${b}`], { timeoutMs: 300, aggregate: ({ replies }) => replies.length })
          .to('memory:hE-sg2-never')
          .deadLetterChannel('memory:hE-sg2-dead'),
      ],
    });
    await app.start();
    const kit = new TestKit(app);
    running.push({ app, kit });
    const dead = kit.mock('memory:hE-sg2-dead');
    const feeder = await connectedTransport();
    try {
      await feeder.publish(parseEndpoint(`amqp:queue/${quotes}`), [createMessage({ sku: 'B-2' })]);
    } finally {
      await feeder.close();
    }
    const [letter] = await dead.expect(1, { timeoutMs: 10_000 });
    expect(letter!.headers['x-interchange-error-code']).toBe('SCATTER_GATHER_FAILED');
    expect(letter!.body).toEqual({ sku: 'B-2' });
    await until(async () => (await admin.messageCount(quotes)) === 0, () => 'the source was settled after dead-lettering');
  });
});
