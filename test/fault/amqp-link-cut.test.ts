import { afterAll, expect, it } from 'vitest';
import { createIntegration, createMessage, from, silentLogger, TimeoutError } from '../../facade/index.ts';
import { parseEndpoint } from '../../src/spi.ts';
import { AmqpTransport, amqpModule } from '../../adapters/amqp/index.ts';
import { LinkProxy } from '../support/link-proxy.ts';
import { BrokerAdmin, readUntilQuiet, sleep, uniqueName, until } from '../integration/amqp-support.ts';

const admin = new BrokerAdmin();
const proxy = new LinkProxy();
afterAll(async () => {
  await proxy.cut();
  await admin.close();
});

const TOTAL = 5_000;

it('the TCP link cut under a publishing route: every pending publish settles or is retried, 0 lost', async () => {
  const output = uniqueName('cut-out');
  admin.track({ queues: [output] });
  await proxy.start();
  const url = `amqp://guest:guest@127.0.0.1:${proxy.port}`;
  const app = createIntegration({
    logger: silentLogger,
    modules: [amqpModule({ url, topology: { queues: [{ name: output }] }, reconnect: { initialDelayMs: 50, maxDelayMs: 500 }, publishTimeoutMs: 60_000 })],
    routes: [from<{ n: number }>('memory:cut-in', { id: 'cut' }).to(`amqp:queue/${output}`)],
  });
  await app.start();
  const states: string[] = [];
  app.transport<AmqpTransport>('amqp').status$.subscribe((status) => states.push(status.state));
  const feeding = (async () => {
    for (let start = 0; start < TOTAL; start += 100) {
      await app.transports.publish('memory:cut-in', Array.from({ length: 100 }, (_, i) => createMessage({ n: start + i })));
    }
  })();
  try {
    await until(async () => (await admin.messageCount(output)) >= TOTAL / 5, () => 'route did not get going', 30_000);
    await proxy.cut();
    await sleep(1_500);
    // while the link is down, a publish with a short deadline still settles: a typed error, not a hang
    const shortLived = new AmqpTransport({ url, connectTimeoutMs: 500, publishTimeoutMs: 1_000 }, silentLogger);
    await expect(shortLived.connect()).rejects.toThrow(/could not connect/);
    await proxy.start();
    await feeding;
    await until(() => app.route('cut').metrics.inFlight === 0 && app.route('cut').metrics.received >= TOTAL, () => JSON.stringify(app.route('cut').metrics), 60_000);
  } finally {
    await app.stop({ drainTimeoutMs: 30_000 });
  }
  expect(states).toContain('reconnecting');
  const metrics = app.metrics().cut;
  expect(metrics?.rejected).toBe(0);
  expect(metrics?.deadLettered).toBe(0);

  const got = await readUntilQuiet(output, TOTAL, 30_000);
  const distinct = new Set(got.map((message) => (message.body as { n: number }).n));
  console.log(`link cut: ${got.length} output messages, ${distinct.size} distinct`);
  expect(distinct.size).toBe(TOTAL);
});

it('a publish on a link that stays dead settles with TimeoutError within its deadline', async () => {
  const queue = uniqueName('cut-dead');
  admin.track({ queues: [queue] });
  await proxy.start();
  const transport = new AmqpTransport({ url: `amqp://guest:guest@127.0.0.1:${proxy.port}`, publishTimeoutMs: 1_500, reconnect: { initialDelayMs: 50, maxDelayMs: 200 }, topology: { queues: [{ name: queue }] } }, silentLogger);
  await transport.connect();
  try {
    await proxy.cut();
    const started = Date.now();
    const error = await transport.publish(parseEndpoint(`amqp:queue/${queue}`), [createMessage({ x: 1 })]).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TimeoutError);
    expect(Date.now() - started).toBeLessThan(3_000);
  } finally {
    await transport.close();
  }
});
