import { randomBytes } from 'node:crypto';
import { connect as amqp091, type Channel, type ChannelModel } from 'amqplib';
import rhea, { type Connection } from 'rhea';
import type { Subscription } from 'rxjs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  Amqp10AuthenticationError,
  Amqp10ConfigurationError,
  Amqp10LinkError,
  Amqp10Transport,
  Amqp10UnencodableError,
  amqp10Module,
  type Amqp10TransportOptions,
} from '../../adapters/amqp10/index.ts';
import { createMessage, NotConnectedError, parseEndpoint, PartialPublishError, silentLogger, type Delivery, type Message } from '../../src/core/index.ts';
import { from } from '../../facade/route-builder.ts';
import { startTestIntegration } from '../../facade/testing/index.ts';
import { freePort } from '../support/free-port.ts';
import { sleep, until } from '../support/wait.ts';

// Against the machine's RabbitMQ 3.10 (AMQP 1.0 plugin on 127.0.0.1:5672; fails, never skips, if it is down).
// Queues and exchanges: a0-<run>-*, deleted afterwards through AMQP 0-9-1.
const url = process.env.AMQP10_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const run = `a0-${Date.now().toString(36)}-${randomBytes(2).toString('hex')}`;
let admin: ChannelModel;
let channel: Channel;
let counter = 0;
const queues = new Set<string>();
const exchanges = new Set<string>();
const transports: Amqp10Transport[] = [];
const subscriptions: Subscription[] = [];

const fresh = (label: string): string => {
  const name = `${run}-${label}-${(counter += 1)}`;
  queues.add(name);
  return name;
};

async function transport(options: Amqp10TransportOptions = {}): Promise<Amqp10Transport> {
  const created = new Amqp10Transport({ url, ...options }, silentLogger);
  await created.connect();
  transports.push(created);
  return created;
}

function collect(via: Amqp10Transport, uri: string, settle: (delivery: Delivery) => void = () => undefined, prefetch = 100): Delivery[] {
  const got: Delivery[] = [];
  subscriptions.push(
    via.consume(parseEndpoint(uri), { prefetch }).subscribe({
      next: (delivery) => {
        got.push(delivery);
        settle(delivery);
      },
      error: () => undefined,
    }),
  );
  return got;
}

/** A plain rhea connection: a foreign AMQP 1.0 producer. */
async function foreign(): Promise<Connection> {
  const connection = rhea.create_container().connect({ host: '127.0.0.1', port: 5672, username: 'guest', password: 'guest', reconnect: false });
  await new Promise((resolve) => connection.once('connection_open', resolve));
  return connection;
}

async function sendRaw(connection: Connection, address: string, messages: Parameters<ReturnType<Connection['open_sender']>['send']>[0][]): Promise<void> {
  // a /queue/ address is declared durable by Interchange's links: a foreign client must ask for the same
  const sender = connection.open_sender({ target: { address, durable: address.startsWith('/queue/') ? 2 : 0 } });
  await new Promise((resolve) => sender.once('sendable', resolve));
  let accepted = 0;
  sender.on('accepted', () => (accepted += 1));
  for (const message of messages) sender.send(message);
  await until(() => accepted === messages.length, () => `the broker accepted ${accepted} of ${messages.length}`);
  sender.close();
}

const numbered = (count: number): Message[] => Array.from({ length: count }, (_, index) => createMessage({ n: index }, { headers: { 'x-test': `m${index}` } }));

beforeAll(async () => {
  admin = await amqp091('amqp://guest:guest@127.0.0.1:5672').catch((error: unknown) => {
    throw new Error('RabbitMQ is not reachable at 127.0.0.1:5672', { cause: error });
  });
  channel = await admin.createChannel();
});
afterEach(async () => {
  for (const subscription of subscriptions.splice(0)) subscription.unsubscribe();
  for (const created of transports.splice(0)) await created.close();
});
afterAll(async () => {
  for (const queue of queues) await channel.deleteQueue(queue);
  for (const exchange of exchanges) await channel.deleteExchange(exchange);
  await admin.close();
});

