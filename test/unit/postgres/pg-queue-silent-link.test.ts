import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { createMessage, parseEndpoint, silentLogger, TimeoutError, type Delivery } from '../../../src/core/index.ts';
import { openEmbeddedDatabase, PgQueueTransport, type Database, type PgliteDatabase, type SqlExecutor, type SqlResult } from '../../../adapters/postgres/index.ts';
import { until } from './support.ts';

// A link that drops packets without a reset, at unit level: every statement sent while the link is
// "silent" never gets an answer (not even after the link is back — the connection it went on is dead),
// statements sent afterwards go through. Without per-statement timeouts a publish, a claim and an ack
// would each wait forever.

/** A PGlite database behind a link that can go silent. */
class SilentLink implements Database {
  readonly kind = 'pglite';
  silent = false;
  unanswered = 0;

  constructor(private readonly inner: PgliteDatabase) {}

  query<R extends object>(text: string, params?: readonly unknown[]): Promise<SqlResult<R>> {
    if (this.silent) {
      this.unanswered += 1;
      return new Promise(() => undefined);
    }
    return this.inner.query<R>(text, params);
  }

  transaction<T>(work: (tx: SqlExecutor) => Promise<T>): Promise<T> {
    return this.inner.transaction(work);
  }

  listen(channel: string, onNotify: () => void): Promise<() => Promise<void>> {
    return this.inner.listen(channel, onNotify);
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}

let db: PgliteDatabase;
const transports: PgQueueTransport[] = [];
beforeAll(async () => {
  db = await openEmbeddedDatabase(); // one PGlite for the file (each test its own queue): starting one is slow
}, 120_000);
afterEach(async () => {
  for (const transport of transports.splice(0)) await transport.close();
});
afterAll(async () => {
  await db.close();
});

async function silentLinkTransport(options: { publishTimeoutMs: number; statementTimeoutMs: number }): Promise<{ transport: PgQueueTransport; link: SilentLink }> {
  const link = new SilentLink(db);
  const transport = new PgQueueTransport({ database: link, log: silentLogger, pollIntervalMs: 20, ...options });
  transports.push(transport);
  await transport.connect();
  return { transport, link };
}

it('a publish whose statement gets no answer rejects with TimeoutError at publishTimeoutMs, even when statementTimeoutMs is longer', async () => {
  const { transport, link } = await silentLinkTransport({ publishTimeoutMs: 150, statementTimeoutMs: 60_000 });
  link.silent = true;
  const states: string[] = [];
  transport.status$.subscribe((status) => states.push(status.state));

  await expect(transport.publish(parseEndpoint('pgqueue:hp-silent-publish'), [createMessage({ n: 1 })])).rejects.toBeInstanceOf(TimeoutError);
  expect(link.unanswered).toBe(1);
  expect(states.at(-1)).toBe('reconnecting');
});

it('a publish whose statement times out (statementTimeoutMs) is retried and commits once the link answers again', async () => {
  const { transport, link } = await silentLinkTransport({ publishTimeoutMs: 30_000, statementTimeoutMs: 100 });
  const uri = parseEndpoint('pgqueue:hp-silent-retry');
  link.silent = true;
  const publishing = transport.publish(uri, [createMessage({ n: 1 })]);
  await until(() => link.unanswered >= 1, () => 'the insert never went out');
  link.silent = false;

  await publishing;
  expect(await transport.depth(uri)).toMatchObject({ ready: 1 });
  expect(transport.status.state).toBe('connected');
});

it('a consumer whose ack and claim get no answer recovers when the link answers again: the ack is retried, new messages are delivered', async () => {
  const { transport, link } = await silentLinkTransport({ publishTimeoutMs: 30_000, statementTimeoutMs: 100 });
  const uri = parseEndpoint('pgqueue:hp-silent-consume');
  const received: Delivery[] = [];
  const subscription = transport.consume(uri).subscribe((delivery) => received.push(delivery));
  try {
    await transport.publish(uri, [createMessage({ n: 1 })]);
    await until(() => received.length === 1, () => 'first message not delivered');

    link.silent = true;
    received[0]?.ack(); // its delete (alone or with the next claim) goes into the silence
    await until(() => link.unanswered >= 2, () => `${link.unanswered} statements sent into the silence`);
    link.silent = false;

    await transport.publish(uri, [createMessage({ n: 2 })]);
    await until(() => received.length === 2, () => `${received.length} delivered after the link came back`);
    received[1]?.ack();
    await until(async () => {
      const depth = await transport.depth(uri);
      return depth.ready + depth.invisible === 0;
    }, () => 'acks never reached the table');
    expect(received.map((delivery) => delivery.message.body)).toEqual([{ n: 1 }, { n: 2 }]);
  } finally {
    subscription.unsubscribe();
  }
});

it('close() returns while statements are unanswered (each bounded by statementTimeoutMs)', async () => {
  const { transport, link } = await silentLinkTransport({ publishTimeoutMs: 30_000, statementTimeoutMs: 100 });
  const uri = parseEndpoint('pgqueue:hp-silent-close');
  const received: Delivery[] = [];
  const subscription = transport.consume(uri, { prefetch: 1 }).subscribe((delivery) => received.push(delivery));
  await transport.publish(uri, [createMessage({ n: 1 })]);
  await until(() => received.length === 1, () => 'not delivered');
  link.silent = true;
  received[0]?.ack();
  subscription.unsubscribe();

  await transport.close();
  expect(transport.status.state).toBe('closed');
});

it('statementTimeoutMs is an option of at least 100 ms', () => {
  expect(() => new PgQueueTransport({ statementTimeoutMs: 500 })).not.toThrow();
  expect(() => new PgQueueTransport({ statementTimeoutMs: 10 })).toThrow(/statementTimeoutMs/);
});
