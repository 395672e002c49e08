import { createServer, type Server } from 'node:net';
import { Pull, Push } from 'zeromq';
import type { Subscription } from 'rxjs';
import { afterEach, describe, expect, it } from 'vitest';
import { ZeroMqBindError, ZeroMqConfigurationError, ZeroMqDecodeError, ZeroMqTransport, ZeroMqUnencodableError, zeroMqModule, type ZeroMqTransportOptions } from '../../adapters/zeromq/index.ts';
import { createMessage, parseEndpoint, PartialPublishError, silentLogger, TimeoutError, type Delivery, type Message } from '../../src/core/index.ts';
import { from } from '../../facade/route-builder.ts';
import { startTestIntegration } from '../../facade/testing/index.ts';
import { until } from '../support/wait.ts';
import { portPool } from './zeromq-support.ts';

// Real ZeroMQ sockets (libzmq via zeromq v6) on 127.0.0.1 ports free at the start of this file; no broker.
const ports = await portPool(48);
const transports: ZeroMqTransport[] = [];
const subscriptions: Subscription[] = [];
const raw: { close(): void }[] = [];

async function transport(options: ZeroMqTransportOptions = {}): Promise<ZeroMqTransport> {
  const created = new ZeroMqTransport({ lingerMs: 0, ...options }, silentLogger);
  await created.connect();
  transports.push(created);
  return created;
}

/** Consumes `uri`, collecting deliveries; `settle` decides what happens to each (default: ack). */
function collect(via: ZeroMqTransport, uri: string, settle: (delivery: Delivery) => void = (delivery) => delivery.ack(), prefetch = 100): { got: Delivery[]; errors: unknown[] } {
  const got: Delivery[] = [];
  const errors: unknown[] = [];
  subscriptions.push(
    via.consume(parseEndpoint(uri), { prefetch }).subscribe({
      next: (delivery) => {
        got.push(delivery);
        settle(delivery);
      },
      error: (error: unknown) => errors.push(error),
    }),
  );
  return { got, errors };
}

function rawPush(address: string, bind = false): Push {
  const push = new Push({ linger: 0 });
  raw.push(push);
  if (!bind) push.connect(address);
  return push;
}

const numbered = (count: number): Message[] => Array.from({ length: count }, (_, index) => createMessage({ n: index }, { headers: { 'x-test': `m${index}` } }));
const address = (): string => `tcp://127.0.0.1:${ports.next()}`;

afterEach(async () => {
  for (const subscription of subscriptions.splice(0)) subscription.unsubscribe();
  for (const created of transports.splice(0)) await created.close();
  for (const socket of raw.splice(0)) socket.close();
});

describe('ZeroMqTransport: a route end to end', () => {
  it("moves messages from('zmq:…') to('zmq:…') in order, and a plain ZeroMQ peer reads [envelope, body] frames", async () => {
    const [source, destination] = [address(), address()];
    const sink = new Pull({ linger: 0 });
    raw.push(sink);
    await sink.bind(destination);
    const { stop } = await startTestIntegration({
      modules: [zeroMqModule({ lingerMs: 0 })],
      routes: [from(`zmq:${source}?headers=all`, { id: 'zmq-route' }).to(`zmq:${destination}`)],
    });
    try {
      const publisher = await transport();
      const sent = numbered(50);
      await publisher.publish(parseEndpoint(`zmq:${source}`), sent);
      const received: Buffer[][] = [];
      while (received.length < 50) received.push(await sink.receive());
      expect(received.map(([envelope]) => (JSON.parse(String(envelope)) as { id: string }).id)).toEqual(sent.map((message) => message.id));
      expect(JSON.parse(String(received[7]?.[1]))).toEqual({ n: 7 });
      expect((JSON.parse(String(received[7]?.[0])) as { headers: Record<string, unknown> }).headers['x-test']).toBe('m7');
    } finally {
      await stop();
    }
  });
});

