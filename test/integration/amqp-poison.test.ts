import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { createIntegration, createMessage, from, retry, silentLogger, type Headers, type Message } from '../../facade/index.ts';
import { parseEndpoint, PartialPublishError } from '../../src/spi.ts';
import { AmqpConnectionManager } from '../../adapters/amqp/amqp-connection.ts';
import { AmqpPublisher, Outbound } from '../../adapters/amqp/amqp-publisher.ts';
import { AmqpAccessRefusedError, amqpModule, AmqpTransport, AmqpUnencodableError } from '../../adapters/amqp/index.ts';
import { AMQP_URL, BrokerAdmin, connectedTransport, readUntilQuiet, uniqueName, until } from './amqp-support.ts';

// One message must never wedge the publisher: each poison fails alone (AmqpUnencodableError), the
// messages after it — in the same publish call and in later ones — are confirmed and arrive, and no
// publish waits for its timeout. publishTimeoutMs is short (3 s) so that a wedge would show.

const admin = new BrokerAdmin();
const transports: AmqpTransport[] = [];
const PUBLISH_TIMEOUT_MS = 3_000;
const MAX_MESSAGE_BYTES = 64 * 1024;

async function open(options: ConstructorParameters<typeof AmqpTransport>[0] = {}): Promise<AmqpTransport> {
  const transport = await connectedTransport({ publishTimeoutMs: PUBLISH_TIMEOUT_MS, maxMessageBytes: MAX_MESSAGE_BYTES, ...options });
  transports.push(transport);
  return transport;
}

/** A fresh queue, deleted after the test (declared by the broker admin: the test fails loudly if RabbitMQ is down). */
async function queue(label: string): Promise<string> {
  const name = uniqueName(label);
  admin.track({ queues: [name] });
  const channel = await admin.channel();
  await channel.assertQueue(name, { durable: false });
  await channel.close();
  return name;
}

function good(count: number, from = 0): Message[] {
  return Array.from({ length: count }, (_, n) => createMessage({ n: from + n }));
}

/** A message whose headers are exactly `headers` (createMessage's own are kept). */
function poison(headers: Record<string, unknown>, body: unknown = { poison: true }): Message {
  const base = createMessage(body);
  return { ...base, headers: { ...base.headers, ...headers } as Headers };
}

/** Publishes and returns how it settled and how long it took. */
async function timed(publishing: Promise<void>): Promise<{ error: unknown; ms: number }> {
  const started = Date.now();
  const error = await publishing.then(
    () => undefined,
    (thrown: unknown) => thrown,
  );
  return { error, ms: Date.now() - started };
}

afterEach(async () => {
  for (const transport of transports.splice(0)) await transport.close();
  await admin.cleanup();
});
afterAll(() => admin.close());

const kinds: readonly [string, () => Message][] = [
  ['a 300-byte correlationId', () => poison({ correlationId: 'c'.repeat(300) })],
  ['a 300-byte header name', () => poison({ ['h'.repeat(300)]: 'v' })],
  ['priority 300', () => poison({ priority: 300 })],
  ['70 KiB of headers', () => poison(Object.fromEntries(Array.from({ length: 70 }, (_, n) => [`x-big-${n}`, 'v'.repeat(1024)])))],
  ['a header number -1e300', () => poison({ 'x-reading': -1e300 })],
  ['a header number Infinity (RabbitMQ would close the connection)', () => poison({ 'x-reading': Number.POSITIVE_INFINITY })],
  ['expiresAt 1e300', () => poison({ expiresAt: 1e300 })],
  ['a body over maxMessageBytes', () => poison({}, Buffer.alloc(MAX_MESSAGE_BYTES + 1))],
];

