import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import mqttPacket from 'mqtt-packet';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { mqttModule, type MqttTransport } from '../../adapters/mqtt/index.ts';
import { MqttConnection } from '../../adapters/mqtt/mqtt-connection.ts';
import { createMessage, parseEndpoint, silentLogger, type Delivery, type Message } from '../../src/core/index.ts';
import { createIntegration, from, retry } from '../../facade/index.ts';
import { TestKit } from '../../facade/testing/index.ts';
import { MOSQUITTO_URL, requireBroker, runClientId, sleep, testTransport, waitFor } from './mqtt-helpers.ts';

const exec = promisify(execFile);
const run = `it-${process.pid}-${Date.now().toString(36)}`;
let open: MqttTransport[] = [];

function transport(clientId = runClientId('delivery')): MqttTransport {
  const created = testTransport({ url: MOSQUITTO_URL, clientId });
  open.push(created);
  return created;
}

function collect(source: MqttTransport, uri: string, settle: (delivery: Delivery) => void = (delivery) => delivery.ack()): { messages: Message[]; stop: () => void } {
  const messages: Message[] = [];
  const subscription = source.consume(parseEndpoint(uri), { prefetch: 100 }).subscribe((delivery) => {
    messages.push(delivery.message);
    settle(delivery);
  });
  return { messages, stop: () => subscription.unsubscribe() };
}

/**
 * Calls `onPuback` with the packet id of every QoS 1 PUBACK any consumer writes: they go out pre-encoded,
 * several to a write (`0x40 0x02 <packet id>` each), through `MqttConnection.sendBytes`.
 */
function watchPubacks(onPuback: (packetId: number) => void): void {
  const original = MqttConnection.prototype.sendBytes;
  vi.spyOn(MqttConnection.prototype, 'sendBytes').mockImplementation(function (this: MqttConnection, bytes) {
    for (let at = 0; at + 3 < bytes.length; at += 4) if (bytes[at] === 0x40) onPuback(bytes.readUInt16BE(at + 2));
    original.call(this, bytes);
  });
}

beforeAll(async () => {
  await requireBroker(MOSQUITTO_URL);
});

afterEach(async () => {
  vi.restoreAllMocks();
  for (const created of open) await created.close();
  open = [];
});

