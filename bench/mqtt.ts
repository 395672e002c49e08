// MQTT benchmark (issue #5): raw mqtt.js publish → subscribe beside the same through Interchange
// (MqttTransport.publish → MqttTransport.consume), QoS 0 and QoS 1, one run, against the Mosquitto at
// MQTT_URL (default 127.0.0.1:1883, the machine's broker with its packaged config).
// `tsx bench/mqtt.ts` (or as the last section of `npm run bench`); BENCH_MQTT_MESSAGES (default 20000),
// BENCH_MQTT_REPEAT (default 3), BENCH_MQTT_WINDOW (default 500).
//
// Pacing: the packaged Mosquitto keeps at most max_queued_messages (1,000) per subscriber and silently
// drops beyond, so every variant keeps at most WINDOW messages published but not yet received (a
// sliding window, the same for raw and Interchange); a run that loses a message stalls and fails loudly.
// Like with like: both sides clean sessions (the Interchange side with persistentSession: false),
// TCP_NODELAY on every socket (the adapter sets it; the raw clients get socket.setNoDelay(true)),
// the same JSON body; the Interchange side also carries its headers as MQTT 5 properties.
import { randomUUID } from 'node:crypto';
import type { Socket } from 'node:net';
import mqtt, { type MqttClient } from 'mqtt';
import { createMessage, parseEndpoint } from '../src/index.ts';
import { MqttTransport } from '../adapters/mqtt/index.ts';

const url = process.env.MQTT_URL ?? 'mqtt://127.0.0.1:1883';
const count = Number(process.env.BENCH_MQTT_MESSAGES ?? '20000');
const repeat = Number(process.env.BENCH_MQTT_REPEAT ?? '3');
const WINDOW = Number(process.env.BENCH_MQTT_WINDOW ?? '500');
const STALL_MS = 10_000;
const run = randomUUID().slice(0, 8);

type Qos = 0 | 1;
const body = (n: number): { deviceId: string; temperature: number; seq: number } => ({ deviceId: `d${n % 50}`, temperature: (n % 100) - 15, seq: n });
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** What one variant provides: start a subscriber counting bodies with seq ≥ 0, publish one body, stop. */
interface Pair {
  subscribe(onSeq: (seq: number) => void): Promise<void>;
  publish(n: number): Promise<void> | void;
  close(): Promise<void>;
}

/**
 * Publishes `count` messages through `pair`, at most WINDOW outstanding (published, not yet received),
 * and returns messages/s from the first publish to the last receive. Probes (seq -1) first, until
 * one arrives: the subscription is in place.
 */
async function measure(pair: Pair): Promise<number> {
  let received = 0;
  let probed = false;
  let wake: (() => void) | undefined;
  await pair.subscribe((seq) => {
    if (seq < 0) probed = true;
    else received += 1;
    wake?.();
  });
  for (let tries = 0; !probed; tries += 1) {
    if (tries > 200) throw new Error('mqtt bench: the subscription never received a probe');
    void pair.publish(-1);
    await sleep(25);
  }
  await sleep(100); // late probes drained
  const publishes: Promise<void>[] = [];
  const started = process.hrtime.bigint();
  for (let n = 0; n < count; n += 1) {
    while (n - received >= WINDOW) await waitForReceive();
    const result = pair.publish(n);
    if (result !== undefined) publishes.push(result);
  }
  while (received < count) await waitForReceive();
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  await Promise.all(publishes);
  await pair.close();
  return count / seconds;

  function waitForReceive(): Promise<void> {
    const before = received;
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`mqtt bench: stalled at ${received} of ${count} received (messages lost?)`)), STALL_MS);
      wake = () => {
        if (received === before) return;
        clearTimeout(timer);
        wake = undefined;
        resolve();
      };
    });
  }
}

/** A connected mqtt.js client, TCP_NODELAY on, and the broker's Receive Maximum from its CONNACK. */
function rawClient(label: string): Promise<{ client: MqttClient; receiveMaximum: number }> {
  const client = mqtt.connect(url, { clientId: `bench-${label}-${run}-${randomUUID().slice(0, 6)}`, clean: true, protocolVersion: 5, reconnectPeriod: 0 });
  return new Promise((resolve, reject) => {
    client.once('connect', (connack) => {
      (client.stream as Partial<Socket>).setNoDelay?.(true);
      resolve({ client, receiveMaximum: connack.properties?.receiveMaximum ?? 65_535 });
    });
    client.once('error', reject);
  });
}

