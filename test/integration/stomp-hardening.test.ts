import { Client } from '@stomp/stompjs';
import { TCPWrapper } from '@stomp/tcp-wrapper';
import { afterAll, describe, expect, it } from 'vitest';
import { StompBrokerError, StompSubscribeRefusedError, type StompTransport } from '../../adapters/stomp/index.ts';
import { createServer, connect as tcpConnect, type Socket } from 'node:net';
import { createMessage, parseEndpoint, TimeoutError, type Delivery, type Message } from '../../src/core/index.ts';
import { until } from '../support/wait.ts';
import { connectedTransport, deleteRabbitQueues, RABBITMQ_STOMP_URL, rabbitQueueDepth, recordingLogger, runTag } from './stomp-support.ts';

// Defects a review found in the STOMP adapter, each against RabbitMQ's STOMP plugin (61613):
// dead-lettering that stalled the queue, headers and SENDs the broker refuses, refused subscriptions,
// redelivery counts foreign producers could break or forge, oversized messages kept whole, close order.
const tag = runTag('hard');
const rabbitQueues = new Set<string>();
const transports: StompTransport[] = [];
const queue = (label: string): string => {
  const name = `${tag}-${label}`;
  rabbitQueues.add(name).add(`DLQ.${name}`);
  return name;
};
const open = async (options: { maxMessageBytes?: number } = {}, log = recordingLogger()): Promise<StompTransport> => {
  const transport = await connectedTransport({ url: RABBITMQ_STOMP_URL, ...options }, log);
  transports.push(transport);
  return transport;
};

/** A raw STOMP client, as a foreign (non-Interchange) producer would be. */
async function rawSend(destination: string, headers: Record<string, string>, body: string): Promise<void> {
  const client = new Client({ webSocketFactory: () => new TCPWrapper('127.0.0.1', 61613), connectHeaders: { login: 'guest', passcode: 'guest', host: '/' }, reconnectDelay: 0, debug: () => undefined });
  await new Promise<void>((resolve, reject) => {
    client.onConnect = () => {
      client.watchForReceipt('raw-1', () => resolve());
      client.publish({ destination, headers: { ...headers, receipt: 'raw-1' }, body });
    };
    client.onStompError = (frame) => reject(new Error(frame.headers.message));
    client.activate();
  });
  await client.deactivate();
}

afterAll(async () => {
  for (const transport of transports) await transport.close();
  await deleteRabbitQueues(rabbitQueues);
});

describe('STOMP dead-lettering', () => {
  it('a dead-letter SEND the broker refuses does not close the consumer\'s connection: the other messages are delivered once and acked', async () => {
    const name = queue('dlq-refused');
    const log = recordingLogger();
    const rabbit = await open({}, log);
    const base = `stomp:queue/${name}?queueType=quorum&headers=all`;
    const good = Array.from({ length: 20 }, (_, index) => createMessage({ index }));
    const poison = createMessage({ poison: true });
    await rabbit.publish(parseEndpoint(base), [poison, ...good]);
    const counts = new Map<string, number>();
    rabbit.consume(parseEndpoint(`${base}&maxDeliveries=1&deadLetter=/exchange/${tag}-missing-exchange`), { prefetch: 50 }).subscribe((delivery) => {
      counts.set(delivery.message.id, (counts.get(delivery.message.id) ?? 0) + 1);
      if (delivery.message.id === poison.id) delivery.nack(new Error('poison'));
      else delivery.ack();
    });
    await until(() => (counts.get(poison.id) ?? 0) >= 3 && good.every((message) => counts.has(message.id)), () => `poison ${counts.get(poison.id) ?? 0} times, ${counts.size} distinct`, 20_000);
    expect(good.map((message) => counts.get(message.id))).toEqual(good.map(() => 1));
    expect(log.lines.some((line) => line.includes('cannot dead-letter a delivery'))).toBe(true);
  });
});