describe('ZeroMqTransport: patterns', () => {
  it('a bound PUSH spreads messages over competing consumers that connect (bind=true / bind=false), none to both', async () => {
    const at = address();
    const publisher = await transport();
    const [one, two] = [await transport(), await transport()];
    // headers=all: Interchange ↔ Interchange, so the ids published are the ids delivered
    const a = collect(one, `zmq:${at}?bind=false&headers=all`);
    const b = collect(two, `zmq:${at}?bind=false&headers=all`);
    // a PUSH deals round-robin among the peers connected at the time: warm up until both are
    const to = parseEndpoint(`zmq:${at}?bind=true`);
    await until(
      async () => {
        await publisher.publish(to, [createMessage({ warmUp: true })]);
        return a.got.length > 0 && b.got.length > 0;
      },
      () => 'both consumers never got a warm-up',
    );
    const [warmA, warmB] = [a.got.length, b.got.length];
    const sent = numbered(100);
    await publisher.publish(to, sent);
    await until(() => a.got.length - warmA + b.got.length - warmB >= 100, () => `expected 100 deliveries, got ${a.got.length - warmA} + ${b.got.length - warmB}`);
    // no duplicate can still be on its way: each connection is FIFO, so once both consumers have a
    // sentinel published after the batch, everything of the batch sent to either has arrived
    const isSentinel = (delivery: Delivery): boolean => (delivery.message.body as { sentinel?: boolean }).sentinel === true;
    await until(
      async () => {
        await publisher.publish(to, [createMessage({ sentinel: true })]);
        return a.got.some(isSentinel) && b.got.some(isSentinel);
      },
      () => 'both consumers never got a sentinel',
    );
    const ids = (got: Delivery[]): string[] => got.map((delivery) => delivery.message.id).filter((id) => sent.some((message) => message.id === id));
    const [idsA, idsB] = [ids(a.got), ids(b.got)];
    expect(idsA.length + idsB.length).toBe(100);
    expect(idsB.filter((id) => idsA.includes(id))).toEqual([]);
    expect(idsA.length).toBeGreaterThan(0);
    expect(idsB.length).toBeGreaterThan(0);
  });

  it('pubsub: a subscriber gets only its topic prefix, with the topic as zmqTopic', async () => {
    const at = address();
    const publisher = await transport();
    const consumer = await transport();
    const { got } = collect(consumer, `zmq:${at}?pattern=pubsub&topic=orders.`);
    // the slow joiner: a PUB drops what it sends before the subscription reaches it — publish until one arrives
    await until(
      async () => {
        await publisher.publish(parseEndpoint(`zmq:${at}?pattern=pubsub&topic=orders.eu`), [createMessage({ warmUp: true })]);
        return got.length > 0;
      },
      () => 'the subscriber never received a warm-up',
    );
    const numberedOnly = (): Delivery[] => got.filter((delivery) => (delivery.message.body as { n?: number }).n !== undefined);
    await publisher.publish(parseEndpoint(`zmq:${at}?pattern=pubsub&topic=invoices.eu`), numbered(5));
    await publisher.publish(parseEndpoint(`zmq:${at}?pattern=pubsub&topic=orders.us`), numbered(3));
    // one PUB → SUB connection is FIFO: once a sentinel published after everything else has arrived,
    // an invoice that got through the filter would have arrived before it
    await publisher.publish(parseEndpoint(`zmq:${at}?pattern=pubsub&topic=orders.end`), [createMessage({ sentinel: true })]);
    await until(() => got.some((delivery) => delivery.message.headers.zmqTopic === 'orders.end'), () => `the sentinel did not arrive (got ${got.length})`);
    expect(numberedOnly().map((delivery) => delivery.message.headers.zmqTopic)).toEqual(['orders.us', 'orders.us', 'orders.us']);
  });

  it('a nacked delivery comes back (attempt + 1) until maxDeliveries, then is dropped; later messages still flow', async () => {
    const at = address();
    const zmq = await transport();
    const { got } = collect(zmq, `zmq:${at}?maxDeliveries=3`, (delivery) => {
      if ((delivery.message.body as { n: number }).n === 0) delivery.nack(new Error('fails every time'));
      else delivery.ack();
    });
    await zmq.publish(parseEndpoint(`zmq:${at}`), numbered(1));
    await until(() => got.length === 3, () => `expected 3 deliveries, got ${got.length}`);
    // a redelivery goes ahead of the socket: had a 4th attempt been given, it would come before the next message
    await zmq.publish(parseEndpoint(`zmq:${at}`), [createMessage({ n: 1 })]);
    await until(() => got.length >= 4, () => 'the next message did not arrive');
    expect(got.map((delivery) => [(delivery.message.body as { n: number }).n, delivery.message.headers.attempt])).toEqual([[0, 1], [0, 2], [0, 3], [1, 1]]);
  });
});

