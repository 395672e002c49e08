import { afterAll, describe, expect, it } from 'vitest';
import type { MqttTransport } from '../../adapters/mqtt/index.ts';
import { createMessage, parseEndpoint, type Delivery } from '../../src/core/index.ts';
import { runClientId, sleep, testTransport, waitFor } from '../integration/mqtt-helpers.ts';
import { OwnMosquitto } from './mqtt-broker-fixture.ts';

const TOTAL = 20_000;
const BATCH = 500;
const brokers: OwnMosquitto[] = [];

afterAll(async () => {
  for (const broker of brokers) await broker.dispose();
});

/**
 * Streams TOTAL QoS 1 messages through `broker`, restarting it a quarter of the way in; returns
 * distinct seqs received. Around the restart the consumer holds its acks and the producer waits
 * until the broker accepted a whole batch: with the consumer's window at 200, at least 300 accepted
 * messages are queued in the broker when it restarts — every run, not by chance.
 */
async function streamAcrossRestart(broker: OwnMosquitto): Promise<{ received: number; distinct: number }> {
  const uri = parseEndpoint('mqtt:fault/stream?qos=1');
  const consumer: MqttTransport = testTransport({ url: broker.url, clientId: runClientId('fault-consumer') });
  const producer: MqttTransport = testTransport({ url: broker.url, clientId: runClientId('fault-producer'), storeAndForward: { capacity: TOTAL } });
  await Promise.all([consumer.connect(), producer.connect()]);
  const seen = new Set<number>();
  let received = 0;
  let holding = false;
  const held: Delivery[] = [];
  const subscription = consumer.consume(uri, { prefetch: 200 }).subscribe((delivery) => {
    received += 1;
    seen.add((delivery.message.body as { seq: number }).seq);
    if (holding) held.push(delivery);
    else delivery.ack();
  });
  await sleep(300);
  const pending: Promise<void>[] = [];
  for (let start = 0; start < TOTAL; start += BATCH) {
    const batch = Array.from({ length: BATCH }, (_, i) => createMessage({ seq: start + i }));
    const published = producer.publish(uri, batch);
    pending.push(published);
    if (start === TOTAL / 4) {
      holding = true;
      await published; // accepted by the broker; beyond the consumer's window of 200 it waits there
      await broker.restart();
      holding = false;
      for (const delivery of held.splice(0)) delivery.ack(); // from the lost connection: no-ops, the broker redelivers or has lost them
    } else if (start < TOTAL / 4) await published; // steady stream before the restart
    else if (pending.length % 4 === 0) await sleep(5);
  }
  await Promise.all(pending);
  await waitFor(() => seen.size >= TOTAL, () => `received ${seen.size} distinct of ${TOTAL}`, 30_000).catch(() => undefined);
  await sleep(500);
  subscription.unsubscribe();
  await Promise.all([consumer.close(), producer.close()]);
  return { received, distinct: seen.size };
}

describe('Mosquitto restarted during a 20k-message QoS 1 stream', () => {
  it('with persistence saved on every change: 0 lost', async () => {
    const broker = new OwnMosquitto(18_831, true);
    brokers.push(broker);
    await broker.start();
    const { received, distinct } = await streamAcrossRestart(broker);
    console.log(`persistent Mosquitto: ${distinct} of ${TOTAL} distinct delivered (${received - distinct} duplicates), ${TOTAL - distinct} lost`);
    expect(distinct).toBe(TOTAL);
  });

  it('without persistence (the packaged default keeps nothing across a restart): the loss, counted', async () => {
    const broker = new OwnMosquitto(18_832, false);
    brokers.push(broker);
    await broker.start();
    const { received, distinct } = await streamAcrossRestart(broker);
    console.log(`non-persistent Mosquitto: ${distinct} of ${TOTAL} distinct delivered (${received - distinct} duplicates), ${TOTAL - distinct} LOST`);
    expect(distinct).toBeLessThan(TOTAL);
  });
});