describe('amqp: one poison message never wedges the publisher', () => {
  it.each(kinds)('%s fails alone; the 200 messages after it and 200 more are confirmed, none times out', async (_, make) => {
    const target = await queue('poison');
    const transport = await open();
    const endpoint = parseEndpoint(`amqp:queue/${target}`);
    const bad = make();
    const first = await timed(transport.publish(endpoint, [bad, ...good(200)]));
    expect(first.error).toBeInstanceOf(PartialPublishError);
    const failures = (first.error as PartialPublishError).failures;
    expect([...failures.keys()]).toEqual([0]);
    expect(failures.get(0)).toBeInstanceOf(AmqpUnencodableError);
    expect(failures.get(0)?.message).toContain(bad.id);
    const later = await timed(transport.publish(endpoint, good(200, 200)));
    expect(later.error).toBeUndefined();
    expect(Math.max(first.ms, later.ms)).toBeLessThan(PUBLISH_TIMEOUT_MS);
    await until(async () => (await admin.messageCount(target)) === 400, () => `expected 400 messages in ${target}`);
    expect(transport.status.state).toBe('connected');
  });

  it('a CC header from input is dropped: the message goes only where the endpoint says, with the 200 after it', async () => {
    const [target, elsewhere] = [await queue('cc-target'), await queue('cc-elsewhere')];
    const transport = await open();
    const bad = poison({ CC: elsewhere, BCC: elsewhere, 'x-delay': 5_000 });
    await transport.publish(parseEndpoint(`amqp:queue/${target}`), [bad, ...good(200)]);
    const got = await readUntilQuiet(target, 201, 10_000);
    expect(got).toHaveLength(201);
    const sent = got.find((message) => message.id === bad.id);
    expect(sent?.headers).not.toHaveProperty('CC');
    expect(sent?.headers).not.toHaveProperty('BCC');
    expect(sent?.headers).not.toHaveProperty('x-delay');
    expect(await admin.messageCount(elsewhere)).toBe(0);
  });

  it('with ?brokerHeaders=CC the route means it: RabbitMQ routes the copy to the CC queue', async () => {
    const [target, copy] = [await queue('cc-allowed'), await queue('cc-copy')];
    const transport = await open();
    await transport.publish(parseEndpoint(`amqp:queue/${target}?brokerHeaders=CC`), [poison({ CC: copy })]);
    await until(async () => (await admin.messageCount(target)) === 1 && (await admin.messageCount(copy)) === 1, () => 'expected one message in each queue');
  });

  it('through a route: the poison is dead-lettered at once (permanent), the others reach the output', async () => {
    const [input, output, dlq] = [await queue('route-in'), await queue('route-out'), await queue('route-dlq')];
    const app = createIntegration({
      logger: silentLogger,
      modules: [amqpModule({ url: AMQP_URL, publishTimeoutMs: PUBLISH_TIMEOUT_MS })],
      routes: [
        from<{ n: number }>(`amqp:queue/${input}`, { id: 'poison-route' })
          .deadLetterChannel(`amqp:queue/${dlq}`, { retry: retry({ maxAttempts: 5, initialDelayMs: 1_000 }) })
          .setHeaders((m) => (m.body.n === 13 ? { correlationId: 'c'.repeat(300) } : {}))
          .to(`amqp:queue/${output}`),
      ],
    });
    await app.start();
    try {
      const started = Date.now();
      await app.transport<AmqpTransport>('amqp').publish(parseEndpoint(`amqp:queue/${input}`), good(200));
      await until(async () => (await admin.messageCount(output)) === 199 && (await admin.messageCount(dlq)) === 1, () => 'expected 199 out, 1 dead');
      // not retried: 5 attempts 1 s apart would take 4 s and more
      expect(Date.now() - started).toBeLessThan(4_000);
      const channel = await admin.channel();
      const dead = await channel.get(dlq, { noAck: true });
      if (dead === false) throw new Error('no dead letter');
      expect(JSON.parse(dead.content.toString())).toEqual({ n: 13 });
      expect(dead.properties.headers?.['x-interchange-error-code']).toBe('AMQP_UNENCODABLE');
      await channel.close();
    } finally {
      await app.stop();
    }
  });

  it('defence in depth: a message amqplib itself refuses fails alone, the channel stays usable', async () => {
    const target = await queue('amqplib-refused');
    const manager = new AmqpConnectionManager({ url: AMQP_URL, heartbeatSeconds: 10, initialDelayMs: 100, maxDelayMs: 1_000, log: silentLogger });
    const publisher = new AmqpPublisher(manager, { timeoutMs: PUBLISH_TIMEOUT_MS, initialDelayMs: 100, maxDelayMs: 1_000, log: silentLogger });
    manager.addUser(publisher);
    await manager.open(5_000);
    try {
      const item = (n: number, properties: Record<string, unknown> = {}): Outbound =>
        new Outbound('', target, Buffer.from(JSON.stringify({ n })), { messageId: `m-${n}`, persistent: false, ...properties });
      // bypasses encodeMessage: amqplib throws on the 300-byte correlationId after taking a confirm slot
      const batch = [item(0), item(1, { correlationId: 'c'.repeat(300) }), ...Array.from({ length: 200 }, (_, n) => item(n + 2))];
      const first = await timed(publisher.publish(batch));
      expect(first.error).toBeInstanceOf(PartialPublishError);
      expect([...(first.error as PartialPublishError).failures.keys()]).toEqual([1]);
      expect((first.error as PartialPublishError).failures.get(1)).toBeInstanceOf(AmqpUnencodableError);
      const later = await timed(publisher.publish(Array.from({ length: 200 }, (_, n) => item(n + 1_000))));
      expect(later.error).toBeUndefined();
      expect(Math.max(first.ms, later.ms)).toBeLessThan(PUBLISH_TIMEOUT_MS);
      await until(async () => (await admin.messageCount(target)) === 401, () => `expected 401 messages in ${target}`);
    } finally {
      publisher.close();
      await manager.close();
    }
  });
});

describe('amqp: a refused connection is permanent', () => {
  it('a wrong password rejects connect() with AmqpAccessRefusedError at once, without the password', async () => {
    await admin.channel(); // the broker is up: a NotConnectedError below would not be about credentials
    const url = new URL(AMQP_URL);
    url.password = 'wr0ng-s3cret';
    const transport = new AmqpTransport({ url: url.toString(), connectTimeoutMs: 15_000 }, silentLogger);
    const started = Date.now();
    const error = await transport.connect().then(
      () => undefined,
      (thrown: unknown) => thrown,
    );
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(error).toBeInstanceOf(AmqpAccessRefusedError);
    expect((error as AmqpAccessRefusedError).code).toBe('AMQP_ACCESS_REFUSED');
    expect((error as AmqpAccessRefusedError).replyCode).toBe(403);
    expect((error as Error).message).not.toContain('wr0ng-s3cret');
    await transport.close();
  });

  it('a virtual host that does not exist rejects connect() with AmqpAccessRefusedError (NOT_ALLOWED) at once', async () => {
    await admin.channel();
    const url = new URL(AMQP_URL);
    url.pathname = `/${uniqueName('no-such-vhost')}`;
    const transport = new AmqpTransport({ url: url.toString(), connectTimeoutMs: 15_000 }, silentLogger);
    const started = Date.now();
    const error = await transport.connect().then(
      () => undefined,
      (thrown: unknown) => thrown,
    );
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(error).toBeInstanceOf(AmqpAccessRefusedError);
    expect((error as AmqpAccessRefusedError).replyCode).toBe(530);
    await transport.close();
  });
});
