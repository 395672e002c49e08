import { connect as amqp091 } from 'amqplib';
import { afterAll, describe, expect, it } from 'vitest';
import { Amqp10Transport } from '../../adapters/amqp10/index.ts';
import { createMessage, parseEndpoint, silentLogger, type Delivery } from '../../src/core/index.ts';
import { LinkProxy } from '../support/link-proxy.ts';
import { sleep, until } from '../support/wait.ts';

// The TCP link between Interchange and the machine's RabbitMQ (AMQP 1.0 plugin on 5672) cut through a
// proxy — every socket destroyed, the port closed for 1.5 s — while a publisher sends at a fixed rate
// and a consumer accepts. The shared RabbitMQ is never restarted.
//
// The promise (docs/transports/amqp10.md): every publish resolves (transfers not settled when the link
// died are sent again on the new connection); none lost (a publish resolves only on `accepted`, into a
// durable queue); duplicates allowed (at-least-once) and bounded — a transfer the broker took but whose
// disposition the cut lost is sent again, a delivery whose `accepted` the cut lost is requeued — so at
// most the transfers in flight at the cut plus the consumer's prefetch.

const RATE_PER_SECOND = 400;
const PREFETCH = 50;
const proxy = new LinkProxy(5672);
const queue = `a0f-cut-${Date.now().toString(36)}`;

afterAll(async () => {
  await proxy.cut();
  const admin = await amqp091('amqp://guest:guest@127.0.0.1:5672');
  const channel = await admin.createChannel();
  await channel.deleteQueue(queue);
  await admin.close();
});

describe('AMQP 1.0 through a cut TCP link (fault)', () => {
  it('every publish resolves, none lost, duplicates within the in-flight bound', async () => {
    await proxy.start();
    const url = `amqp://guest:guest@127.0.0.1:${proxy.port}`;
    const options = { url, reconnect: { initialDelayMs: 50, maxDelayMs: 500 }, publishTimeoutMs: 60_000 };
    const producer = new Amqp10Transport(options, silentLogger);
    const consumer = new Amqp10Transport(options, silentLogger);
    await Promise.all([producer.connect(), consumer.connect()]);
    const endpoint = parseEndpoint(`amqp10:queue/${queue}?headers=all`);
    const states: string[] = [];
    producer.status$.subscribe((status) => states.push(status.state));
    const received = new Map<number, number>();
    const subscription = consumer.consume(endpoint, { prefetch: PREFETCH }).subscribe((delivery: Delivery) => {
      const seq = (delivery.message.body as { seq: number }).seq;
      received.set(seq, (received.get(seq) ?? 0) + 1);
      delivery.ack();
    });

    const confirmed = new Set<number>();
    const failed: unknown[] = [];
    const publishes: Promise<void>[] = [];
    let seq = 0;
    let stopped = false;
    const publisher = (async () => {
      const interval = 1_000 / RATE_PER_SECOND;
      const started = Date.now();
      while (!stopped) {
        const mine = seq++;
        publishes.push(
          producer.publish(endpoint, [createMessage({ seq: mine }, { id: `seq-${mine}` })]).then(
            () => void confirmed.add(mine),
            (error: unknown) => void failed.push(error),
          ),
        );
        await sleep(Math.max(0, started + seq * interval - Date.now()));
      }
    })();

    await until(() => confirmed.size >= 400, () => `only ${confirmed.size} confirmed before the cut`, 20_000);
    await proxy.cut();
    const inFlightAtCut = seq - confirmed.size - failed.length;
    const atCut = seq;
    await sleep(1_500);
    await proxy.start();
    await until(() => confirmed.size >= atCut + 400, () => `only ${confirmed.size} of ${seq} confirmed after the link came back`, 30_000);
    stopped = true;
    await publisher;
    await Promise.all(publishes);
    await until(() => [...confirmed].every((value) => received.has(value)), () => `${[...confirmed].filter((value) => !received.has(value)).length} confirmed publishes not delivered`, 30_000);
    await sleep(2_000);
    subscription.unsubscribe();
    await Promise.all([producer.close(), consumer.close()]);

    const lost = [...confirmed].filter((value) => !received.has(value)).length;
    const duplicates = [...received.values()].reduce((sum, count) => sum + count - 1, 0);
    console.log(`amqp10 link cut: ${seq} published at ${RATE_PER_SECOND}/s, ${confirmed.size} confirmed, ${failed.length} failed, ${lost} lost, ${duplicates} duplicate deliveries (${inFlightAtCut} publishes unsettled at the cut, prefetch ${PREFETCH})`);
    expect(states).toContain('reconnecting');
    expect(failed).toEqual([]);
    expect(confirmed.size).toBe(seq);
    expect(lost).toBe(0);
    expect(duplicates).toBeLessThanOrEqual(inFlightAtCut + PREFETCH);
  });
});
