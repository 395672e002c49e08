// MQTT benchmark (issue #5): raw mqtt.js publish → subscribe beside the same through Interchange
// (MqttTransport.publish → MqttTransport.consume), QoS 0 and QoS 1, one run, against the Mosquitto at
// MQTT_URL (default 127.0.0.1:1883, the machine's broker with its packaged config).
// `tsx bench/mqtt.ts` (or as the last section of `npm run bench`); BENCH_MQTT_MESSAGES (default 50000: 20,000-message rounds swung 0.5–1.5× on the shared VM),
// BENCH_MQTT_REPEAT (rounds, default 5), BENCH_MQTT_WINDOW (default 500); for profiling one variant or QoS:
// BENCH_MQTT_ONLY=raw,raw-headers,interchange,interchange-bare,devices and BENCH_MQTT_QOS=0|1.
//
// Pacing: the packaged Mosquitto keeps at most max_queued_messages (1,000) per subscriber and silently
// drops beyond, so every variant keeps at most WINDOW messages published but not yet received (a
// sliding window, the same for raw and Interchange); a run that loses a message stalls and fails loudly.
// Like with like: both sides clean sessions (the Interchange side with persistentSession: false),
// TCP_NODELAY on every socket (the adapter sets it; the raw clients get socket.setNoDelay(true)),
// the same JSON body. Same bytes on the wire, compared: bare raw mqtt.js with Interchange publishing
// `?headers=none` (the payload alone), and raw mqtt.js sending an Interchange message's id and
// timestamp as user properties with Interchange's default (which sends them). The default against
// bare raw is reported as well: what carrying the id and timestamp costs.
import { randomUUID } from 'node:crypto';
import type { Socket } from 'node:net';
import mqtt, { type MqttClient } from 'mqtt';
import { createMessage } from '../facade/index.ts';
import { parseEndpoint } from '../src/spi.ts';
import { MqttTransport } from '../adapters/mqtt/index.ts';
import { median } from './stats.ts';

const url = process.env.MQTT_URL ?? 'mqtt://127.0.0.1:1883';
const count = Number(process.env.BENCH_MQTT_MESSAGES ?? '50000');
const repeat = Number(process.env.BENCH_MQTT_REPEAT ?? '5');
const WINDOW = Number(process.env.BENCH_MQTT_WINDOW ?? '500');
const STALL_MS = 10_000;

const only = process.env.BENCH_MQTT_ONLY;
const qualities: readonly Qos[] = process.env.BENCH_MQTT_QOS === undefined ? [0, 1] : [Number(process.env.BENCH_MQTT_QOS) as Qos];
const run = randomUUID().slice(0, 8);

