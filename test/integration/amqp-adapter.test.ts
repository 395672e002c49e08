import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { createIntegration, createMessage, from, retry, silentLogger, type Message } from '../../facade/index.ts';
import { parseEndpoint, type Delivery } from '../../src/spi.ts';
import { AmqpConfigurationError, amqpModule, AmqpTransport, UnroutableError } from '../../adapters/amqp/index.ts';
import { AMQP_URL, BrokerAdmin, connectedTransport, sleep, uniqueName, until } from './amqp-support.ts';

const admin = new BrokerAdmin();
const transports: AmqpTransport[] = [];
const open = async (options: ConstructorParameters<typeof AmqpTransport>[0] = {}): Promise<AmqpTransport> => {
  const transport = await connectedTransport(options);
  transports.push(transport);
  return transport;
};

afterEach(async () => {
  for (const transport of transports.splice(0)) await transport.close();
  await admin.cleanup();
});
afterAll(() => admin.close());

describe('amqp adapter against RabbitMQ', () => {
  it('declares the topology as specified (checked with passive declares)', async () => {
    const [exchange, topic, queue, quorum, dlx] = ['direct', 'topic', 'classic', 'quorum', 'dlx'].map(uniqueName) as [string, string, string, string, string];
    admin.track({ queues: [queue, quorum], exchanges: [exchange, topic, dlx] });
    await open({
      topology: {
        exchanges: [
          { name: exchange, type: 'direct' },
          { name: topic, type: 'topic' },
          { name: dlx, type: 'fanout' },
        ],
        queues: [
          { name: queue, messageTtlMs: 60_000, maxLength: 1000, overflow: 'reject-publish', deadLetterExchange: dlx },
          { name: quorum, type: 'quorum', deliveryLimit: 3, deadLetterExchange: dlx, deadLetterRoutingKey: 'dead' },
        ],
        bindings: [
          { exchange, queue, routingKey: 'k' },
          { exchange: topic, queue: quorum, routingKey: 'reading.#' },
        ],
      },
    });
    const channel = await admin.channel();
    await channel.checkExchange(exchange);
    await channel.checkExchange(topic);
    await channel.checkQueue(queue);
    await channel.checkQueue(quorum);
    // an equivalent re-declare succeeds; a different type fails with 406: the arguments are as specified
    await channel.assertQueue(quorum, { durable: true, arguments: { 'x-queue-type': 'quorum', 'x-delivery-limit': 3, 'x-dead-letter-exchange': dlx, 'x-dead-letter-routing-key': 'dead' } });
    await channel.assertQueue(queue, { durable: true, arguments: { 'x-message-ttl': 60_000, 'x-max-length': 1000, 'x-overflow': 'reject-publish', 'x-dead-letter-exchange': dlx } });
    await expect(channel.assertExchange(topic, 'direct', { durable: true })).rejects.toThrow(/PRECONDITION_FAILED/);
    // bindings route: a message to the topic exchange lands in the quorum queue
    const publisher = await open();
    await publisher.publish(parseEndpoint(`amqp:exchange/${topic}?routingKey=reading.d1`), [createMessage({ v: 1 })]);
    await publisher.publish(parseEndpoint(`amqp:exchange/${exchange}?routingKey=k`), [createMessage({ v: 2 })]);
    await until(async () => (await admin.messageCount(quorum)) === 1 && (await admin.messageCount(queue)) === 1, () => 'expected one message in each bound queue');
  });

  it('round-trips every mapped property', async () => {
    const queue = uniqueName('props');
    admin.track({ queues: [queue] });
    const transport = await open({ topology: { queues: [{ name: queue, maxPriority: 10 }] } });
    const now = Date.now();
    const sent = createMessage(
      { a: 1 },
      { headers: { correlationId: 'c-1', causationId: 'p-1', replyTo: 'replies', timestamp: now, expiresAt: now + 60_000, contentType: 'application/json', schema: 'x@1', traceparent: 'tp', type: 'order.placed', priority: 7, 'x-user': 'u', 'x-n': 3 } },
    );
    const endpoint = parseEndpoint(`amqp:queue/${queue}`);
    await transport.publish(endpoint, [sent]);
    // the AMQP properties themselves, as another client sees them
    const channel = await admin.channel();
    const raw = await channel.get(queue, { noAck: false });
    if (raw === false) throw new Error('no message');
    expect(raw.properties).toMatchObject({ messageId: sent.id, correlationId: 'c-1', replyTo: 'replies', contentType: 'application/json', type: 'order.placed', priority: 7, deliveryMode: 2, timestamp: Math.floor(now / 1000) });
    expect(Number(raw.properties.expiration)).toBeGreaterThan(50_000);
    expect(raw.properties.headers).toMatchObject({ causationId: 'p-1', schema: 'x@1', traceparent: 'tp', 'x-user': 'u', 'x-n': 3 });
    channel.nack(raw, false, true);
    await channel.close();
    // and back through the adapter
    const got: Message[] = [];
    const subscription = transport.consume(endpoint).subscribe((delivery) => {
      got.push(delivery.message);
      delivery.ack();
    });
    await until(() => got.length === 1, () => 'expected the message');
    subscription.unsubscribe();
    expect(got[0]?.id).toBe(sent.id);
    expect(got[0]?.body).toEqual({ a: 1 });
    const { attempt: _attempt, ...headers } = sent.headers;
    expect(got[0]?.headers).toMatchObject(headers);
  });

  it('passes Buffer and text bodies through unchanged', async () => {
    const queue = uniqueName('bodies');
    admin.track({ queues: [queue] });
    const transport = await open();
    const endpoint = parseEndpoint(`amqp:queue/${queue}`);
    await transport.publish(endpoint, [createMessage(Buffer.from([0, 1, 2, 255])), createMessage('héllo', { headers: { contentType: 'text/plain' } })]);
    const got: Message[] = [];
    const subscription = transport.consume(endpoint).subscribe((delivery) => {
      got.push(delivery.message);
      delivery.ack();
    });
    await until(() => got.length === 2, () => 'expected 2');
    subscription.unsubscribe();
    expect(got[0]?.body).toEqual(Buffer.from([0, 1, 2, 255]));
    expect(got[0]?.headers.contentType).toBe('application/octet-stream');
    expect(got[1]?.body).toBe('héllo');
  });

  it('an unroutable mandatory publish rejects with UnroutableError', async () => {
    const exchange = uniqueName('nowhere');
    admin.track({ exchanges: [exchange] });
    const transport = await open({ topology: { exchanges: [{ name: exchange, type: 'topic' }] } });
    const error = await transport.publish(parseEndpoint(`amqp:exchange/${exchange}?routingKey=no.binding`), [createMessage({ x: 1 })]).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UnroutableError);
    expect((error as UnroutableError).code).toBe('UNROUTABLE');
    // with mandatory=false the broker drops it, as asked
    await expect(transport.publish(parseEndpoint(`amqp:exchange/${exchange}?routingKey=no.binding&mandatory=false`), [createMessage({ x: 1 })])).resolves.toBeUndefined();
    // publishing to an exchange that does not exist is a typed error too, not a hang
    await expect(transport.publish(parseEndpoint(`amqp:exchange/${uniqueName('missing')}`), [createMessage({ x: 1 })])).rejects.toBeInstanceOf(AmqpConfigurationError);
  });

  it('validates options and endpoints with clear errors', async () => {
    expect(() => new AmqpTransport({ topology: { queues: [{ name: 'q', type: 'classic', deliveryLimit: 3 }] } }, silentLogger)).toThrow(AmqpConfigurationError);
    expect(() => new AmqpTransport({ url: 'http://x' }, silentLogger)).toThrow(/url must match pattern/);
    expect(() => new AmqpTransport({ topology: { exchanges: [{ name: 'e', type: 'bogus' as 'topic' }] } }, silentLogger)).toThrow(/direct, topic, fanout, headers/);
    const transport = await open();
    await expect(transport.publish(parseEndpoint('amqp:queue/q?routingKey=x'), [createMessage(1)])).rejects.toThrow(/exchange endpoints only/);
    await expect(transport.publish(parseEndpoint('amqp:exchange/e?colour=red'), [createMessage(1)])).rejects.toThrow(/unknown option 'colour'/);
  });

  it('never shows the password in errors', async () => {
    const transport = new AmqpTransport({ url: 'amqp://guest:sup3r-secret@127.0.0.1:1/', connectTimeoutMs: 500 }, silentLogger);
    const error = await transport.connect().catch((e: unknown) => e as Error);
    expect(error).toBeInstanceOf(Error);
    expect(String((error as Error).message)).not.toContain('sup3r-secret');
    expect(String((error as Error).message)).toContain('guest:***@');
  });

  it('prefetch bounds the deliveries in flight', async () => {
    const queue = uniqueName('prefetch');
    admin.track({ queues: [queue] });
    const transport = await open();
    const endpoint = parseEndpoint(`amqp:queue/${queue}`);
    await transport.publish(endpoint, Array.from({ length: 50 }, (_, i) => createMessage(i)));
    const held: Delivery[] = [];
    const subscription = transport.consume(endpoint, { prefetch: 7 }).subscribe((delivery) => held.push(delivery));
    await until(() => held.length === 7, () => `expected 7, got ${held.length}`);
    await sleep(300);
    expect(held.length).toBe(7);
    for (const delivery of held.splice(0, 3)) delivery.ack();
    await until(() => held.length === 7, () => `expected 7 again, got ${held.length}`);
    await sleep(300);
    expect(held.length).toBe(7);
    subscription.unsubscribe();
  });

  it('a failing message lands in the DLX queue with error headers after N attempts; other messages flow', async () => {
    const [input, output, dlq] = ['in', 'out', 'dlq'].map(uniqueName) as [string, string, string];
    admin.track({ queues: [input, output, dlq] });
    const app = createIntegration({
      logger: silentLogger,
      modules: [amqpModule({ url: AMQP_URL, topology: { queues: [{ name: input }, { name: output }, { name: dlq }] } })],
      routes: [
        from<{ n: number }>(`amqp:queue/${input}`, { id: 'dlx-route' })
          .deadLetterChannel(`amqp:queue/${dlq}`, { retry: retry({ maxAttempts: 3, initialDelayMs: 10 }) })
          .transform((m) => {
            if (m.body.n === 13) throw new Error('unlucky');
            return m.body;
          })
          .to(`amqp:queue/${output}`),
      ],
    });
    await app.start();
    try {
      const transport = app.transport<AmqpTransport>('amqp');
      await transport.publish(parseEndpoint(`amqp:queue/${input}`), Array.from({ length: 20 }, (_, n) => createMessage({ n })));
      await until(async () => (await admin.messageCount(output)) === 19 && (await admin.messageCount(dlq)) === 1, () => 'expected 19 out, 1 dead');
      const channel = await admin.channel();
      const dead = await channel.get(dlq, { noAck: true });
      if (dead === false) throw new Error('no dead letter');
      expect(JSON.parse(dead.content.toString())).toEqual({ n: 13 });
      expect(dead.properties.headers).toMatchObject({ 'x-interchange-error': 'unlucky', 'x-interchange-route': 'dlx-route', 'x-interchange-attempts': 3 });
      expect(dead.properties.headers?.['x-interchange-error-code']).toBeTypeOf('string');
    } finally {
      await app.stop();
    }
  });

  it('a poison message on a quorum queue ends in the broker DLX after the configured attempts while other traffic flows', async () => {
    const [input, dlx, dlq] = ['poison', 'poison-dlx', 'poison-dlq'].map(uniqueName) as [string, string, string];
    admin.track({ queues: [input, dlq], exchanges: [dlx] });
    const transport = await open({
      maxDeliveries: 4,
      topology: {
        exchanges: [{ name: dlx, type: 'fanout' }],
        queues: [{ name: input, type: 'quorum', deadLetterExchange: dlx, deliveryLimit: 10 }, { name: dlq }],
        bindings: [{ exchange: dlx, queue: dlq }],
      },
    });
    const endpoint = parseEndpoint(`amqp:queue/${input}`);
    const attempts: number[] = [];
    let good = 0;
    const subscription = transport.consume(endpoint, { prefetch: 10 }).subscribe((delivery) => {
      const body = delivery.message.body as { poison?: boolean };
      if (body.poison === true) {
        attempts.push(delivery.message.headers.attempt ?? 0);
        delivery.nack(new Error('poison'));
      } else {
        good += 1;
        delivery.ack();
      }
    });
    await transport.publish(endpoint, [createMessage({ poison: true }), ...Array.from({ length: 100 }, (_, i) => createMessage({ i }))]);
    await until(async () => good === 100 && (await admin.messageCount(dlq)) === 1, () => `good ${good}, attempts ${attempts.join(',')}`);
    await sleep(300);
    subscription.unsubscribe();
    expect(attempts).toEqual([1, 2, 3, 4]);
    const channel = await admin.channel();
    const dead = await channel.get(dlq, { noAck: true });
    if (dead === false) throw new Error('no dead letter');
    expect(JSON.parse(dead.content.toString())).toEqual({ poison: true });
    expect(JSON.stringify(dead.properties.headers?.['x-death'])).toContain('rejected');
  });

  it('an undecodable body is rejected to the dead-letter exchange at once; the stream goes on', async () => {
    const [queue, dlq] = ['undecodable', 'undecodable-dlq'].map(uniqueName) as [string, string];
    admin.track({ queues: [queue, dlq] });
    const transport = await open({ topology: { queues: [{ name: queue, deadLetterExchange: '', deadLetterRoutingKey: dlq }, { name: dlq }] } });
    const channel = await admin.channel();
    channel.sendToQueue(queue, Buffer.from('{not json'), { contentType: 'application/json', messageId: 'bad' });
    await channel.close();
    const endpoint = parseEndpoint(`amqp:queue/${queue}`);
    await transport.publish(endpoint, [createMessage({ ok: true })]);
    const got: Message[] = [];
    let failed: unknown;
    const subscription = transport.consume(endpoint).subscribe({
      next: (delivery) => {
        got.push(delivery.message);
        delivery.ack();
      },
      error: (error: unknown) => {
        failed = error;
      },
    });
    await until(async () => got.length === 1 && (await admin.messageCount(dlq)) === 1, () => `got ${got.length}`);
    subscription.unsubscribe();
    expect(failed).toBeUndefined();
    expect(got[0]?.body).toEqual({ ok: true });
  });

  it('a consumer cancelled by the server (queue deleted) resubscribes by itself', async () => {
    const queue = uniqueName('cancel');
    admin.track({ queues: [queue] });
    const transport = await open({ reconnect: { initialDelayMs: 50, maxDelayMs: 200 } });
    const endpoint = parseEndpoint(`amqp:queue/${queue}`);
    const got: Message[] = [];
    const subscription = transport.consume(endpoint).subscribe((delivery) => {
      got.push(delivery.message);
      delivery.ack();
    });
    await transport.publish(endpoint, [createMessage({ n: 1 })]);
    await until(() => got.length === 1, () => 'first message');
    const channel = await admin.channel();
    await channel.deleteQueue(queue);
    await channel.close();
    // the consumer re-declares the queue (declareQueues) and consumes again; the publisher re-checks it
    await until(async () => {
      await transport.publish(endpoint, [createMessage({ n: 2 })]).catch(() => undefined);
      return got.length >= 2;
    }, () => `after the delete, got ${got.length}`);
    subscription.unsubscribe();
    expect((got[1]?.body as { n: number }).n).toBe(2);
  });

  it('request-reply round trip over direct reply-to, and a typed timeout', async () => {
    const service = uniqueName('rpc');
    const silent = uniqueName('rpc-silent');
    admin.track({ queues: [service, silent] });
    const app = createIntegration({
      logger: silentLogger,
      modules: [amqpModule({ url: AMQP_URL, topology: { queues: [{ name: service }, { name: silent }] } })],
      routes: [
        from<{ x: number }>(`amqp:queue/${service}`, { id: 'responder' })
          .transform((m) => ({ doubled: m.body.x * 2 }))
          .to('amqp:queue/{replyTo}'),
      ],
    });
    await app.start();
    try {
      const amqp = app.transport<AmqpTransport>('amqp');
      const reply = await amqp.request<{ doubled: number }>(`amqp:queue/${service}`, createMessage({ x: 21 }), { timeoutMs: 5_000 });
      expect(reply.body).toEqual({ doubled: 42 });
      const error = await amqp.request(`amqp:queue/${silent}`, createMessage({ x: 1 }), { timeoutMs: 300 }).catch((e: unknown) => e);
      expect((error as { code?: string }).code).toBe('TIMEOUT');
    } finally {
      await app.stop();
    }
  });
});