describe('mqtt adapter against Mosquitto', () => {
  it('wildcards and named topic parameters become headers', async () => {
    const consumer = transport();
    const producer = transport();
    await Promise.all([consumer.connect(), producer.connect()]);
    const got = collect(consumer, `mqtt:${run}/devices/+deviceId/telemetry/#rest?qos=1`);
    await sleep(300); // SUBSCRIBE in effect
    await producer.publish(parseEndpoint(`mqtt:${run}/devices/d-7/telemetry/cpu/0?qos=1`), [createMessage({ value: 1 })]);
    await producer.publish(parseEndpoint(`mqtt:${run}/devices/{deviceId}/telemetry/x?qos=1`), [createMessage({ deviceId: 'from-body', value: 2 })]);
    await waitFor(() => got.messages.length >= 2, () => `got ${got.messages.length}`);
    expect(got.messages[0]?.headers).toMatchObject({ deviceId: 'd-7', rest: 'cpu/0', mqttTopic: `${run}/devices/d-7/telemetry/cpu/0` });
    expect(got.messages[1]?.headers).toMatchObject({ deviceId: 'from-body', rest: 'x' });
  });

  it('QoS 1 messages published while the consumer is stopped arrive after it restarts (persistent session)', async () => {
    const clientId = runClientId('persist');
    const uri = `mqtt:${run}/persist?qos=1&headers=all`; // Interchange ↔ Interchange: ids round-trip
    const first = transport(clientId);
    await first.connect();
    const before = collect(first, uri);
    await sleep(300);
    await first.close(); // session kept by the broker
    before.stop();

    const producer = transport();
    await producer.connect();
    const sent = Array.from({ length: 500 }, (_, seq) => createMessage({ seq }));
    await producer.publish(parseEndpoint(uri), sent);

    const second = transport(clientId);
    await second.connect();
    const after = collect(second, uri);
    await waitFor(() => after.messages.length >= 500, () => `got ${after.messages.length} of 500`);
    await sleep(200);
    expect(after.messages.map((message) => message.id)).toEqual(sent.map((message) => message.id));
  });

  it('refuses at start a configuration that cannot keep a session', () => {
    expect(() => testTransport({ url: MOSQUITTO_URL, clientId: undefined as unknown as string })).toThrow(/stable clientId/);
    expect(() => testTransport({ url: MOSQUITTO_URL, clientId: 'x', sessionExpirySeconds: 0 })).toThrow(/session expiry|sessionExpirySeconds/);
    expect(() => testTransport({ url: 'ftp://nope', clientId: 'x' })).toThrow(/invalid MQTT options/);
  });

  it('a message whose route fails is acknowledged to the broker only after it is dead-lettered', async () => {
    const sends: { cmd: string; at: number }[] = [];
    const original = MqttConnection.prototype.send;
    vi.spyOn(MqttConnection.prototype, 'send').mockImplementation(function (this: MqttConnection, packet) {
      sends.push({ cmd: packet.cmd, at: performance.now() });
      original.call(this, packet);
    });
    watchPubacks(() => sends.push({ cmd: 'puback', at: performance.now() }));
    const source = `mqtt:${run}/failing?qos=1`;
    const route = from(source, { id: 'failing' })
      .deadLetterChannel('memory:dead', { retry: retry({ maxAttempts: 3, initialDelayMs: 100 }) })
      .process(() => {
        throw new Error('boom');
      })
      .to('memory:never');
    const app = createIntegration({ routes: [route], modules: [mqttModule({ url: MOSQUITTO_URL, clientId: runClientId('failing'), sessionExpirySeconds: 600 })], logger: silentLogger });
    await app.start();
    const kit = new TestKit(app);
    const dead = kit.mock('memory:dead');
    await sleep(300);
    const producer = transport();
    await producer.connect();
    await producer.publish(parseEndpoint(source), [createMessage({ n: 1 })]);
    const [deadLettered] = await dead.expect(1, { timeoutMs: 10_000 });
    const deadAt = performance.now();
    await waitFor(() => sends.some((send) => send.cmd === 'puback'), () => 'no PUBACK sent');
    const pubacks = sends.filter((send) => send.cmd === 'puback');
    expect(pubacks).toHaveLength(1);
    expect((pubacks[0] as { at: number }).at).toBeGreaterThanOrEqual(deadAt - 5);
    expect(deadLettered?.headers['x-interchange-error']).toMatch(/boom/);
    kit.close();
    await app.stop({ drainTimeoutMs: 1_000 });
  });

  it('a route with no prefetch of its own holds 1,000 unacknowledged (the MQTT default window), then the rest as it settles; PUBACKs in order', async () => {
    const source = `mqtt:${run}/window?qos=1`;
    let release: () => void = () => undefined;
    const held = new Promise<void>((resolve) => (release = resolve));
    let entered = 0;
    const route = from(source, { id: 'window' })
      .process(
        async () => {
          entered += 1;
          await held;
        },
        { concurrency: 5_000 },
      )
      .to('memory:window-out');
    const app = createIntegration({ routes: [route], modules: [mqttModule({ url: MOSQUITTO_URL, clientId: runClientId('window'), persistentSession: false })], logger: silentLogger });
    const acknowledged: number[] = [];
    watchPubacks((packetId) => acknowledged.push(packetId));
    await app.start();
    const kit = new TestKit(app);
    const out = kit.mock('memory:window-out');
    await sleep(300);
    const producer = transport();
    await producer.connect();
    const sent = Array.from({ length: 1_200 }, (_, n) => createMessage({ n }));
    await producer.publish(parseEndpoint(source), sent);
    await waitFor(() => entered >= 1_000, () => `entered ${entered}`);
    await sleep(500); // nothing more arrives while all 1,000 are unsettled
    expect(entered).toBe(1_000);
    expect(acknowledged).toHaveLength(0);
    release();
    const received = await out.expect(1_200, { timeoutMs: 20_000 });
    expect(received.map((message) => (message.body as { n: number }).n).sort((a, b) => a - b)).toEqual(sent.map((_, n) => n));
    await waitFor(() => acknowledged.length === 1_200, () => `${acknowledged.length} PUBACKs`);
    // packet ids are the broker's, 1…65535 in sending order for a fresh session: acknowledged in that order
    expect(acknowledged).toEqual([...acknowledged].sort((a, b) => a - b));
    kit.close();
    await app.stop({ drainTimeoutMs: 1_000 });
  });

  it('a graceful stop while the last messages settle still acknowledges them: the session gets none of them again', async () => {
    const source = `mqtt:${run}/stop-acks?qos=1`;
    const clientId = runClientId('stop-acks');
    const module = (): ReturnType<typeof mqttModule> => mqttModule({ url: MOSQUITTO_URL, clientId, sessionExpirySeconds: 600 });
    let processed = 0;
    let stopping: Promise<unknown> | undefined;
    const first = createIntegration({
      routes: [
        from(source, { id: 'stop-acks' }).process(async () => {
          processed += 1;
          if (processed === 50) stopping = first.stop({ drainTimeoutMs: 5_000 }); // the 50th is in flight: the stop drains it
          await sleep(1);
        })
        .to('memory:stop-acks-out'),
      ],
      modules: [module()],
      logger: silentLogger,
    });
    await first.start();
    await sleep(300);
    const producer = transport();
    await producer.connect();
    await producer.publish(parseEndpoint(source), Array.from({ length: 50 }, (_, n) => createMessage({ n })));
    await waitFor(() => stopping !== undefined, () => `processed ${processed}`);
    await stopping;
    let again = 0;
    const second = createIntegration({ routes: [from(source, { id: 'stop-acks' }).process(() => void (again += 1)).to('memory:stop-acks-out')], modules: [module()], logger: silentLogger });
    await second.start();
    await sleep(1_500);
    await second.stop();
    expect(processed).toBe(50);
    expect(again).toBe(0);
  });

  it('a shared subscription splits a stream between two consumers, none delivered to both', async () => {
    const uri = `mqtt:${run}/shared?qos=1&group=workers&headers=all`;
    const a = transport();
    const b = transport();
    const producer = transport();
    await Promise.all([a.connect(), b.connect(), producer.connect()]);
    const gotA = collect(a, uri);
    const gotB = collect(b, uri);
    await sleep(300);
    const sent = Array.from({ length: 400 }, (_, seq) => createMessage({ seq }));
    await producer.publish(parseEndpoint(uri), sent);
    await waitFor(() => gotA.messages.length + gotB.messages.length >= 400, () => `got ${gotA.messages.length} + ${gotB.messages.length}`);
    await sleep(300);
    const idsA = new Set(gotA.messages.map((message) => message.id));
    expect(gotA.messages.length).toBeGreaterThan(0);
    expect(gotB.messages.length).toBeGreaterThan(0);
    expect(gotA.messages.length + gotB.messages.length).toBe(400);
    expect(gotB.messages.filter((message) => idsA.has(message.id))).toEqual([]);
  });

  it('MQTT 5 user properties, content type, expiry, response topic and correlation data survive a round trip', async () => {
    const consumer = transport();
    await consumer.connect();
    const got = collect(consumer, `mqtt:${run}/props?qos=2&headers=all`); // a trusted Interchange peer
    await sleep(300);
    const expiresAt = Date.now() + 60_000;
    const sent = createMessage({ ok: true }, { headers: { 'x-tenant': 'acme', 'x-count': 3, 'x-flag': false, contentType: 'application/json', replyTo: `${run}/replies`, correlationId: 'corr-9', expiresAt } });
    await consumer.publish(parseEndpoint(`mqtt:${run}/props?qos=2`), [sent]);
    await waitFor(() => got.messages.length >= 1, () => 'nothing received');
    expect(got.messages[0]?.id).toBe(sent.id);
    expect(got.messages[0]?.headers).toMatchObject({ 'x-tenant': 'acme', 'x-count': 3, 'x-flag': false, contentType: 'application/json', replyTo: `${run}/replies`, correlationId: 'corr-9', expiresAt });
    // and as a foreign MQTT 5 client sees it
    const shown = exec('mosquitto_sub', ['-h', '127.0.0.1', '-p', new URL(MOSQUITTO_URL).port || '1883', '-V', '5', '-q', '1', '-t', `${run}/props-cli`, '-C', '1', '-W', '10', '-F', '%P|%p']);
    await sleep(500);
    await consumer.publish(parseEndpoint(`mqtt:${run}/props-cli?qos=1`), [sent]);
    const { stdout } = await shown;
    expect(stdout).toContain('x-tenant:acme');
    expect(stdout).toContain('|{"ok":true}');
  });

  it('interoperates with mosquitto_pub and mosquitto_sub', async () => {
    const consumer = transport();
    await consumer.connect();
    const got = collect(consumer, `mqtt:${run}/cli/+source?qos=1&userProperties=x-origin`); // a foreign client: only allow-listed user properties
    await sleep(300);
    const port = new URL(MOSQUITTO_URL).port || '1883';
    await exec('mosquitto_pub', ['-h', '127.0.0.1', '-p', port, '-q', '1', '-t', `${run}/cli/pub`, '-m', '{"temperature":21.5}']);
    await exec('mosquitto_pub', ['-h', '127.0.0.1', '-p', port, '-V', '5', '-q', '1', '-t', `${run}/cli/pub5`, '-m', 'plain text', '-D', 'publish', 'user-property', 'x-origin', 'cli']);
    await waitFor(() => got.messages.length >= 2, () => `got ${got.messages.length}`);
    expect(got.messages[0]?.body).toEqual({ temperature: 21.5 });
    expect(got.messages[0]?.headers.source).toBe('pub');
    expect(got.messages[1]?.body).toBe('plain text');
    expect(got.messages[1]?.headers['x-origin']).toBe('cli');

    const received = exec('mosquitto_sub', ['-h', '127.0.0.1', '-p', port, '-q', '1', '-t', `${run}/to-cli`, '-C', '2', '-W', '10']);
    await sleep(500);
    await consumer.publish(parseEndpoint(`mqtt:${run}/to-cli?qos=1`), [createMessage({ hello: 'cli' }), createMessage('text body', { headers: { contentType: 'text/plain' } })]);
    const { stdout } = await received;
    expect(stdout.trim().split('\n')).toEqual(['{"hello":"cli"}', 'text body']);
  });

  it('headers=none publishes the payload alone, over MQTT 5 and 3.1.1 (no user properties, no envelope)', async () => {
    const port = new URL(MOSQUITTO_URL).port || '1883';
    const v311 = testTransport({ url: MOSQUITTO_URL, clientId: runClientId('bare311'), protocolVersion: 4 });
    open.push(v311);
    const v5 = transport();
    await Promise.all([v311.connect(), v5.connect()]);
    const shown = exec('mosquitto_sub', ['-h', '127.0.0.1', '-p', port, '-V', '5', '-q', '1', '-t', `${run}/bare/#`, '-C', '3', '-W', '10', '-F', '%t %P|%p']);
    await sleep(500);
    const command = createMessage({ on: true }, { headers: { tenant: 'acme' } });
    await v5.publish(parseEndpoint(`mqtt:${run}/bare/v5?qos=1&headers=none`), [command]);
    await v311.publish(parseEndpoint(`mqtt:${run}/bare/v311?qos=1&headers=none`), [command]);
    await v5.publish(parseEndpoint(`mqtt:${run}/bare/default?qos=1`), [command]);
    const lines = (await shown).stdout.trim().split('\n');
    expect(lines[0]).toBe(`${run}/bare/v5 |{"on":true}`);
    expect(lines[1]).toBe(`${run}/bare/v311 |{"on":true}`);
    expect(lines[2]).toContain(`message-id:${command.id}`); // the default, for contrast
  });

  it('uses its own PUBLISH reader on a real connection (mqtt.js and the adapter share one mqtt-packet)', async () => {
    const prototype = Object.getPrototypeOf(mqttPacket.parser({})) as { _parsePublish(): void };
    const fallback = vi.spyOn(prototype, '_parsePublish');
    const consumer = transport();
    await consumer.connect();
    const got = collect(consumer, `mqtt:${run}/reader?qos=1&headers=all`);
    await sleep(300);
    const sent = createMessage({ n: 1 }, { headers: { tenant: 'acme' } });
    await consumer.publish(parseEndpoint(`mqtt:${run}/reader?qos=1`), [sent]);
    await waitFor(() => got.messages.length >= 1, () => 'nothing received');
    expect(got.messages[0]).toMatchObject({ id: sent.id, body: { n: 1 }, headers: { tenant: 'acme' } });
    expect(fallback).not.toHaveBeenCalled();
  });

  it('large and small PUBLISHes, interleaved, arrive intact over a real socket (packets split across reads)', async () => {
    const consumer = transport();
    const producer = transport();
    await Promise.all([consumer.connect(), producer.connect()]);
    const got = collect(consumer, `mqtt:${run}/sizes?qos=1&headers=all`);
    await sleep(300);
    const sizes = [10, 300_000, 1, 70_000, 5, 1_000_000, 16_384, 0];
    const bodies = sizes.map((size, i) => Buffer.alloc(size, i + 1));
    const sent = bodies.map((body) => createMessage(body, { headers: { contentType: 'application/octet-stream', size: body.length } }));
    await producer.publish(parseEndpoint(`mqtt:${run}/sizes?qos=1`), sent);
    await waitFor(() => got.messages.length >= sent.length, () => `got ${got.messages.length}`);
    expect(got.messages.map((m) => m.id)).toEqual(sent.map((m) => m.id));
    for (const [i, message] of got.messages.entries()) {
      expect(Buffer.isBuffer(message.body)).toBe(true);
      expect((message.body as Buffer).equals(bodies[i] as Buffer)).toBe(true);
      expect(message.headers.size).toBe(sizes[i]);
    }
  });
});