type Qos = 0 | 1;
const body = (n: number): { deviceId: string; temperature: number; seq: number } => ({ deviceId: `d${n % 50}`, temperature: (n % 100) - 15, seq: n });
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** What one variant provides: start a subscriber counting bodies with seq ≥ 0, publish one body, stop. */
interface Pair {
  subscribe(onSeq: (seq: number) => void): Promise<void>;
  /** Connects the publishing side only (raw pairs; `subscribe` does it too). */
  connect?(): Promise<void>;
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
function rawPair(qos: Qos, topic: string, withHeaders = false): Pair & { connect(): Promise<void> } {
  let publisher: MqttClient | undefined;
  let subscriber: MqttClient | undefined;
  let limit = 65_535;
  let inflight = 0;
  const waiting: (() => void)[] = [];
  const send = (payload: Buffer, resolve: () => void, reject: (error: Error) => void): void => {
    inflight += 1;
    publisher?.publish(topic, payload, withHeaders ? { qos: 1, properties: headerProperties() } : { qos: 1 }, (error) => {
      inflight -= 1;
      waiting.shift()?.();
      if (error) reject(error);
      else resolve();
    });
  };
  const connectPublisher = async (): Promise<void> => {
    const pub = await rawClient('pub');
    publisher = pub.client;
    if (process.env.BENCH_MQTT_RAW_RECEIVE_MAXIMUM !== 'false') limit = pub.receiveMaximum;
  };
  return {
    connect: connectPublisher,
    async subscribe(onSeq) {
      const [, sub] = await Promise.all([connectPublisher(), rawClient('sub')]);
      subscriber = sub.client;
      subscriber.on('message', (_topic, payload) => onSeq((JSON.parse(payload.toString('utf8')) as { seq: number }).seq));
      await subscriber.subscribeAsync(topic, { qos });
    },
    publish(n) {
      const payload = Buffer.from(JSON.stringify(body(n)));
      if (qos === 0) {
        publisher?.publish(topic, payload, withHeaders ? { qos: 0, properties: headerProperties() } : { qos: 0 });
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

/** What an Interchange message carries besides its body (id and timestamp, as MQTT 5 user properties): the like-for-like raw baseline sends the same. */
const headerProperties = (): { userProperties: Record<string, string> } => ({ userProperties: { 'message-id': randomUUID(), timestamp: String(Date.now()) } });

/** Devices → Interchange: plain raw mqtt.js publishers (no properties, as sensors publish), consumed through Interchange — the bridge's ingress. */
function devicesPair(qos: Qos, topic: string): Pair {
  const devices = rawPair(qos, topic);
  const ingress = interchangePair(qos, topic);
  return {
    async subscribe(onSeq) {
      await ingress.subscribe(onSeq);
      await devices.connect();
    },
    publish: (n) => devices.publish(n),
    async close() {
      await Promise.all([devices.close(), ingress.close()]);
    },
  };
}

function interchangePair(qos: Qos, topic: string, headers: 'all' | 'none' = 'all'): Pair {
  const endpoint = parseEndpoint(`mqtt:${topic}?qos=${qos}`);
  const target = parseEndpoint(`mqtt:${topic}?qos=${qos}&headers=${headers}`);
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
      const published = publisher.publish(target, [createMessage(body(n))]);
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

const variants = {
  raw: { label: 'raw mqtt.js → raw mqtt.js', pair: (qos: Qos, topic: string) => rawPair(qos, topic) },
  'raw-headers': { label: 'raw mqtt.js → raw, + id/timestamp properties', pair: (qos: Qos, topic: string) => rawPair(qos, topic, true) },
  interchange: { label: 'Interchange publish → Interchange consume', pair: (qos: Qos, topic: string) => interchangePair(qos, topic) },
  'interchange-bare': { label: 'Interchange ?headers=none → Interchange', pair: (qos: Qos, topic: string) => interchangePair(qos, topic, 'none') },
  devices: { label: 'raw devices → Interchange consume', pair: devicesPair },
} as const;
type Variant = keyof typeof variants;
const chosen = (Object.keys(variants) as Variant[]).filter((variant) => only === undefined || only.split(',').includes(variant));
const rates = new Map<string, number[]>();

// Interleaved rounds: every variant once per round, back to back (a shared machine drifts between
// runs); ratios are taken within a round and the median of the rounds is reported.
for (let round = 0; round < repeat; round += 1) {
  for (const qos of qualities) {
    for (const variant of chosen) {
      const key = `${variant}/${qos}`;
      rates.set(key, [...(rates.get(key) ?? []), await measure(variants[variant].pair(qos, `bench/${run}/${variant}/${qos}/${round}`))]);
    }
  }
}

const series = (variant: Variant, qos: Qos): number[] => rates.get(`${variant}/${qos}`) ?? [];
const ratios = (a: Variant, b: Variant, qos: Qos): number[] => series(a, qos).map((rate, round) => rate / (series(b, qos)[round] ?? Number.NaN));
const fixed = (values: readonly number[]): string => values.map((v) => v.toFixed(2)).join(' ');
console.log(`MQTT benchmark: ${count.toLocaleString('en')} messages per variant and round, Mosquitto ${url.replace(/\/\/[^@/]*@/, '//***@')}, MQTT 5, at most ${WINDOW} in flight publish → subscribe, TCP_NODELAY on all clients, ${repeat} interleaved rounds`);
for (const qos of qualities) {
  console.log(`QoS ${qos}`);
  for (const variant of chosen) {
    const values = series(variant, qos);
    console.log(`  ${variants[variant].label.padEnd(46)} ${Math.round(median(values)).toLocaleString('en').padStart(8)} msg/s median  (rounds ${values.map((v) => Math.round(v)).join(', ')})`);
  }
  const report = (a: Variant, b: Variant, what: string, goal?: number): void => {
    if (!chosen.includes(a) || !chosen.includes(b)) return;
    const values = ratios(a, b, qos);
    const verdict = goal === undefined ? '' : ` (goal ≥ ${goal.toFixed(2)}×: ${median(values) >= goal ? 'met' : 'NOT met'})`;
    console.log(`  ${what.padEnd(46)} ${median(values).toFixed(2)}× median  (rounds ${fixed(values)})${verdict}`);
  };
  report('interchange-bare', 'raw', 'same bytes: Interchange headers=none / raw', 0.9);
  report('interchange', 'raw-headers', 'same bytes: Interchange / raw + same properties', 0.9);
  report('interchange', 'raw', 'Interchange default / bare raw (id, timestamp)');
  report('devices', 'raw', 'devices → Interchange / raw → raw', 0.9);
}
