import { Container } from 'inversify';
import { afterEach, describe, expect, it } from 'vitest';
import {
  AmqpConfigurationError,
  AmqpMemoryBroker,
  amqpMemoryModule,
  bindingMatches,
  PublishRejectedError,
  topicMatches,
  UnroutableError,
  type AmqpMemoryBrokerOptions,
  type Topology,
} from '../../adapters/amqp/index.ts';
import { from } from '../../facade/index.ts';
import { startTestIntegration, type TestIntegration } from '../../facade/testing/index.ts';
import { createMessage, Logger, PartialPublishError, parseEndpoint, Transport, type Delivery, type Message } from '../../src/spi.ts';

const numbered = (count: number, start = 1): Message<{ n: number }>[] => Array.from({ length: count }, (_, i) => createMessage({ n: start + i }));
const ns = (messages: readonly Message[]): number[] => messages.map((message) => (message.body as { n: number }).n);

/** A logger that records its warnings. */
const recording = (): Logger & { readonly warnings: string[] } => {
  const warnings: string[] = [];
  return { warnings, info: () => {}, warn: (message) => warnings.push(message), error: (message) => warnings.push(message) };
};

const brokers: AmqpMemoryBroker[] = [];
const broker = (options: AmqpMemoryBrokerOptions = {}): AmqpMemoryBroker => {
  const created = new AmqpMemoryBroker({ logger: recording(), ...options });
  brokers.push(created);
  return created;
};
const publish = (to: AmqpMemoryBroker, uri: string, messages: readonly Message[]): Promise<void> => to.publish(parseEndpoint(uri), messages);

/** Consumes `uri`, holding every delivery unsettled. */
const hold = (from: AmqpMemoryBroker, uri: string, options: { prefetch?: number; signal?: AbortSignal } = {}) => {
  const held: Delivery[] = [];
  const subscription = from.consume(parseEndpoint(uri), options).subscribe((delivery) => held.push(delivery));
  return { held, subscription };
};

afterEach(async () => {
  for (const created of brokers.splice(0)) await created.close();
});

/** The flagship's topology: a topic exchange into three queues, a fanout dead-letter exchange into one. */
const flagship: Topology = {
  exchanges: [
    { name: 'telemetry', type: 'topic' },
    { name: 'telemetry.dlx', type: 'fanout' },
  ],
  queues: [{ name: 'readings' }, { name: 'alerts' }, { name: 'summaries' }, { name: 'invalid' }],
  bindings: [
    { exchange: 'telemetry', queue: 'readings', routingKey: 'reading.#' },
    { exchange: 'telemetry', queue: 'alerts', routingKey: 'alert.#' },
    { exchange: 'telemetry', queue: 'summaries', routingKey: 'summary.*' },
    { exchange: 'telemetry.dlx', queue: 'invalid' },
  ],
};

describe('routing keys, as RabbitMQ matches them', () => {
  it.each([
    ['reading.#', 'reading.d-1', true],
    ['reading.#', 'reading', true],
    ['reading.#', 'reading.a.b.c', true],
    ['reading.#', 'alert.d-1', false],
    ['a.*.c', 'a.b.c', true],
    ['a.*.c', 'a.b.b.c', false],
    ['a.*.c', 'a.c', false],
    ['#.c', 'a.b.c', true],
    ['#.c', 'c', true],
    ['a.#.c', 'a.c', true],
    ['a.#.c', 'a.x.y.c', true],
    ['a.#.c', 'a.x.y.d', false],
    ['#', '', true],
    ['*', '', false],
    ['*', 'a', true],
    ['', '', true],
    ['#.#.#.#', 'a.b', true],
    ['a..b', 'a..b', true],
    ['a.*.b', 'a..b', true],
  ])('topic %j takes %j: %s', (bindingKey, routingKey, expected) => {
    expect(topicMatches(bindingKey, routingKey)).toBe(expected);
  });

  it('has no backtracking blow-up on many #', () => {
    const started = performance.now();
    expect(topicMatches(Array.from({ length: 60 }, () => '#').join('.') + '.z', Array.from({ length: 200 }, () => 'a').join('.'))).toBe(false);
    expect(performance.now() - started).toBeLessThan(200);
  });

  it('direct takes equal keys, fanout everything, headers by x-match all or any', () => {
    expect(bindingMatches('direct', 'k', 'k')).toBe(true);
    expect(bindingMatches('direct', 'k', 'k.1')).toBe(false);
    expect(bindingMatches('fanout', 'ignored', 'anything')).toBe(true);
    const all = { 'x-match': 'all', region: 'eu', tier: 1 };
    expect(bindingMatches('headers', '', '', { region: 'eu', tier: 1, other: true }, all)).toBe(true);
    expect(bindingMatches('headers', '', '', { region: 'eu' }, all)).toBe(false);
    expect(bindingMatches('headers', '', '', { region: 'us', tier: 1 }, { ...all, 'x-match': 'any' })).toBe(true);
    expect(bindingMatches('headers', '', '', { other: 1 }, { ...all, 'x-match': 'any' })).toBe(false);
  });
});