describe('STOMP headers and SENDs the broker refuses', () => {
  it('a message header named CC (or BCC) is escaped: RabbitMQ takes it, concurrent publishes succeed, the header round-trips', async () => {
    const name = queue('cc');
    const rabbit = await open();
    const uri = `stomp:queue/${name}?headers=all`;
    const others = Array.from({ length: 10 }, (_, index) => createMessage({ index }));
    const odd = createMessage({ odd: true }, { headers: { CC: 'somewhere', BCC: 'elsewhere', transformation: 'jms-map-json' } });
    const outcomes = await Promise.allSettled([rabbit.publish(parseEndpoint(uri), others.slice(0, 5)), rabbit.publish(parseEndpoint(uri), [odd]), rabbit.publish(parseEndpoint(uri), others.slice(5))]);
    expect(outcomes.map((outcome) => outcome.status)).toEqual(['fulfilled', 'fulfilled', 'fulfilled']);
    const got: Message[] = [];
    rabbit.consume(parseEndpoint(uri), { prefetch: 20 }).subscribe((delivery) => {
      got.push(delivery.message);
      delivery.ack();
    });
    await until(() => got.length === 11, () => `got ${got.length} of 11`);
    const back = got.find((message) => message.id === odd.id);
    expect(back?.headers.CC).toBe('somewhere');
    expect(back?.headers.BCC).toBe('elsewhere');
    expect(back?.headers.transformation).toBe('jms-map-json');
  });

  it('a SEND to a missing exchange rejects with a permanent StompBrokerError carrying the broker\'s verdict', async () => {
    const rabbit = await open();
    const error: unknown = await rabbit.publish(parseEndpoint(`stomp:exchange/${tag}-no-such-exchange/key`), [createMessage({ a: 1 })]).then(
      () => undefined,
      (rejection: unknown) => rejection,
    );
    expect(error).toBeInstanceOf(StompBrokerError);
    expect((error as StompBrokerError).brokerMessage).toBe('not_found');
    expect((error as StompBrokerError).permanent).toBe(true);
  });
});

describe('STOMP subscriptions the broker refuses', () => {
  it('a SUBSCRIBE to a missing exchange, or with an inequivalent queue type, fails the Observable with StompSubscribeRefusedError', async () => {
    const name = queue('sub-refused');
    const rabbit = await open();
    await rabbit.publish(parseEndpoint(`stomp:queue/${name}?queueType=quorum`), [createMessage({ a: 1 })]);
    const errors: unknown[] = [];
    rabbit.consume(parseEndpoint(`stomp:queue/${name}?queueType=classic`), { prefetch: 10 }).subscribe({ error: (error: unknown) => errors.push(error) });
    rabbit.consume(parseEndpoint(`stomp:exchange/${tag}-no-such-exchange/key`), { prefetch: 10 }).subscribe({ error: (error: unknown) => errors.push(error) });
    await until(() => errors.length === 2, () => `${errors.length} of 2 subscriptions failed`, 15_000);
    for (const error of errors) {
      expect(error).toBeInstanceOf(StompSubscribeRefusedError);
      expect((error as StompSubscribeRefusedError).permanent).toBe(true);
    }
    expect(errors.map((error) => (error as StompSubscribeRefusedError).brokerMessage).sort()).toEqual(['not_found', 'precondition_failed']);
  });
});

describe('STOMP redelivery counts for foreign producers', () => {
  const poisonRun = async (name: string, uri: string): Promise<{ attempts: unknown[]; dead: Delivery[] }> => {
    const rabbit = await open();
    const attempts: unknown[] = [];
    rabbit.consume(parseEndpoint(uri), { prefetch: 10 }).subscribe((delivery) => {
      attempts.push(delivery.message.headers.attempt);
      delivery.nack(new Error('transient failure'));
    });
    const dead: Delivery[] = [];
    rabbit.consume(parseEndpoint(`stomp:queue/DLQ.${name}`), { prefetch: 10 }).subscribe((delivery) => {
      dead.push(delivery);
      delivery.ack();
    });
    await until(() => dead.length === 1, () => `no dead letter after ${attempts.length} deliveries (attempts ${[...new Set(attempts)].join(',')})`, 15_000);
    return { attempts, dead };
  };

  it('classic queue, no ic-id (RabbitMQ\'s message-id differs per delivery): attempts still reach maxDeliveries', async () => {
    const name = queue('foreign-classic');
    await rawSend(`/queue/${name}`, { 'content-type': 'application/json' }, '{"poison":true}');
    const { attempts, dead } = await poisonRun(name, `stomp:queue/${name}?maxDeliveries=3`);
    expect(attempts).toEqual([1, 2, 3]);
    expect(dead[0]?.message.body).toEqual({ poison: true });
  });

  it('quorum queue: a producer\'s own x-delivery-count is not believed on a first delivery', async () => {
    const name = queue('forged');
    await rawSend(`/queue/${name}`, { 'content-type': 'application/json', 'x-queue-type': 'quorum', 'x-delivery-count': '1000' }, '{"forged":true}');
    const { attempts } = await poisonRun(name, `stomp:queue/${name}?queueType=quorum&maxDeliveries=3`);
    expect(attempts).toEqual([1, 2, 3]);
  });
});