describe('Amqp10Transport: endpoints, options, connection errors', () => {
  it('refuses an unknown address form and a mistyped option, with a hint', async () => {
    const amqp10 = await transport();
    await expect(amqp10.publish(parseEndpoint('amqp10:queues/x'), numbered(1))).rejects.toThrow(Amqp10ConfigurationError);
    await expect(amqp10.publish(parseEndpoint(`amqp10:queue/${fresh('typo')}?maxDelivery=3`), numbered(1))).rejects.toThrow(/unknown option 'maxDelivery' \(known: .*maxDeliveries/);
    await expect(amqp10.publish(parseEndpoint('amqp10:queue/x?headers=all&properties=a'), numbered(1))).rejects.toThrow(/not with headers=all/);
    expect(() => new Amqp10Transport({ url: 'http://x' })).toThrow(Amqp10ConfigurationError);
    expect(() => new Amqp10Transport({ url, publishTimeoutMs: 0 })).toThrow(Amqp10ConfigurationError);
  });

  it('wrong credentials reject connect with Amqp10AuthenticationError, the password redacted', async () => {
    const amqp10 = new Amqp10Transport({ url: 'amqp://guest:n0t-the-Passw0rd@127.0.0.1:5672', connectTimeoutMs: 30_000 }, silentLogger);
    const error = await amqp10.connect().catch((thrown: unknown) => thrown);
    expect(error).toBeInstanceOf(Amqp10AuthenticationError);
    expect(String((error as Error).message)).not.toContain('n0t-the-Passw0rd');
    expect((error as Error).message).toContain('guest:***@');
  });

  it('an unreachable broker rejects connect with NotConnectedError after connectTimeoutMs', async () => {
    const port = await freePort();
    const amqp10 = new Amqp10Transport({ url: `amqp://guest:s3cret-pw@127.0.0.1:${port}`, connectTimeoutMs: 1_000, reconnect: { initialDelayMs: 50, maxDelayMs: 200 } }, silentLogger);
    const error = await amqp10.connect().catch((thrown: unknown) => thrown);
    expect(error).toBeInstanceOf(NotConnectedError);
    expect((error as Error).message).not.toContain('s3cret-pw');
  });

  it('a publish to an exchange that does not exist rejects with Amqp10LinkError', async () => {
    const amqp10 = await transport({ publishTimeoutMs: 20_000 });
    await expect(amqp10.publish(parseEndpoint(`amqp10:exchange/${run}-no-such-exchange/k`), numbered(1))).rejects.toThrow(Amqp10LinkError);
  });
});

describe('Amqp10Transport: publish', () => {
  it('fails an unencodable message alone: the others are accepted, the call rejects with PartialPublishError', async () => {
    const queue = fresh('partial');
    const amqp10 = await transport();
    const bad = createMessage({ n: 1 }, { headers: { 'x-bad': Number.NaN } });
    const error = await amqp10.publish(parseEndpoint(`amqp10:queue/${queue}`), [numbered(1)[0] as Message, bad, numbered(1)[0] as Message]).catch((thrown: unknown) => thrown);
    expect(error).toBeInstanceOf(PartialPublishError);
    expect([...(error as PartialPublishError).failures.keys()]).toEqual([1]);
    expect((error as PartialPublishError).failures.get(1)).toBeInstanceOf(Amqp10UnencodableError);
    await until(async () => (await channel.checkQueue(queue)).messageCount === 2, () => 'expected 2 messages in the queue');
  });

  it('Buffer bodies travel as bytes, strings with a text type as text, JSON as JSON', async () => {
    const queue = fresh('bodies');
    const amqp10 = await transport();
    const bytes = Buffer.from([0, 1, 2, 255, 254]);
    await amqp10.publish(parseEndpoint(`amqp10:queue/${queue}`), [createMessage(bytes), createMessage('plain ✓', { headers: { contentType: 'text/plain' } }), createMessage({ a: [1, null] })]);
    const got = collect(amqp10, `amqp10:queue/${queue}`, (delivery) => delivery.ack());
    await until(() => got.length === 3, () => `got ${got.length}`);
    expect(Buffer.isBuffer(got[0]?.message.body) && (got[0]?.message.body as Buffer).equals(bytes)).toBe(true);
    expect(got[0]?.message.headers.contentType).toBe('application/octet-stream');
    expect(got[1]?.message.body).toBe('plain ✓');
    expect(got[2]?.message.body).toEqual({ a: [1, null] });
  });
});

describe('Amqp10Transport: redelivery and dead letters', () => {
  it('nacks are released and come back with attempt + 1; at maxDeliveries the message is rejected to the queue dead-letter exchange', async () => {
    const [queue, dead] = [fresh('dlx-src'), fresh('dlx-dead')];
    const dlx = `${run}-dlx`;
    exchanges.add(dlx);
    await channel.assertExchange(dlx, 'fanout', { durable: false });
    await channel.assertQueue(dead, { durable: true });
    await channel.bindQueue(dead, dlx, '');
    await channel.assertQueue(queue, { durable: true, arguments: { 'x-dead-letter-exchange': dlx } });
    const amqp10 = await transport();
    const [sent] = numbered(1);
    await amqp10.publish(parseEndpoint(`amqp10:amq/queue/${queue}`), [sent as Message]);
    const attempts: number[] = [];
    collect(amqp10, `amqp10:amq/queue/${queue}?maxDeliveries=3&headers=all`, (delivery) => {
      attempts.push(delivery.message.headers.attempt ?? 0);
      delivery.nack(new Error('poison'));
    });
    const deadLetters = collect(amqp10, `amqp10:amq/queue/${dead}?headers=all`, (delivery) => delivery.ack());
    await until(() => deadLetters.length === 1, () => `no dead letter; attempts ${attempts.join(',')}`);
    expect(attempts).toEqual([1, 2, 3]);
    expect(deadLetters[0]?.message.id).toBe(sent?.id);
    expect(deadLetters[0]?.message.body).toEqual(sent?.body);
    await sleep(300);
    expect(attempts).toHaveLength(3);
  });

  it('a message whose JSON body does not parse is rejected at once (dead-lettered), never delivered', async () => {
    const [queue, dead] = [fresh('undecodable'), fresh('undecodable-dead')];
    const dlx = `${run}-dlx2`;
    exchanges.add(dlx);
    await channel.assertExchange(dlx, 'fanout', { durable: false });
    await channel.assertQueue(dead, { durable: true });
    await channel.bindQueue(dead, dlx, '');
    await channel.assertQueue(queue, { durable: true, arguments: { 'x-dead-letter-exchange': dlx } });
    const connection = await foreign();
    try {
      await sendRaw(connection, `/amq/queue/${queue}`, [
        { message_id: 'bad-json', content_type: 'application/json', body: rhea.message.data_section(Buffer.from('{not json')) },
        { message_id: 'good', content_type: 'application/json', body: rhea.message.data_section(Buffer.from('{"ok":true}')) },
      ]);
    } finally {
      connection.close();
    }
    const amqp10 = await transport();
    const got = collect(amqp10, `amqp10:amq/queue/${queue}`, (delivery) => delivery.ack());
    await until(async () => (await channel.checkQueue(dead)).messageCount === 1, () => `the undecodable message was not dead-lettered; got ${got.map((d) => d.message.id).join(',')}`);
    await until(() => got.length === 1, () => `got ${got.length}`);
    expect(got.map((delivery) => delivery.message.id)).toEqual(['good']);
  });
});

describe('Amqp10Transport: untrusted producers', () => {
  it('takes the AMQP properties, only allow-listed application properties, never x-interchange-* or reserved names', async () => {
    const queue = fresh('foreign');
    const connection = await foreign();
    const properties = { 'x-tenant': 'acme', 'x-other': 'dropped', schema: 'forged@1', 'x-interchange-reason': 'forged', attempt: 99, traceparent: 'forged' };
    try {
      await sendRaw(connection, `/queue/${queue}`, [
        { message_id: 'f-1', correlation_id: 'c-1', content_type: 'application/json', application_properties: properties, body: rhea.message.data_section(Buffer.from('{"a":1}')) },
        { message_id: 'f-2', application_properties: properties, body: 'an amqp-value string' },
        { message_id: 'f-3', body: rhea.message.data_section(Buffer.from([9, 8, 7])) },
        { body: 'no id' },
      ]);
    } finally {
      connection.close();
    }
    const amqp10 = await transport();
    const got = collect(amqp10, `amqp10:queue/${queue}?properties=x-tenant,schema,x-interchange-reason`, (delivery) => delivery.ack());
    await until(() => got.length === 4, () => `got ${got.length}`);
    const [first, second, third, fourth] = got.map((delivery) => delivery.message) as [Message, Message, Message, Message];
    expect(first.id).toBe('f-1');
    expect(first.body).toEqual({ a: 1 });
    expect(first.headers).toEqual({ correlationId: 'c-1', contentType: 'application/json', 'x-tenant': 'acme', attempt: 1 });
    expect(second.body).toBe('an amqp-value string');
    expect(second.headers).toEqual({ 'x-tenant': 'acme', attempt: 1 });
    expect(Buffer.isBuffer(third.body)).toBe(true);
    expect(fourth.id).toMatch(new RegExp(`^/queue/${queue}/`));
  });

  it('with headers=all, every application property but x-interchange-* and attempt becomes a header', async () => {
    const queue = fresh('trusted');
    const connection = await foreign();
    try {
      await sendRaw(connection, `/queue/${queue}`, [{ message_id: 't-1', application_properties: { schema: 'order@1', 'x-interchange-attempts': 7, attempt: 9, n: 3 }, body: 'x' }]);
    } finally {
      connection.close();
    }
    const amqp10 = await transport();
    const got = collect(amqp10, `amqp10:queue/${queue}?headers=all`, (delivery) => delivery.ack());
    await until(() => got.length === 1, () => `got ${got.length}`);
    expect(got[0]?.message.headers).toEqual({ schema: 'order@1', n: 3, attempt: 1 });
  });
});

describe('Amqp10Transport in a route', () => {
  it("moves messages queue → queue with amqp10Module, accepting the source after the destination's disposition", async () => {
    const [source, destination] = [fresh('route-in'), fresh('route-out')];
    const { stop } = await startTestIntegration({
      modules: [amqp10Module({ url })],
      routes: [from(`amqp10:queue/${source}?headers=all`, { id: 'a0-route' }).to(`amqp10:queue/${destination}`)],
    });
    try {
      const publisher = await transport();
      const sent = numbered(50);
      await publisher.publish(parseEndpoint(`amqp10:queue/${source}`), sent);
      const got = collect(publisher, `amqp10:queue/${destination}?headers=all`, (delivery) => delivery.ack());
      await until(() => got.length === 50, () => `the route moved ${got.length} of 50`);
      expect(got.map((delivery) => delivery.message.id)).toEqual(sent.map((message) => message.id));
      expect(got[0]?.message.headers['x-test']).toBe('m0');
      await until(async () => (await channel.checkQueue(source)).messageCount === 0, () => 'the source messages were not accepted');
    } finally {
      await stop();
    }
  });
});
