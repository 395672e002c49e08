import { randomUUID } from 'node:crypto';
import mqtt, { type IPublishPacket, type MqttClient } from 'mqtt';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { MqttTransport } from '../../adapters/mqtt/index.ts';
import { createMessage, parseEndpoint, type Message } from '../../src/core/index.ts';
import { MOSQUITTO_URL, requireBroker, runClientId, sleep, testTransport, waitFor } from './mqtt-helpers.ts';
import { ChildScript } from '../support/child-script.ts';

// Issue requirement 6: an adapter-level last will (status topic) and a retained publish option.
// Against the machine's Mosquitto; every topic is under a prefix unique to this run, and every
// retained message this file leaves is cleared afterwards (empty retained payload).

const base = `it-will-${process.pid}-${Date.now().toString(36)}-${randomUUID().slice(0, 6)}`;
const retainedTopics = new Set<string>();
let open: MqttTransport[] = [];
let raw: MqttClient[] = [];

interface Received {
  readonly topic: string;
  readonly payload: string;
  readonly retain: boolean;
  readonly qos: number;
}

/** A plain mqtt.js (MQTT 5) client subscribed to `filter`, recording what it receives. */
async function watcher(filter: string): Promise<{ received: Received[] }> {
  const client = await mqtt.connectAsync(MOSQUITTO_URL, { protocolVersion: 5, clean: true, clientId: runClientId('will-watch'), reconnectPeriod: 0 });
  raw.push(client);
  const received: Received[] = [];
  client.on('message', (topic: string, payload: Buffer, packet: IPublishPacket) => {
    received.push({ topic, payload: payload.toString(), retain: packet.retain, qos: packet.qos });
  });
  await client.subscribeAsync(filter, { qos: 1 });
  return { received };
}

function transport(): MqttTransport {
  const created = testTransport({ url: MOSQUITTO_URL, clientId: runClientId('retain') });
  open.push(created);
  return created;
}

/** `test/integration/mqtt-will-child.ts` with its stdout lines; fails fast if it exits early. */
class WillChild extends ChildScript {
  constructor(statusTopic: string, payload: string) {
    super('test/integration/mqtt-will-child.ts', [MOSQUITTO_URL, runClientId('will-child'), statusTopic, payload], { stdin: true });
    retainedTopics.add(statusTopic);
  }

  async saw(line: string): Promise<void> {
    await waitFor(
      () => this.lines.includes(line) || this.process.exitCode !== null,
      () => `child did not print '${line}' (printed ${JSON.stringify(this.lines)})`,
      30_000,
    );
    expect(this.lines, `child exited (${this.process.exitCode}) before printing '${line}'`).toContain(line);
  }

  closeGracefully(): void {
    this.write('close');
  }
}

let children: WillChild[] = [];

beforeAll(async () => {
  await requireBroker(MOSQUITTO_URL);
});

afterEach(async () => {
  for (const child of children) await child.kill();
  children = [];
  for (const created of open) await created.close();
  open = [];
});

afterAll(async () => {
  // clear the retained messages (an empty retained payload deletes a topic's retained message)
  const cleaner = await mqtt.connectAsync(MOSQUITTO_URL, { protocolVersion: 5, clean: true, clientId: runClientId('will-clean'), reconnectPeriod: 0 });
  try {
    for (const topic of retainedTopics) await cleaner.publishAsync(topic, '', { qos: 1, retain: true });
  } finally {
    await cleaner.endAsync();
    for (const client of raw) await client.endAsync(true);
    raw = [];
  }
});