describe('STOMP receive limits', () => {
  it('a MESSAGE over maxMessageBytes is handed over as an intake error without its body', async () => {
    const name = queue('big');
    const publisher = await open();
    const consumer = await open({ maxMessageBytes: 1024 });
    await publisher.publish(parseEndpoint(`stomp:queue/${name}`), [createMessage(Buffer.alloc(256 * 1024, 7))]);
    const got: Delivery[] = [];
    consumer.consume(parseEndpoint(`stomp:queue/${name}`), { prefetch: 5 }).subscribe((delivery) => {
      got.push(delivery);
      delivery.ack();
    });
    await until(() => got.length === 1, () => 'expected the oversized message');
    expect(got[0]?.intakeError?.name).toBe('StompDecodeError');
    expect((got[0]?.message.body as Buffer).length).toBe(0);
  });
});

describe('STOMP close', () => {
  it('close waits for publishes in flight before ending subscriptions, so their sources are acked', async () => {
    const [source, sink] = [queue('close-src'), queue('close-sink')];
    const seed = await open();
    await seed.publish(parseEndpoint(`stomp:queue/${source}`), Array.from({ length: 20 }, (_, index) => createMessage({ index })));
    const rabbit = await connectedTransport({ url: RABBITMQ_STOMP_URL });
    let received = 0;
    let closing: Promise<void> | undefined;
    rabbit.consume(parseEndpoint(`stomp:queue/${source}`), { prefetch: 20 }).subscribe((delivery) => {
      received += 1;
      rabbit.publish(parseEndpoint(`stomp:queue/${sink}`), [delivery.message]).then(
        () => delivery.ack(),
        (error: unknown) => delivery.nack(error as Error),
      );
      if (received === 20) closing = rabbit.close();
    });
    await until(() => closing !== undefined, () => `received ${received} of 20`);
    await closing;
    await until(async () => (await rabbitQueueDepth(sink)) === 20, () => 'the sink did not get 20');
    await until(async () => (await rabbitQueueDepth(source)) === 0, () => 'the source kept messages whose copies were published: their ACKs were dropped');
  });
});

describe('STOMP publish deadline (one timer per publish, not per message)', () => {
  it('RECEIPTs that never come fail every SEND of the call with TimeoutError; an empty publish resolves', async () => {
    const name = queue('deadline');
    // a proxy to RabbitMQ's STOMP port that, once held, forwards nothing more from the broker (its RECEIPTs are lost)
    let held = false;
    const sockets = new Set<Socket>();
    const proxy = createServer((client) => {
      const upstream = tcpConnect(61613, '127.0.0.1');
      for (const socket of [client, upstream]) {
        sockets.add(socket);
        socket.on('error', () => undefined);
      }
      client.pipe(upstream);
      upstream.on('data', (chunk: Buffer) => {
        if (!held) client.write(chunk);
      });
    });
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    try {
      const port = (proxy.address() as { port: number }).port;
      const rabbit = await connectedTransport({ url: `stomp://guest:guest@127.0.0.1:${port}`, heartbeatMs: 120_000, publishTimeoutMs: 1_500 });
      transports.push(rabbit);
      const endpoint = parseEndpoint(`stomp:queue/${name}`);
      await rabbit.publish(endpoint, [createMessage({ before: true })]);
      await rabbit.publish(endpoint, []);
      held = true;
      const error: unknown = await rabbit.publish(endpoint, [createMessage({ n: 1 }), createMessage({ n: 2 }), createMessage({ n: 3 })]).then(
        () => undefined,
        (rejection: unknown) => rejection,
      );
      expect(error).toBeInstanceOf(TimeoutError);
      expect(await rabbit.publish(endpoint, []).then(() => 'resolved')).toBe('resolved');
      // the broker took them (only its RECEIPTs were lost): at-least-once, a resend would duplicate
      await until(async () => (await rabbitQueueDepth(name)) === 4, () => 'the broker did not store the 4 SENDs');
    } finally {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => proxy.close(() => resolve()));
    }
  });
});