describe('ZeroMqTransport: untrusted input', () => {
  it('by default treats the peer as untrusted: a fresh id, reserved and identity headers dropped; attempt is always the adapter’s', async () => {
    const at = address();
    const zmq = await transport();
    const { got } = collect(zmq, `zmq:${at}`);
    const push = rawPush(at);
    const envelope = {
      id: 'peer-1',
      headers: { 'x-tenant': 'acme', 'x-interchange-reason': 'forged', replyTo: 'evil', receiptTo: 'evil', attempt: 99, timestamp: 'yesterday', correlationId: 'c-1', causationId: 'k-1', traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01', expiresAt: 1, schema: 'order@1', 'x-huge': 'y'.repeat(9_000) },
    };
    // the same envelope twice: an idempotent consumer downstream must not see one message id for both
    await push.send([JSON.stringify(envelope), JSON.stringify({ ok: true })]);
    await push.send([JSON.stringify(envelope), JSON.stringify({ ok: true })]);
    await until(() => got.length === 2, () => `expected 2 deliveries, got ${got.length}`);
    const message = got[0]?.message as Message;
    expect(message.id).not.toBe('peer-1');
    expect(got[1]?.message.id).not.toBe(message.id);
    expect(message.body).toEqual({ ok: true });
    expect(message.headers).toEqual({ 'x-tenant': 'acme', attempt: 1 });
  });

  it('headers=all trusts the peer (x-interchange-* included); headers=none takes the body alone under a fresh id', async () => {
    const [trusted, bare] = [address(), address()];
    const zmq = await transport();
    const all = collect(zmq, `zmq:${trusted}?headers=all`);
    const none = collect(zmq, `zmq:${bare}?headers=none`);
    const envelope = JSON.stringify({ id: 'peer-2', headers: { 'x-interchange-reason': 'dead-lettered upstream', replyTo: 'replies' } });
    await rawPush(trusted).send([envelope, '"a"']);
    await rawPush(bare).send([envelope, '"b"']);
    await until(() => all.got.length === 1 && none.got.length === 1, () => 'nothing arrived');
    expect(all.got[0]?.message.headers).toMatchObject({ 'x-interchange-reason': 'dead-lettered upstream', replyTo: 'replies' });
    expect(none.got[0]?.message.id).not.toBe('peer-2');
    expect(none.got[0]?.message.headers).toEqual({ attempt: 1 });
  });

  it('a plain one-frame message is the body (JSON, else text) under a fresh id; frames that do not decode arrive with a permanent intakeError', async () => {
    const at = address();
    const zmq = await transport();
    const { got } = collect(zmq, `zmq:${at}`);
    const push = rawPush(at);
    await push.send('{"plain":1}');
    await push.send('not json');
    await push.send(['a', 'b', 'c']);
    await push.send(['{not an envelope', 'body']);
    await push.send([JSON.stringify({ id: 'x', headers: { contentType: 'application/json' } }), '{broken']);
    await until(() => got.length === 5, () => `expected 5 deliveries, got ${got.length}`);
    expect(got[0]?.message.body).toEqual({ plain: 1 });
    expect(got[0]?.intakeError).toBeUndefined();
    expect(got[1]?.message.body).toBe('not json');
    for (const delivery of got.slice(2)) {
      expect(delivery.intakeError).toBeInstanceOf(ZeroMqDecodeError);
      expect((delivery.intakeError as ZeroMqDecodeError).permanent).toBe(true);
    }
  });

  it('a message over maxMessageBytes never arrives (ZeroMQ drops its sender, which reconnects); the next one does', async () => {
    const at = address();
    const zmq = await transport({ maxMessageBytes: 1_000 });
    const { got } = collect(zmq, `zmq:${at}`);
    const push = rawPush(at);
    await push.send(['{}', 'x'.repeat(5_000)]);
    // ZeroMQ drops the connection on the oversized message and may drop what followed it on that
    // connection: send the small one until it arrives (FIFO per connection: the big one never will)
    await until(
      async () => {
        await push.send(['{}', '"small"']);
        return got.length >= 1;
      },
      () => 'the small message did not arrive',
    );
    expect(new Set(got.map((delivery) => delivery.message.body))).toEqual(new Set(['small']));
  });

  it('a socket bound on TCP takes at most 1 MiB per message by default (hwm × maxMessageBytes per peer); maxMessageBytes raises it', async () => {
    const [guarded, raised] = [address(), address()];
    const big = 'x'.repeat(2 * 1024 * 1024);
    const byDefault = collect(await transport(), `zmq:${guarded}`);
    const explicit = collect(await transport({ maxMessageBytes: 16 * 1024 * 1024 }), `zmq:${raised}`);
    const [toGuarded, toRaised] = [rawPush(guarded), rawPush(raised)];
    await toGuarded.send(['{}', JSON.stringify(big)]);
    await toRaised.send(['{}', JSON.stringify(big)]);
    await until(
      async () => {
        await toGuarded.send(['{}', '"small"']);
        return byDefault.got.length >= 1;
      },
      () => 'the small message did not arrive',
    );
    expect(new Set(byDefault.got.map((delivery) => delivery.message.body))).toEqual(new Set(['small']));
    await until(() => explicit.got.length === 1, () => 'the 2 MiB message did not arrive under maxMessageBytes 16 MiB');
    expect((explicit.got[0]?.message.body as string).length).toBe(big.length);
  });

  it('fails an unencodable message alone: the others are sent, the call rejects with PartialPublishError', async () => {
    const at = address();
    const zmq = await transport({ maxMessageBytes: 10_000 });
    const { got } = collect(zmq, `zmq:${at}?headers=all`);
    const [first, last] = numbered(2) as [Message, Message];
    const error = await zmq.publish(parseEndpoint(`zmq:${at}`), [first, createMessage({ n: 1 }, { headers: { 'x-bad': Number.NaN } }), createMessage('x'.repeat(20_000)), last]).catch((thrown: unknown) => thrown);
    expect(error).toBeInstanceOf(PartialPublishError);
    expect([...(error as PartialPublishError).failures.keys()]).toEqual([1, 2]);
    expect((error as PartialPublishError).failures.get(2)).toBeInstanceOf(ZeroMqUnencodableError);
    await until(() => got.length === 2, () => `expected 2 deliveries, got ${got.length}`);
    expect(got.map((delivery) => delivery.message.id)).toEqual([first.id, last.id]);
  });
});

describe('ZeroMqTransport: options and failures', () => {
  it('refuses unknown options (did you mean), other schemes of address, topic without pubsub, and * on a connecting side', async () => {
    const zmq = await transport();
    await expect(zmq.publish(parseEndpoint('zmq:tcp://127.0.0.1:5555?patern=pubsub'), numbered(1))).rejects.toThrow(/did you mean 'pattern'/);
    await expect(zmq.publish(parseEndpoint('zmq:tcp://127.0.0.1:5555?patern=pubsub'), numbered(1))).rejects.toThrow(ZeroMqConfigurationError);
    await expect(zmq.publish(parseEndpoint('zmq:udp://127.0.0.1:5555'), numbered(1))).rejects.toThrow(/tcp:\/\/, ipc:\/\/ or inproc:\/\//);
    await expect(zmq.publish(parseEndpoint('zmq:tcp://127.0.0.1:99999'), numbered(1))).rejects.toThrow(/port 1–65535/);
    await expect(zmq.publish(parseEndpoint('zmq:tcp://127.0.0.1:5555?topic=a'), numbered(1))).rejects.toThrow(/topic' needs pattern=pubsub/);
    await expect(zmq.publish(parseEndpoint('zmq:tcp://*:5555'), numbered(1))).rejects.toThrow(/needs a host/);
    const { errors } = collect(zmq, 'zmq:tcp://127.0.0.1:5555?hwm=0');
    expect(errors[0]).toBeInstanceOf(ZeroMqConfigurationError);
    expect(() => new ZeroMqTransport({ hwm: 0, lingerMs: -1 })).toThrow(ZeroMqConfigurationError);
  });

  it('publish to an address nobody listens on queues up to the high-water mark, then rejects with TimeoutError', async () => {
    const zmq = await transport({ publishTimeoutMs: 300 });
    const nobody = parseEndpoint(`zmq:${address()}?hwm=1`);
    await zmq.publish(nobody, numbered(1));
    await expect(zmq.publish(nobody, numbered(1))).rejects.toThrow(TimeoutError);
  });

  it('consuming on an address another process holds fails with ZeroMqBindError after bindTimeoutMs', async () => {
    const held: Server = createServer();
    const port = ports.next();
    await new Promise<void>((resolve) => held.listen(port, '127.0.0.1', resolve));
    try {
      const zmq = await transport({ bindTimeoutMs: 500 });
      const { errors } = collect(zmq, `zmq:tcp://127.0.0.1:${port}`);
      await until(() => errors.length === 1, () => 'the bind did not fail');
      expect(errors[0]).toBeInstanceOf(ZeroMqBindError);
      expect((errors[0] as ZeroMqBindError).message).toMatch(/in use/);
    } finally {
      await new Promise<void>((resolve) => held.close(() => resolve()));
    }
  });

  it('publish and consume before connect fail with NotConnectedError; close is idempotent and connect opens again', async () => {
    const zmq = new ZeroMqTransport({ lingerMs: 0 }, silentLogger);
    await expect(zmq.publish(parseEndpoint(`zmq:${address()}`), numbered(1))).rejects.toThrow(/not open/);
    await zmq.connect();
    await zmq.close();
    await zmq.close();
    await zmq.connect();
    transports.push(zmq);
    const at = address();
    const { got } = collect(zmq, `zmq:${at}`);
    await zmq.publish(parseEndpoint(`zmq:${at}`), numbered(2));
    await until(() => got.length === 2, () => 'nothing arrived after reconnecting');
  });

  it('a subscriber of a bound SUB with topic filters across several connecting publishers (bind on the consumer side)', async () => {
    const at = address();
    const zmq = await transport();
    const { got } = collect(zmq, `zmq:${at}?pattern=pubsub&bind=true&topic=t`);
    const [p1, p2] = [await transport(), await transport()];
    await until(
      async () => {
        await p1.publish(parseEndpoint(`zmq:${at}?pattern=pubsub&bind=false&topic=t1`), numbered(1));
        await p2.publish(parseEndpoint(`zmq:${at}?pattern=pubsub&bind=false&topic=t2`), numbered(1));
        return new Set(got.map((delivery) => delivery.message.headers.zmqTopic)).size === 2;
      },
      () => `expected messages from both publishers, got ${got.length}`,
    );
  });
});