describe('the in-memory broker routes', () => {
  it('routes the flagship topology: topic keys into their queues, the fanout dead-letter exchange into its queue', async () => {
    const amqp = broker({ topology: flagship });
    await publish(amqp, 'amqp:exchange/telemetry?routingKey=reading.d-1', numbered(1, 1));
    await publish(amqp, 'amqp:exchange/telemetry?routingKey=alert.d-1', numbered(1, 2));
    await publish(amqp, 'amqp:exchange/telemetry?routingKey=summary.d-1', numbered(1, 3));
    await publish(amqp, 'amqp:exchange/telemetry.dlx?routingKey=whatever', numbered(1, 4));
    await publish(amqp, 'amqp:queue/readings', numbered(1, 5)); // the default exchange
    expect(ns(amqp.queue('readings'))).toEqual([1, 5]);
    expect(ns(amqp.queue('alerts'))).toEqual([2]);
    expect(ns(amqp.queue('summaries'))).toEqual([3]);
    expect(ns(amqp.queue('invalid'))).toEqual([4]);
    expect(amqp.queueDepths().readings).toEqual({ messages: 2, unacknowledged: 0, consumers: 0, dropped: 0, deadLettered: 0 });
  });

  it('keeps the id, body and headers through the AMQP encoding, with attempt 1', async () => {
    const amqp = broker({ topology: flagship });
    const sent = createMessage({ deviceId: 'd-1', temperatureC: 21.5 }, { headers: { correlationId: 'c-1', 'x-tenant': 'acme', 'x-count': 3 } });
    await publish(amqp, 'amqp:exchange/telemetry?routingKey=reading.d-1', [sent]);
    const [got] = amqp.queue('readings');
    expect(got).toMatchObject({ id: sent.id, body: sent.body, headers: { correlationId: 'c-1', 'x-tenant': 'acme', 'x-count': 3, contentType: 'application/json', attempt: 1 } });
  });

  it('refuses a mandatory publish no binding takes with UnroutableError; a non-mandatory one goes nowhere', async () => {
    const amqp = broker({ topology: flagship });
    const refused = publish(amqp, 'amqp:exchange/telemetry?routingKey=other.d-1', numbered(1));
    await expect(refused).rejects.toBeInstanceOf(UnroutableError);
    await expect(refused).rejects.toMatchObject({ code: 'UNROUTABLE', exchange: 'telemetry', routingKey: 'other.d-1' });
    await expect(publish(amqp, 'amqp:exchange/telemetry?routingKey=summary.a.b', numbered(1))).rejects.toBeInstanceOf(UnroutableError); // `*` is one word
    await expect(publish(amqp, 'amqp:exchange/telemetry?routingKey=other.d-1&mandatory=false', numbered(1))).resolves.toBeUndefined();
    expect(Object.values(amqp.queueDepths()).map((depth) => depth.messages)).toEqual([0, 0, 0, 0]);
  });

  it('declares queues on first use, refuses unknown exchanges unless ?type= declares them', async () => {
    const amqp = broker();
    await publish(amqp, 'amqp:queue/orders', numbered(2));
    expect(ns(amqp.queue('orders'))).toEqual([1, 2]);
    await expect(publish(amqp, 'amqp:exchange/nowhere', numbered(1))).rejects.toBeInstanceOf(AmqpConfigurationError);
    await expect(publish(amqp, 'amqp:exchange/events?type=fanout', numbered(1))).rejects.toBeInstanceOf(UnroutableError); // declared, no queue bound
    await expect(publish(amqp, 'amqp:exchange/events?type=topic', numbered(1))).rejects.toThrow(/fanout/); // exists as another type
    await expect(publish(amqp, 'amqp:queue/orders?routingKey=x', numbered(1))).rejects.toBeInstanceOf(AmqpConfigurationError); // the real adapter's endpoint rules
    const strict = broker({ declareQueues: false });
    await expect(publish(strict, 'amqp:queue/orders', numbered(1))).rejects.toBeInstanceOf(UnroutableError);
  });

  it('follows exchange-to-exchange bindings and alternate exchanges', async () => {
    const amqp = broker({
      topology: {
        exchanges: [
          { name: 'in', type: 'direct', alternateExchange: 'unrouted' },
          { name: 'audit', type: 'fanout' },
          { name: 'unrouted', type: 'fanout' },
        ],
        queues: [{ name: 'orders' }, { name: 'audit-log' }, { name: 'leftovers' }],
        bindings: [
          { exchange: 'in', queue: 'orders', routingKey: 'order' },
          { exchange: 'in', toExchange: 'audit', routingKey: 'order' },
          { exchange: 'audit', queue: 'audit-log' },
          { exchange: 'unrouted', queue: 'leftovers' },
        ],
      },
    });
    await publish(amqp, 'amqp:exchange/in?routingKey=order', numbered(1, 1));
    await publish(amqp, 'amqp:exchange/in?routingKey=refund', numbered(1, 2));
    expect(ns(amqp.queue('orders'))).toEqual([1]);
    expect(ns(amqp.queue('audit-log'))).toEqual([1]);
    expect(ns(amqp.queue('leftovers'))).toEqual([2]);
  });

  it('refuses a topology RabbitMQ would refuse', () => {
    expect(() => broker({ topology: { queues: [{ name: 'q' }], bindings: [{ exchange: 'missing', queue: 'q' }] } })).toThrow(AmqpConfigurationError);
    expect(() => broker({ topology: { exchanges: [{ name: 'x', type: 'topic' }], bindings: [{ exchange: 'x', queue: 'missing' }] } })).toThrow(/missing/);
    expect(() => broker({ topology: { exchanges: [{ name: 'amq.mine', type: 'topic' }] } })).toThrow(/reserved/);
    expect(() => broker({ topology: { exchanges: [{ name: 'x', type: 'topic' }, { name: 'x', type: 'direct' }] } })).toThrow(/PRECONDITION_FAILED/);
    expect(() => broker({ topology: { queues: [{ name: 'q', overflow: 'sideways' as never }] } })).toThrow(AmqpConfigurationError); // the real adapter's schema
  });

  it('fails an unencodable message alone: PartialPublishError names it, the others are queued', async () => {
    const amqp = broker();
    const bad = createMessage({ n: 2 }, { headers: { 'x-bad': Number.NaN } });
    const error = await publish(amqp, 'amqp:queue/orders', [...numbered(1, 1), bad, ...numbered(1, 3)]).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(PartialPublishError);
    expect([...(error as PartialPublishError).failures.keys()]).toEqual([1]);
    expect(ns(amqp.queue('orders'))).toEqual([1, 3]);
  });
});

