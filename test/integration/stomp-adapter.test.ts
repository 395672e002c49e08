import { Client } from '@stomp/stompjs';
import { TCPWrapper } from '@stomp/tcp-wrapper';
import { afterAll, describe, expect, it } from 'vitest';
import { from } from '../../facade/index.ts';
import { startTestIntegration } from '../../facade/testing/index.ts';
import { StompBrokerError, StompConfigurationError, StompConnectRefusedError, StompTransport, StompUnencodableError, stompModule } from '../../adapters/stomp/index.ts';
import { createMessage, NotConnectedError, parseEndpoint, PartialPublishError, type Delivery, type Message } from '../../src/core/index.ts';
import { sleep, until } from '../support/wait.ts';
import { ACTIVEMQ_STOMP_URL, connectedTransport, deleteRabbitQueues, RABBITMQ_STOMP_URL, rabbitQueueDepth, recordingLogger, runTag } from './stomp-support.ts';

// The STOMP adapter against RabbitMQ's STOMP plugin (61613) and ActiveMQ (61623): routes end to end,
// dead-lettering on each broker, untrusted producers, options and connection errors.
const tag = runTag('adapter');
const rabbitQueues = new Set<string>();
const transports: StompTransport[] = [];
const queue = (label: string): string => {
  const name = `${tag}-${label}`;
  rabbitQueues.add(name).add(`DLQ.${name}`);
  return name;
};
const open = async (url: string, scheme?: string): Promise<StompTransport> => {
  const transport = await connectedTransport({ url, ...(scheme === undefined ? {} : { scheme }) });
  transports.push(transport);
  return transport;
};
const collect = (transport: StompTransport, uri: string, settle: (delivery: Delivery) => void = (delivery) => delivery.ack()): Delivery[] => {
  const got: Delivery[] = [];
  transport.consume(parseEndpoint(uri), { prefetch: 20 }).subscribe((delivery) => {
    got.push(delivery);
    settle(delivery);
  });
  return got;
};
const numbered = (count: number): Message[] => Array.from({ length: count }, (_, index) => createMessage({ n: index }, { headers: { 'x-test': `m${index}` } }));