describe('mqtt adapter: last will and retained messages', () => {
  it('status topic: online on connect; offline by the broker (the will) after SIGKILL, by the adapter on a graceful close(), once', async () => {
    const killedStatus = `${base}/killed/status`;
    const gracefulStatus = `${base}/graceful/status`;
    const live = await watcher(`${base}/+/status`);
    const payloads = (topic: string): string[] => live.received.filter((message) => message.topic === topic).map((message) => message.payload);
    const killed = new WillChild(killedStatus, 'offline');
    const graceful = new WillChild(gracefulStatus, 'offline');
    children.push(killed, graceful);
    await Promise.all([killed.saw('ready'), graceful.saw('ready')]);
    await waitFor(() => payloads(killedStatus).includes('online') && payloads(gracefulStatus).includes('online'), () => `no 'online' on the status topics (received ${JSON.stringify(live.received)})`);

    // graceful: the adapter publishes 'offline' itself; DISCONNECT (normal) makes the broker discard the will
    graceful.closeGracefully();
    await graceful.saw('closed');
    expect(await graceful.exited).toBe(0);
    await waitFor(() => payloads(gracefulStatus).includes('offline'), () => `no 'offline' after a graceful close (received ${JSON.stringify(live.received)})`);

    await killed.kill();
    await waitFor(() => payloads(killedStatus).includes('offline'), () => `no last will on ${killedStatus} after SIGKILL (received ${JSON.stringify(live.received)})`);
    expect(live.received.find((message) => message.topic === killedStatus && message.payload === 'offline')).toMatchObject({ qos: 1 });

    // retained: a subscriber joining later gets the last status of each, flagged retained
    const late = await watcher(`${base}/+/status`);
    await waitFor(() => late.received.length >= 2, () => `a late subscriber got no retained status (received ${JSON.stringify(late.received)})`);
    expect(late.received.map(({ topic, payload, retain }) => ({ topic, payload, retain })).sort((a, b) => a.topic.localeCompare(b.topic))).toEqual([
      { topic: gracefulStatus, payload: 'offline', retain: true },
      { topic: killedStatus, payload: 'offline', retain: true },
    ]);
    await sleep(300); // settle: only for the negative check below (no second 'offline' from a will after a graceful close)
    expect(payloads(gracefulStatus)).toEqual(['online', 'offline']);
    expect(payloads(killedStatus)).toEqual(['online', 'offline']);
  });

  it('retained publish (?retain=true): a consumer subscribing afterwards receives it with its headers; a non-retained one it does not', async () => {
    const producer = transport();
    await producer.connect();
    const configTopic = `${base}/config/app`;
    retainedTopics.add(configTopic);
    const retained = createMessage({ mode: 'eco', limit: 7 }, { headers: { 'x-version': 'v3', 'x-count': 3, 'x-flag': true, contentType: 'application/json' } });
    await producer.publish(parseEndpoint(`mqtt:${configTopic}?retain=true&qos=1`), [retained]);
    const volatile = createMessage({ mode: 'lost' });
    await producer.publish(parseEndpoint(`mqtt:${base}/config/volatile?qos=1`), [volatile]);

    const consumer = transport();
    await consumer.connect();
    const got: Message[] = [];
    const subscription = consumer.consume(parseEndpoint(`mqtt:${base}/config/+name?qos=1&headers=all`)).subscribe((delivery) => {
      got.push(delivery.message);
      delivery.ack();
    });
    try {
      await waitFor(() => got.length >= 1, () => 'the late consumer got no retained message');
      expect(got[0]?.id).toBe(retained.id);
      expect(got[0]?.body).toEqual({ mode: 'eco', limit: 7 });
      expect(got[0]?.headers).toMatchObject({ 'x-version': 'v3', 'x-count': 3, 'x-flag': true, contentType: 'application/json', name: 'app', mqttTopic: configTopic });

      // positive control: a live (non-retained) message after the subscription reaches it; the
      // non-retained one published before it never does
      const marker = createMessage({ mode: 'marker' });
      await producer.publish(parseEndpoint(`mqtt:${base}/config/marker?qos=1`), [marker]);
      await waitFor(() => got.length >= 2, () => `the live marker did not arrive (got ${got.length})`);
      await sleep(200); // settle: only for the negative check below
      expect(got.map((message) => message.id)).toEqual([retained.id, marker.id]);
      expect(got.some((message) => message.id === volatile.id)).toBe(false);
    } finally {
      subscription.unsubscribe();
    }

    // and as a foreign client sees it: the retain flag set on the wire
    const foreign = await watcher(configTopic);
    await waitFor(() => foreign.received.length >= 1, () => 'a raw late subscriber got no retained message');
    expect(foreign.received[0]).toMatchObject({ topic: configTopic, retain: true, payload: JSON.stringify({ mode: 'eco', limit: 7 }) });
  });
});
