import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createConnection, type Socket } from 'node:net';
import mqttPacket, { type Packet } from 'mqtt-packet';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { mqttModule, type MqttTransport } from '../../adapters/mqtt/index.ts';
import { parseEndpoint, silentLogger } from '../../src/core/index.ts';
import { createIntegration, from, type Integration } from '../../facade/index.ts';
import { TestKit } from '../../facade/testing/index.ts';
import { MOSQUITTO_URL, requireBroker, runClientId, sleep, waitFor } from './mqtt-helpers.ts';

// A consumer's maxMessageBytes against Mosquitto (whose default message_size_limit, none, lets 140 MB
// through): the oversized message streams past the parser and is dead-lettered truncated, with its
// size and hash, without the process's memory growing with it; the messages after it arrive.

const run = `it-oversize-${process.pid}-${Date.now().toString(36)}`;
let app: Integration | undefined;
let publisher: RawPublisher | undefined;

beforeAll(async () => {
  await requireBroker(MOSQUITTO_URL);
});

afterEach(async () => {
  publisher?.close();
  publisher = undefined;
  await app?.stop({ drainTimeoutMs: 2_000 });
  app = undefined;
});

/**
 * An MQTT 5 publisher on a bare socket, so a 140 MB payload can be streamed from one 1 MiB block
 * (mqtt.js would need it whole in memory: this process's RSS is what the test measures).
 */
class RawPublisher {
  private nextId = 1;
  private constructor(private readonly socket: Socket) {}

  static async connect(): Promise<RawPublisher> {
    const { hostname, port } = new URL(MOSQUITTO_URL);
    const socket = createConnection({ host: hostname, port: Number(port || 1883) });
    await once(socket, 'connect');
    const parser = mqttPacket.parser({ protocolVersion: 5 });
    const connack = new Promise<Packet>((resolve) => parser.once('packet', resolve));
    socket.on('data', (chunk: Buffer) => parser.parse(chunk));
    socket.write(mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 5, clean: true, clientId: runClientId('raw-pub'), keepalive: 60 }));
    expect((await connack).cmd).toBe('connack');
    return new RawPublisher(socket);
  }

  /** A QoS 1 PUBLISH whose payload is `size` bytes: `block` repeated (the last one cut). Returns the payload's SHA-256. */
  async publishStreamed(topic: string, block: Buffer, size: number): Promise<string> {
    const topicBytes = Buffer.from(topic);
    const variableHeader = Buffer.alloc(2 + topicBytes.length + 2 + 1); // topic, packet id, no properties
    variableHeader.writeUInt16BE(topicBytes.length, 0);
    topicBytes.copy(variableHeader, 2);
    variableHeader.writeUInt16BE(this.nextId++, 2 + topicBytes.length);
    const length = variableHeader.length + size;
    const fixed = Buffer.from([0x32, (length & 0x7f) | 0x80, ((length >> 7) & 0x7f) | 0x80, ((length >> 14) & 0x7f) | 0x80, length >> 21]);
    await this.write(Buffer.concat([fixed, variableHeader]));
    const hash = createHash('sha256');
    for (let sent = 0; sent < size; sent += block.length) {
      const part = block.subarray(0, Math.min(block.length, size - sent));
      hash.update(part);
      await this.write(part);
    }
    return hash.digest('hex');
  }

  async publish(topic: string, payload: string, userProperties?: Record<string, string>, qos: 0 | 1 = 1): Promise<void> {
    const properties = userProperties === undefined ? {} : { properties: { userProperties } };
    const id = qos === 0 ? {} : { messageId: this.nextId++ };
    await this.write(mqttPacket.generate({ cmd: 'publish', topic, payload, qos, retain: false, dup: false, ...id, ...properties }, { protocolVersion: 5 }));
  }

  close(): void {
    this.socket.destroy();
  }

  private async write(bytes: Buffer): Promise<void> {
    if (!this.socket.write(bytes)) await once(this.socket, 'drain');
  }
}

/** The route of the issue on a fresh topic, with the transport `options` (and endpoint options `query`). */
async function startRoute(options: Parameters<typeof mqttModule>[0] = {}, query = ''): Promise<{ kit: TestKit; uri: string }> {
  const uri = `mqtt:${run}-${Math.random().toString(36).slice(2, 8)}/+deviceId/t?qos=1${query}`;
  const route = from(uri, { id: 'oversize' })
    .deadLetterChannel('memory:dead')
    .to('memory:ok');
  app = createIntegration({ routes: [route], modules: [mqttModule({ url: MOSQUITTO_URL, clientId: runClientId('oversize'), sessionExpirySeconds: 600, ...options })], logger: silentLogger });
  // the consumer's session exists before anything is published: the broker keeps its messages
  await app.transport<MqttTransport>('mqtt').provision(parseEndpoint(uri));
  await app.start();
  return { kit: new TestKit(app), uri };
}

const topicOf = (uri: string, deviceId: string): string => parseEndpoint(uri).path.replace('+deviceId', deviceId);

