import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { createIntegration, DeadLetterHeaders, from, silentLogger, type Integration } from '../../facade/index.ts';
import { TestKit } from '../../facade/testing/index.ts';
import { amqpModule } from '../../adapters/amqp/index.ts';
import { AMQP_URL, BrokerAdmin, readUntilQuiet, uniqueName, until } from './amqp-support.ts';

// The load balancer's failover against a real RabbitMQ: an endpoint the broker refuses — an exchange
// with no queue bound for the routing key (a mandatory publish comes back unroutable; a missing
// *queue* would not do: the adapter declares queues it publishes to), a full queue with
// `x-overflow: reject-publish` (the publish is nacked), an exchange that does not exist (the
// adapter's passive check gets 404: AMQP_CONFIGURATION) — fails over to the next, and the message arrives there once.

const admin = new BrokerAdmin();
let app: Integration | undefined;
let kit: TestKit | undefined;

/** A fresh durable-less queue, deleted after the test; `full`: max-length 1, reject-publish, already holding one message. */
async function queue(label: string, { full = false }: { full?: boolean } = {}): Promise<string> {
  const name = uniqueName(`hF-lb-${label}`);
  admin.track({ queues: [name] });
  const channel = await admin.channel();
  await channel.assertQueue(name, { durable: false, ...(full ? { arguments: { 'x-max-length': 1, 'x-overflow': 'reject-publish' } } : {}) });
  if (full) channel.sendToQueue(name, Buffer.from('filler'));
  await channel.close();
  if (full) await until(async () => (await admin.messageCount(name)) === 1, () => `${name} never got its filler`);
  return name;
}

/** amq.direct (always there) with a routing key nothing is bound to: a mandatory publish is returned. */
function unroutable(): string {
  return `amqp:exchange/amq.direct?routingKey=${uniqueName('hF-lb-nobody')}`;
}

/** The errors the balancer failed over on (its `failoverOn`, recording and allowing every one). */
let failedOver: Error[] = [];

async function start(routeId: string, endpoints: readonly string[]): Promise<void> {
  app = createIntegration({
    logger: silentLogger,
    modules: [amqpModule({ url: AMQP_URL, publishTimeoutMs: 5_000 })],
    routes: [
      from<{ n: number }>(`memory:${routeId}-in`, { id: routeId })
        .deadLetterChannel(`memory:${routeId}-dlq`)
        .loadBalance(endpoints, {
          strategy: 'failover',
          id: 'balancer',
          failoverOn: (error) => {
            failedOver.push(error);
            return true;
          },
        }),
    ],
  });
  await app.start();
  kit = new TestKit(app);
}

afterEach(async () => {
  kit?.close();
  await app?.stop({ drainTimeoutMs: 2_000 });
  app = undefined;
  kit = undefined;
  failedOver = [];
  await admin.cleanup();
});
afterAll(() => admin.close());

describe('loadBalance failover on RabbitMQ', () => {
  it.each([
    ['a routing key no queue is bound to (returned unroutable)', 'UNROUTABLE', async () => unroutable()],
    ['a full queue with reject-publish (nacked)', 'PUBLISH_REJECTED', async () => `amqp:queue/${await queue('full', { full: true })}`],
    ['an exchange that does not exist (404 on its check)', 'AMQP_CONFIGURATION', async () => `amqp:exchange/${uniqueName('hF-lb-noexchange')}?routingKey=x`],
  ])('%s fails over to the next endpoint; every message arrives there once', async (_, code, failing) => {
    const primary = await failing();
    const backup = await queue('backup');
    const routeId = uniqueName('hF-lb');
    await start(routeId, [primary, `amqp:queue/${backup}`]);
    const dlq = kit!.mock(`memory:${routeId}-dlq`);
    await kit!.sendAll(`memory:${routeId}-in`, [{ n: 1 }, { n: 2 }, { n: 3 }]);
    const arrived = await readUntilQuiet(backup, 3, 15_000);
    expect(arrived.map((m) => (m.body as { n: number }).n).sort()).toEqual([1, 2, 3]);
    await until(() => app!.metrics()[routeId]!.completed === 3, () => JSON.stringify(app!.metrics()[routeId]));
    const counts = app!.metrics()[routeId]!.steps.balancer!.counts;
    expect(counts).toMatchObject({ [`failed:${primary}`]: 3, failover: 3, [`sent:amqp:queue/${backup}`]: 3 });
    expect(dlq.bodies()).toEqual([]);
    expect(failedOver.map((error) => (error as { code?: string }).code)).toEqual([code, code, code]);
  });

  it('the failing endpoint’s error reached the step: a full queue counts as failed, the backup as sent', async () => {
    const full = await queue('full2', { full: true });
    const backup = await queue('backup2');
    const routeId = uniqueName('hF-lb');
    await start(routeId, [`amqp:queue/${full}`, `amqp:queue/${backup}`]);
    await kit!.send(`memory:${routeId}-in`, { n: 7 });
    expect((await readUntilQuiet(backup, 1, 15_000)).map((m) => m.body)).toEqual([{ n: 7 }]);
    // the full queue still holds only its filler: the refused message was not half-delivered there
    expect(await admin.messageCount(full)).toBe(1);
  });

  it('failover exhausted: the message is dead-lettered with the last endpoint’s error', async () => {
    const missing = unroutable();
    const full = await queue('full3', { full: true });
    const routeId = uniqueName('hF-lb');
    await start(routeId, [missing, `amqp:queue/${full}`]);
    const dlq = kit!.mock<{ n: number }>(`memory:${routeId}-dlq`);
    await kit!.send(`memory:${routeId}-in`, { n: 9 });
    const [dead] = await dlq.expect(1, { timeoutMs: 15_000 });
    expect(dead!.body).toEqual({ n: 9 });
    expect(dead!.headers[DeadLetterHeaders.code]).toBe('PUBLISH_REJECTED');
    expect(app!.metrics()[routeId]!.steps.balancer!.counts).toMatchObject({ [`failed:${missing}`]: 1, [`failed:amqp:queue/${full}`]: 1, failover: 1 });
  });
});