describe('the in-memory broker bounds its queues as RabbitMQ does', () => {
  it('drop-head (the default): keeps the newest, counts the dropped and warns once', async () => {
    const logger = recording();
    const amqp = broker({ topology: flagship, defaultMaxLength: 2, logger });
    for (let n = 1; n <= 5; n += 1) await publish(amqp, `amqp:exchange/telemetry?routingKey=reading.d-${n}`, numbered(1, n));
    expect(ns(amqp.queue('readings'))).toEqual([4, 5]);
    expect(amqp.queueDepths().readings).toMatchObject({ messages: 2, dropped: 3 });
    expect(logger.warnings).toEqual([expect.stringContaining("queue 'readings' is full")]);
  });

  it('unacknowledged messages do not count towards the bound', async () => {
    const amqp = broker({ topology: { queues: [{ name: 'q', maxLength: 2 }] } });
    await publish(amqp, 'amqp:queue/q', numbered(2));
    const { held } = hold(amqp, 'amqp:queue/q', { prefetch: 2 });
    await publish(amqp, 'amqp:queue/q', numbered(2, 3));
    expect(ns(held.map((delivery) => delivery.message))).toEqual([1, 2]);
    expect(amqp.queueDepths().q).toMatchObject({ messages: 2, unacknowledged: 2, dropped: 0 });
  });

  it('reject-publish: a full queue refuses with PublishRejectedError; the other queues of the publish take it', async () => {
    const amqp = broker({
      topology: {
        exchanges: [{ name: 'x', type: 'fanout' }],
        queues: [{ name: 'small', maxLength: 1, overflow: 'reject-publish' }, { name: 'big' }],
        bindings: [{ exchange: 'x', queue: 'small' }, { exchange: 'x', queue: 'big' }],
      },
    });
    await publish(amqp, 'amqp:exchange/x', numbered(1, 1));
    await expect(publish(amqp, 'amqp:exchange/x', numbered(2, 2))).rejects.toBeInstanceOf(PublishRejectedError);
    expect(ns(amqp.queue('small'))).toEqual([1]);
    expect(ns(amqp.queue('big'))).toEqual([1, 2, 3]);
  });

  it('reject-publish-dlx and drop-head dead-letter what they refuse or drop, when the queue has a dead-letter exchange', async () => {
    const amqp = broker({
      topology: {
        exchanges: [{ name: 'dlx', type: 'fanout' }],
        queues: [{ name: 'refusing', maxLength: 1, overflow: 'reject-publish-dlx', deadLetterExchange: 'dlx' }, { name: 'dropping', maxLength: 1, deadLetterExchange: 'dlx' }, { name: 'dead' }],
        bindings: [{ exchange: 'dlx', queue: 'dead' }],
      },
    });
    await publish(amqp, 'amqp:queue/refusing', numbered(1, 1));
    await expect(publish(amqp, 'amqp:queue/refusing', numbered(1, 2))).rejects.toBeInstanceOf(PublishRejectedError);
    await publish(amqp, 'amqp:queue/dropping', numbered(2, 3));
    expect(ns(amqp.queue('refusing'))).toEqual([1]);
    expect(ns(amqp.queue('dropping'))).toEqual([4]);
    expect(ns(amqp.queue('dead'))).toEqual([2, 3]);
    expect(amqp.queue('dead').map((message) => message.headers['x-first-death-reason'])).toEqual(['maxlen', 'maxlen']);
    expect(amqp.queue('dead').map((message) => message.headers['x-first-death-queue'])).toEqual(['refusing', 'dropping']);
    expect(amqp.queueDepths().dropping).toMatchObject({ dropped: 0, deadLettered: 1 });
  });

  it('bounds bodies by maxLengthBytes', async () => {
    const amqp = broker({ topology: { queues: [{ name: 'q', maxLengthBytes: 20 }] } });
    await publish(amqp, 'amqp:queue/q', [createMessage(Buffer.alloc(8)), createMessage(Buffer.alloc(8)), createMessage(Buffer.alloc(8))]);
    expect(amqp.queueDepths().q).toMatchObject({ messages: 2, dropped: 1 });
  });

  it('expires messages past messageTtlMs to the dead-letter exchange', async () => {
    const amqp = broker({ topology: { queues: [{ name: 'q', messageTtlMs: 20, deadLetterExchange: '', deadLetterRoutingKey: 'expired' }, { name: 'expired' }] } });
    await publish(amqp, 'amqp:queue/q', numbered(2));
    await new Promise((resolve) => setTimeout(resolve, 40));
    const { held } = hold(amqp, 'amqp:queue/q');
    expect(held).toHaveLength(0);
    expect(ns(amqp.queue('expired'))).toEqual([1, 2]);
    expect(amqp.queue('expired')[0]?.headers['x-first-death-reason']).toBe('expired');
  });
});