/**
 * Raw mqtt.js. mqtt.js does not enforce the broker's Receive Maximum on outgoing QoS ≥ 1 PUBLISHes
 * (Mosquitto's packaged max_inflight_messages makes it 20); the protocol says a client must not exceed
 * it and Interchange does not, so the raw QoS 1 publisher keeps to it too (the rest wait in a local
 * queue) unless BENCH_MQTT_RAW_RECEIVE_MAXIMUM=false.
 */
function rawPair(qos: Qos, topic: string): Pair {
  let publisher: MqttClient | undefined;
  let subscriber: MqttClient | undefined;
  let limit = 65_535;
  let inflight = 0;
  const waiting: (() => void)[] = [];
  const send = (payload: Buffer, resolve: () => void, reject: (error: Error) => void): void => {
    inflight += 1;
    publisher?.publish(topic, payload, { qos: 1 }, (error) => {
      inflight -= 1;
      waiting.shift()?.();
      if (error) reject(error);
      else resolve();
    });
  };
  return {
    async subscribe(onSeq) {
      const [pub, sub] = await Promise.all([rawClient('pub'), rawClient('sub')]);
      publisher = pub.client;
      subscriber = sub.client;
      if (process.env.BENCH_MQTT_RAW_RECEIVE_MAXIMUM !== 'false') limit = pub.receiveMaximum;
      subscriber.on('message', (_topic, payload) => onSeq((JSON.parse(payload.toString('utf8')) as { seq: number }).seq));
      await subscriber.subscribeAsync(topic, { qos });
    },
    publish(n) {
      const payload = Buffer.from(JSON.stringify(body(n)));
      if (qos === 0) {
        publisher?.publish(topic, payload, { qos: 0 });
        return undefined;
      }
      return new Promise<void>((resolve, reject) => {
        if (inflight < limit) send(payload, resolve, reject);
        else waiting.push(() => send(payload, resolve, reject));
      });
    },
    async close() {
      await Promise.all([publisher?.endAsync(), subscriber?.endAsync()]);
    },
  };
}

function interchangePair(qos: Qos, topic: string): Pair {
  const endpoint = parseEndpoint(`mqtt:${topic}?qos=${qos}`);
  const options = { url, persistentSession: false, protocolVersion: 5, connectTimeoutMs: 5_000 } as const;
  const publisher = new MqttTransport(options);
  const consumer = new MqttTransport(options);
  let stop: (() => void) | undefined;
  return {
    async subscribe(onSeq) {
      await Promise.all([publisher.connect(), consumer.connect()]);
      const subscription = consumer.consume(endpoint, { prefetch: 100 }).subscribe((delivery) => {
        onSeq((delivery.message.body as { seq: number }).seq);
        delivery.ack();
      });
      stop = () => subscription.unsubscribe();
    },
    publish(n) {
      const published = publisher.publish(endpoint, [createMessage(body(n))]);
      if (qos === 0) {
        published.catch(() => undefined);
        return undefined;
      }
      return published;
    },
    async close() {
      stop?.();
      await Promise.all([publisher.close(), consumer.close()]);
    },
  };
}

const rows = new Map<string, number[]>();
const record = (name: string, perSecond: number): void => {
  rows.set(name, [...(rows.get(name) ?? []), perSecond]);
};
const best = (name: string): number => Math.max(...(rows.get(name) ?? [Number.NaN]));
const names = (qos: Qos): [string, string] => [`raw mqtt.js: QoS ${qos} publish → subscribe`, `Interchange: QoS ${qos} transport.publish → consume`];

// Rounds interleave the variants (a shared machine drifts); each variant's best round is reported.
for (let round = 0; round < repeat; round += 1) {
  for (const qos of [0, 1] as const) {
    const [raw, ours] = names(qos);
    record(raw, await measure(rawPair(qos, `bench/${run}/raw/${qos}/${round}`)));
    record(ours, await measure(interchangePair(qos, `bench/${run}/ic/${qos}/${round}`)));
  }
}

console.log(`MQTT benchmark: ${count.toLocaleString('en')} messages per variant, Mosquitto ${url.replace(/\/\/[^@/]*@/, '//***@')}, MQTT 5, at most ${WINDOW} in flight publish → subscribe, TCP_NODELAY on all clients, best of ${repeat}`);
for (const [name, runs] of rows) console.log(`${name.padEnd(52)} ${Math.round(best(name)).toLocaleString('en').padStart(10)} msg/s  runs ${runs.map((r) => Math.round(r)).join(', ')}`);
for (const qos of [0, 1] as const) {
  const [raw, ours] = names(qos);
  const ratio = best(ours) / best(raw);
  console.log(`Interchange / raw mqtt.js, QoS ${qos}: ${ratio.toFixed(2)}× (goal ≥ 0.90×: ${ratio >= 0.9 ? 'met' : 'NOT met'})`);
}