describe('mqtt maxMessageBytes against Mosquitto', () => {
  it('a 140 MB message is refused cheaply and dead-lettered truncated, with its size and hash; the 5 after it arrive', async () => {
    const { kit, uri } = await startRoute();
    const dead = kit.mock('memory:dead');
    const ok = kit.mock('memory:ok');
    publisher = await RawPublisher.connect();
    const block = randomBytes(1_048_576);
    const size = 140_000_000;

    const baseline = process.memoryUsage().rss;
    let peak = baseline;
    const sampler = setInterval(() => {
      peak = Math.max(peak, process.memoryUsage().rss);
    }, 50);
    let sha256: string;
    try {
      sha256 = await publisher.publishStreamed(topicOf(uri, 'dev-1'), block, size);
      for (let n = 1; n <= 5; n += 1) await publisher.publish(topicOf(uri, `dev-${n}`), JSON.stringify({ n }));
      await dead.expect(1, { timeoutMs: 60_000 });
    } finally {
      clearInterval(sampler);
    }
    peak = Math.max(peak, process.memoryUsage().rss);
    const growthMb = (peak - baseline) / 1_048_576;
    console.log(`RSS while a ${size}-byte message streamed past the consumer: baseline ${(baseline / 1_048_576).toFixed(1)} MiB, peak ${(peak / 1_048_576).toFixed(1)} MiB, growth ${growthMb.toFixed(1)} MiB`);

    const [letter] = dead.received;
    expect(Buffer.isBuffer(letter?.body)).toBe(true);
    expect(letter?.body).toEqual(block.subarray(0, 4_096));
    expect(letter?.headers).toMatchObject({
      'x-interchange-original-size': size,
      'x-interchange-sha256': sha256,
      'x-interchange-truncated': true,
      'x-interchange-error-code': 'MQTT_MESSAGE_TOO_LARGE',
      deviceId: 'dev-1',
    });
    expect(String(letter?.headers['x-interchange-error'])).toContain(`${size} bytes`);
    const delivered = await ok.expect(5, { timeoutMs: 10_000 });
    expect(delivered.map((message) => message.body)).toEqual([1, 2, 3, 4, 5].map((n) => ({ n })));
    expect(delivered.map((message) => message.headers['x-interchange-truncated'])).toEqual([undefined, undefined, undefined, undefined, undefined]);
    expect(growthMb).toBeLessThan(80);
    kit.close();
  });

  it('the endpoint option maxMessageBytes overrides the transport\'s; truncation headers a publisher sends are dropped', async () => {
    const { kit, uri } = await startRoute({ maxMessageBytes: 10_000_000 }, '&maxMessageBytes=1000');
    const dead = kit.mock('memory:dead');
    const ok = kit.mock('memory:ok');
    publisher = await RawPublisher.connect();
    await publisher.publish(topicOf(uri, 'big'), 'x'.repeat(1_001));
    await publisher.publish(topicOf(uri, 'fits'), JSON.stringify('y'.repeat(998)), { 'x-interchange-truncated': 'true', 'x-interchange-original-size': '5', 'x-interchange-sha256': 'forged' });
    const [letter] = await dead.expect(1, { timeoutMs: 10_000 });
    expect(letter?.headers).toMatchObject({ 'x-interchange-original-size': 1_001, 'x-interchange-truncated': true, deviceId: 'big' });
    expect((letter?.body as Buffer).toString()).toBe('x'.repeat(1_000));
    const [fits] = await ok.expect(1, { timeoutMs: 10_000 });
    expect(fits?.headers.deviceId).toBe('fits');
    expect(fits?.body).toBe('y'.repeat(998));
    expect([fits?.headers['x-interchange-truncated'], fits?.headers['x-interchange-original-size'], fits?.headers['x-interchange-sha256']]).toEqual([undefined, undefined, undefined]);
    kit.close();
  });

  it('QoS 0: an oversized message is dead-lettered truncated too (at-most-once: nothing to acknowledge)', async () => {
    const zero = `mqtt:${run}-q0/+deviceId/t?qos=0&maxMessageBytes=100`;
    app = createIntegration({ routes: [from(zero, { id: 'qos0' }).deadLetterChannel('memory:dead').to('memory:ok')], modules: [mqttModule({ url: MOSQUITTO_URL, clientId: runClientId('oversize-q0'), persistentSession: false })], logger: silentLogger });
    await app.start();
    const kit0 = new TestKit(app);
    const dead = kit0.mock('memory:dead');
    publisher = await RawPublisher.connect();
    // QoS 0 is not kept for a consumer not yet subscribed: sent until one arrives
    await waitFor(
      async () => {
        await publisher?.publish(topicOf(zero, 'q0'), 'z'.repeat(150), undefined, 0);
        await sleep(100);
        return dead.received.length > 0;
      },
      () => 'no dead letter',
    );
    expect(dead.received[0]?.headers).toMatchObject({ 'x-interchange-original-size': 150, 'x-interchange-truncated': true, 'x-interchange-error-code': 'MQTT_MESSAGE_TOO_LARGE', deviceId: 'q0' });
    expect((dead.received[0]?.body as Buffer).toString()).toBe('z'.repeat(100));
    kit0.close();
  });

  it('maxPacketBytes is sent as Maximum Packet Size: Mosquitto discards a larger message for the consumer instead of sending it', async () => {
    const { kit, uri } = await startRoute({ maxPacketBytes: 65_536 });
    const dead = kit.mock('memory:dead');
    const ok = kit.mock('memory:ok');
    publisher = await RawPublisher.connect();
    await publisher.publishStreamed(topicOf(uri, 'too-big'), randomBytes(100_000), 100_000);
    for (let n = 1; n <= 3; n += 1) await publisher.publish(topicOf(uri, `d-${n}`), JSON.stringify({ n }));
    await ok.expect(3, { timeoutMs: 10_000 });
    await sleep(300); // nothing else comes: the 100 KB message was the broker's to drop
    expect(ok.received.map((message) => message.body)).toEqual([{ n: 1 }, { n: 2 }, { n: 3 }]);
    expect(dead.received).toEqual([]);
    kit.close();
  });
});