describe('the in-memory broker settles', () => {
  it('nacks in any order put messages back at their original places, attempt incremented', async () => {
    const amqp = broker();
    await publish(amqp, 'amqp:queue/q', numbered(8));
    const intake = new AbortController();
    const first = hold(amqp, 'amqp:queue/q', { prefetch: 5, signal: intake.signal });
    expect(ns(first.held.map((delivery) => delivery.message))).toEqual([1, 2, 3, 4, 5]);
    intake.abort();
    for (const index of [2, 0, 4, 1, 3]) first.held[index]?.nack(new Error('rejected'));
    const again: Message[] = [];
    const second = amqp.consume(parseEndpoint('amqp:queue/q')).subscribe((delivery) => {
      again.push(delivery.message);
      delivery.ack();
    });
    expect(ns(again)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(again.map((message) => message.headers.attempt)).toEqual([2, 2, 2, 2, 2, 1, 1, 1]);
    first.subscription.unsubscribe();
    second.unsubscribe();
  });

  it('unsubscribing hands unsettled deliveries back in place; a late ack of one is ignored', async () => {
    const amqp = broker();
    await publish(amqp, 'amqp:queue/q', numbered(4));
    const first = hold(amqp, 'amqp:queue/q', { prefetch: 2 });
    first.subscription.unsubscribe();
    first.held[0]?.ack();
    const second = hold(amqp, 'amqp:queue/q');
    expect(ns(second.held.map((delivery) => delivery.message))).toEqual([1, 2, 3, 4]);
    expect(second.held.map((delivery) => delivery.message.headers.attempt)).toEqual([2, 2, 1, 1]);
  });

  it('after maxDeliveries a nacked message goes to the dead-letter exchange with x-death, or is dropped and counted', async () => {
    const logger = recording();
    const amqp = broker({
      logger,
      maxDeliveries: 3,
      topology: {
        exchanges: [{ name: 'dlx', type: 'direct' }],
        queues: [{ name: 'work', deadLetterExchange: 'dlx', deadLetterRoutingKey: 'failed' }, { name: 'failed' }, { name: 'plain' }],
        bindings: [{ exchange: 'dlx', queue: 'failed', routingKey: 'failed' }],
      },
    });
    await publish(amqp, 'amqp:queue/work', numbered(1));
    await publish(amqp, 'amqp:queue/plain', numbered(1));
    const attempts: number[] = [];
    for (const queue of ['work', 'plain']) {
      amqp.consume(parseEndpoint(`amqp:queue/${queue}`)).subscribe((delivery) => {
        attempts.push(delivery.message.headers.attempt ?? 0);
        delivery.nack(new Error('cannot'));
      });
    }
    expect(attempts).toEqual([1, 2, 3, 1, 2, 3]);
    const [dead] = amqp.queue('failed');
    expect(dead?.body).toEqual({ n: 1 });
    expect(dead?.headers).toMatchObject({ 'x-first-death-reason': 'rejected', 'x-first-death-queue': 'work', 'x-first-death-exchange': '' });
    expect(JSON.parse(String(dead?.headers['x-death']))).toEqual([expect.objectContaining({ count: 1, reason: 'rejected', queue: 'work', 'routing-keys': ['work'] })]);
    expect(amqp.queueDepths().work).toMatchObject({ messages: 0, unacknowledged: 0, deadLettered: 1 });
    expect(amqp.queueDepths().plain).toMatchObject({ messages: 0, unacknowledged: 0, dropped: 1 });
    expect(logger.warnings).toHaveLength(2);
  });

  it('a quorum queue dead-letters past its deliveryLimit, whatever maxDeliveries says', async () => {
    const amqp = broker({ maxDeliveries: 100, topology: { queues: [{ name: 'q', type: 'quorum', deliveryLimit: 2, deadLetterExchange: '', deadLetterRoutingKey: 'dead' }, { name: 'dead' }] } });
    await publish(amqp, 'amqp:queue/q', numbered(1));
    const attempts: number[] = [];
    amqp.consume(parseEndpoint('amqp:queue/q')).subscribe((delivery) => {
      attempts.push(delivery.message.headers.attempt ?? 0);
      delivery.nack(new Error('cannot'));
    });
    expect(attempts).toEqual([1, 2, 3]);
    expect(amqp.queue('dead')).toHaveLength(1);
  });

  it('drops a dead letter that would cycle back to its queue without a rejection', async () => {
    const amqp = broker({ topology: { exchanges: [{ name: 'dlx', type: 'fanout' }], queues: [{ name: 'q', maxLength: 1, deadLetterExchange: 'dlx' }], bindings: [{ exchange: 'dlx', queue: 'q' }] } });
    await publish(amqp, 'amqp:queue/q', numbered(3));
    expect(ns(amqp.queue('q'))).toEqual([3]);
    expect(amqp.queueDepths().q).toMatchObject({ dropped: 2, deadLettered: 0 });
  });
});

describe('the in-memory broker consumes from exchanges and closes', () => {
  it('a consumer of an exchange gets a private queue bound with # on a topic exchange, deleted when it unsubscribes', async () => {
    const amqp = broker({ topology: flagship });
    const tap = hold(amqp, 'amqp:exchange/telemetry');
    const alertsOnly = hold(amqp, 'amqp:exchange/telemetry?bindingKey=alert.*');
    await publish(amqp, 'amqp:exchange/telemetry?routingKey=reading.d-1', numbered(1, 1));
    await publish(amqp, 'amqp:exchange/telemetry?routingKey=alert.d-1', numbered(1, 2));
    expect(ns(tap.held.map((delivery) => delivery.message))).toEqual([1, 2]);
    expect(ns(alertsOnly.held.map((delivery) => delivery.message))).toEqual([2]);
    expect(Object.keys(amqp.queueDepths()).filter((name) => name.startsWith('amq.gen-'))).toHaveLength(2);
    tap.subscription.unsubscribe();
    alertsOnly.subscription.unsubscribe();
    expect(Object.keys(amqp.queueDepths())).toEqual(['readings', 'alerts', 'summaries', 'invalid']);
  });

  it('close refuses publishes and stops intake; connect opens again with the messages kept', async () => {
    const amqp = broker({ topology: flagship });
    await publish(amqp, 'amqp:queue/readings', numbered(1));
    await amqp.close();
    await expect(publish(amqp, 'amqp:queue/readings', numbered(1))).rejects.toMatchObject({ code: 'NOT_CONNECTED' });
    await amqp.connect();
    await publish(amqp, 'amqp:queue/readings', numbered(1, 2));
    expect(ns(amqp.queue('readings'))).toEqual([1, 2]);
  });

  it('observe sees what enters a queue or an exchange, taking nothing', async () => {
    const amqp = broker({ topology: flagship });
    const intoReadings: Message[] = [];
    const intoExchange: Message[] = [];
    amqp.observe(parseEndpoint('amqp:queue/readings')).subscribe((message) => intoReadings.push(message));
    amqp.observe(parseEndpoint('amqp:exchange/telemetry')).subscribe((message) => intoExchange.push(message));
    await publish(amqp, 'amqp:exchange/telemetry?routingKey=reading.d-1', numbered(1, 1));
    await publish(amqp, 'amqp:exchange/telemetry?routingKey=alert.d-1', numbered(1, 2));
    expect(ns(intoReadings)).toEqual([1]);
    expect(ns(intoExchange)).toEqual([1, 2]);
    expect(intoReadings[0]?.headers.attempt).toBeUndefined();
    expect(amqp.queueDepths().readings?.messages).toBe(1);
  });
});

describe('amqpMemoryModule', () => {
  const running: TestIntegration[] = [];
  afterEach(async () => {
    for (const test of running.splice(0)) await test.stop();
  });

  it('binds its broker as the amqp: transport, logging through the container', async () => {
    const logger = recording();
    const module = amqpMemoryModule({ topology: flagship, defaultMaxLength: 1 });
    const container = new Container();
    container.bind<Logger>(Logger).toConstantValue(logger);
    container.load(module);
    const [transport] = container.getAll<{ scheme: string }>(Transport);
    expect(transport).toBe(module.broker);
    expect(transport?.scheme).toBe('amqp');
    await publish(module.broker, 'amqp:queue/readings', numbered(2));
    expect(logger.warnings).toEqual([expect.stringContaining('is full')]);
  });

  it('runs amqp: routes with nothing installed', async () => {
    const amqp = amqpMemoryModule({ topology: flagship });
    const test = await startTestIntegration({
      modules: [amqp],
      routes: [from<{ n: number }>('amqp:queue/summaries', { id: 'alerting' }).filter((message) => message.body.n > 1).to('amqp:exchange/telemetry?routingKey=alert.route')],
    });
    running.push(test);
    const alerts = test.kit.mock<{ n: number }>('amqp:queue/alerts');
    await test.kit.sendAll('amqp:queue/summaries', [{ n: 1 }, { n: 2 }, { n: 3 }]);
    await alerts.expect(2);
    expect(alerts.bodies()).toEqual([{ n: 2 }, { n: 3 }]);
    expect(amqp.broker.queueDepths().summaries).toMatchObject({ messages: 0, unacknowledged: 0 });
  });
});