/** A raw STOMP client, as a foreign (non-Interchange) producer would be. */
async function rawSend(url: string, destination: string, headers: Record<string, string>, body: string): Promise<void> {
  const { hostname, port, username, password } = new URL(url);
  const client = new Client({ webSocketFactory: () => new TCPWrapper(hostname, Number(port)), connectHeaders: username === '' ? {} : { login: username, passcode: password, host: '/' }, reconnectDelay: 0, debug: () => undefined });
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

describe('StompTransport in a route', () => {
  it('moves messages RabbitMQ → ActiveMQ (two STOMP transports, schemes stomp and activemq), acking the source after the RECEIPT', async () => {
    const [source, destination] = [queue('route-in'), `${tag}-route-out`];
    const { stop } = await startTestIntegration({
      modules: [stompModule({ url: RABBITMQ_STOMP_URL }), stompModule({ url: ACTIVEMQ_STOMP_URL, scheme: 'activemq' })],
      routes: [from(`stomp:queue/${source}?queueType=quorum&headers=all`, { id: 'hS-stomp-route' }).to(`activemq:queue/${destination}`)],
    });
    try {
      const rabbit = await open(RABBITMQ_STOMP_URL);
      const sent = numbered(50);
      await rabbit.publish(parseEndpoint(`stomp:queue/${source}?queueType=quorum`), sent);
      const activemq = await open(ACTIVEMQ_STOMP_URL, 'activemq');
      const got = collect(activemq, `activemq:queue/${destination}?headers=all`);
      await until(() => got.length === 50, () => `expected 50 messages at ActiveMQ, got ${got.length}`, 20_000);
      expect(got.map((delivery) => delivery.message.id)).toEqual(sent.map((message) => message.id));
      expect(got[7]?.message.headers['x-test']).toBe('m7');
      await until(async () => (await rabbitQueueDepth(source)) === 0, () => 'the source queue was not drained');
    } finally {
      await stop();
    }
  });
});

describe('StompTransport redelivery and dead letters', () => {
  it('RabbitMQ: a message nacked maxDeliveries times goes to /queue/DLQ.<name> with the reason, attempts counted by the quorum queue', async () => {
    const name = queue('dead');
    const rabbit = await open(RABBITMQ_STOMP_URL);
    const [sent] = numbered(1) as [Message];
    await rabbit.publish(parseEndpoint(`stomp:queue/${name}?queueType=quorum`), [sent]);
    const attempts: number[] = [];
    collect(rabbit, `stomp:queue/${name}?queueType=quorum&maxDeliveries=3&headers=all`, (delivery) => {
      attempts.push(delivery.message.headers.attempt ?? 0);
      delivery.nack(new Error('cannot: a: reason\\with\nlines'));
    });
    const dead = collect(rabbit, `stomp:queue/DLQ.${name}?headers=all`);
    await until(() => dead.length === 1, () => 'expected the dead letter', 15_000);
    expect(attempts).toEqual([1, 2, 3]);
    const letter = dead[0]?.message;
    expect(letter?.id).toBe(sent.id);
    expect(letter?.body).toEqual(sent.body);
    expect(letter?.headers['x-test']).toBe('m0');
    // the reason as clipErrorText leaves it (line breaks become spaces); ':' and '\\' survive STOMP's escaping
    expect(letter?.headers['x-interchange-reason']).toBe('cannot: a: reason\\with lines');
    expect(letter?.headers['x-interchange-attempts']).toBe(3);
    expect(letter?.headers['x-interchange-source']).toBe(`/queue/${name}`);
    await sleep(300);
    expect(attempts).toHaveLength(3);
  });

  it('RabbitMQ classic queue: attempt counts this process\'s nacks (the broker only flags redelivered)', async () => {
    const name = queue('classic');
    const rabbit = await open(RABBITMQ_STOMP_URL);
    await rabbit.publish(parseEndpoint(`stomp:queue/${name}`), numbered(1));
    const attempts: number[] = [];
    collect(rabbit, `stomp:queue/${name}?maxDeliveries=3&headers=all`, (delivery) => {
      attempts.push(delivery.message.headers.attempt ?? 0);
      delivery.nack(new Error('no'));
    });
    const dead = collect(rabbit, `stomp:queue/DLQ.${name}?headers=all`);
    await until(() => dead.length === 1, () => 'expected the dead letter', 15_000);
    expect(attempts).toEqual([1, 2, 3]);
  });

  it('ActiveMQ: a nack is a poison ack — the broker moves the message to DLQ.<queue> at once, headers intact', async () => {
    const name = `${tag}-amq-dead`;
    const activemq = await open(ACTIVEMQ_STOMP_URL);
    const [sent] = numbered(1) as [Message];
    await activemq.publish(parseEndpoint(`stomp:queue/${name}`), [sent]);
    const got = collect(activemq, `stomp:queue/${name}?headers=all`, (delivery) => delivery.nack(new Error('no')));
    const dead = collect(activemq, `stomp:queue/DLQ.${name}?headers=all`);
    await until(() => dead.length === 1, () => 'expected the message in DLQ', 15_000);
    expect(got).toHaveLength(1);
    expect(dead[0]?.message.id).toBe(sent.id);
    expect(dead[0]?.message.headers['x-test']).toBe('m0');
  });
});

describe('StompTransport and foreign producers', () => {
  it('by default takes no id or header of a foreign producer but content-type and the allow-list; broker headers never', async () => {
    for (const [url, scheme] of [[RABBITMQ_STOMP_URL, 'stomp'], [ACTIVEMQ_STOMP_URL, 'activemq']] as const) {
      const name = queue(`foreign-${scheme}`);
      const transport = await open(url, scheme);
      await rawSend(url, `/queue/${name}`, { 'content-type': 'application/json', 'ic-id': 'forged-id', 'x-interchange-route': 'forged', attempt: '99', tenant: 'acme', secret: 's', 'ic-h-correlationId': 'forged', stompDestination: '/queue/elsewhere' }, '{"a":1}');
      const got = collect(transport, `${scheme}:queue/${name}?allowHeaders=tenant,attempt,message-id,x-interchange-route,subscription`);
      await until(() => got.length === 1, () => `expected the foreign message on ${scheme}`);
      const message = got[0]?.message as Message;
      expect(message.id).not.toBe('forged-id');
      expect(message.body).toEqual({ a: 1 });
      expect(message.headers).toEqual({ contentType: 'application/json', tenant: 'acme', attempt: 1, stompDestination: `/queue/${name}` });
    }
  });

  it('a body that does not parse though its content type says JSON is handed over as an intake error, not dropped', async () => {
    const name = queue('bad-json');
    const rabbit = await open(RABBITMQ_STOMP_URL);
    await rawSend(RABBITMQ_STOMP_URL, `/queue/${name}`, { 'content-type': 'application/json' }, '{not json');
    const got = collect(rabbit, `stomp:queue/${name}`);
    await until(() => got.length === 1, () => 'expected the message');
    expect(got[0]?.intakeError?.name).toBe('StompDecodeError');
    expect(Buffer.isBuffer(got[0]?.message.body)).toBe(true);
  });
});

describe('StompTransport encoding', () => {
  it('round-trips binary bodies (NUL bytes included), text, and header values STOMP must escape', async () => {
    for (const [url, scheme] of [[RABBITMQ_STOMP_URL, 'stomp'], [ACTIVEMQ_STOMP_URL, 'activemq']] as const) {
      const name = queue(`bytes-${scheme}`);
      const transport = await open(url, scheme);
      const bytes = Buffer.from([0, 1, 2, 0, 255, 254, 10, 0]);
      const tricky = { colon: 'a:b', newline: 'line1\nline2\r\n', backslash: 'C:\\temp\\n', padded: '  spaced  ', unicode: 'ünïcødé ✓', empty: '' };
      const sent = [
        createMessage(bytes),
        createMessage('plain text', { headers: { contentType: 'text/plain; charset=utf-8' } }),
        createMessage({ ok: true }, { headers: { ...tricky, type: 'order', priority: 7, timestamp: 1_700_000_000_000, 'ic-own': 'x' } }),
      ];
      await transport.publish(parseEndpoint(`${scheme}:queue/${name}`), sent);
      const got = collect(transport, `${scheme}:queue/${name}?headers=all`);
      await until(() => got.length === 3, () => `expected 3 messages on ${scheme}`);
      expect(got[0]?.message.body).toEqual(bytes);
      expect(got[1]?.message.body).toBe('plain text');
      expect(got[2]?.message.headers).toMatchObject({ ...tricky, type: 'order', priority: 7, timestamp: 1_700_000_000_000, 'ic-own': 'x' });
    }
  });

  it('an unencodable message fails alone (PartialPublishError), the others are sent', async () => {
    const name = queue('unencodable');
    const rabbit = await open(RABBITMQ_STOMP_URL);
    const good = numbered(2);
    const bad = createMessage({ x: 1 }, { headers: { 'bad:name': 'v' } });
    const publishing = rabbit.publish(parseEndpoint(`stomp:queue/${name}`), [good[0] as Message, bad, good[1] as Message]);
    const error = await publishing.then(() => undefined, (caught: unknown) => caught);
    expect(error).toBeInstanceOf(PartialPublishError);
    expect((error as PartialPublishError).failures.get(1)).toBeInstanceOf(StompUnencodableError);
    const got = collect(rabbit, `stomp:queue/${name}?headers=all`);
    await until(() => got.length === 2, () => 'expected the two good messages');
  });
});

describe('StompTransport options and connection errors', () => {
  it('refuses a typo in endpoint options with "did you mean", and unknown destinations', async () => {
    const rabbit = await open(RABBITMQ_STOMP_URL);
    await expect(rabbit.publish(parseEndpoint(`stomp:queue/${tag}-x?queuType=quorum`), numbered(1))).rejects.toThrow(/unknown option 'queuType' \(did you mean 'queueType'\?\)/);
    await expect(rabbit.publish(parseEndpoint(`stomp:orders`), numbered(1))).rejects.toBeInstanceOf(StompConfigurationError);
    expect(() => new StompTransport({ url: 'amqp://x', heartbeatMs: -1 })).toThrow(StompConfigurationError);
  });

  it('wrong credentials → StompConnectRefusedError at connect, the passcode never in it', async () => {
    const transport = new StompTransport({ url: 'stomp://guest:not-the-passcode@127.0.0.1:61613', connectTimeoutMs: 10_000 }, recordingLogger());
    const error = await transport.connect().then(() => undefined, (caught: unknown) => caught);
    expect(error).toBeInstanceOf(StompConnectRefusedError);
    expect(String((error as Error).message)).not.toContain('not-the-passcode');
  });

  it('an unreachable broker → NotConnectedError after connectTimeoutMs', async () => {
    const transport = new StompTransport({ url: 'stomp://127.0.0.1:1', connectTimeoutMs: 1_500 }, recordingLogger());
    await expect(transport.connect()).rejects.toBeInstanceOf(NotConnectedError);
  });

  it('a broker ERROR frame on a SEND rejects that publish with StompBrokerError, and the transport reconnects', async () => {
    const rabbit = await open(RABBITMQ_STOMP_URL);
    await expect(rabbit.publish(parseEndpoint(`stomp:exchange/${tag}-no-such-exchange/key`), numbered(1))).rejects.toSatisfy((error: unknown) => error instanceof StompBrokerError && error.permanent);
    const name = queue('after-error');
    await rabbit.publish(parseEndpoint(`stomp:queue/${name}`), numbered(1));
    expect(await rabbitQueueDepth(name)).toBe(1);
  });
});
