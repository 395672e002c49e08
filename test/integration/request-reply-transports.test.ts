import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { createIntegration, createMessage, from, retryAfter, deadLetter, silentLogger, type Integration } from '../../facade/index.ts';
import { TestKit } from '../../facade/testing/index.ts';
import { parseEndpoint } from '../../src/spi.ts';
import { amqpModule } from '../../adapters/amqp/index.ts';
import { mqttModule, type MqttTransport } from '../../adapters/mqtt/index.ts';
import { AMQP_URL, BrokerAdmin, connectedTransport, sleep, uniqueName, until } from './amqp-support.ts';
import { MOSQUITTO_URL, requireBroker, runClientId, testTransport } from './mqtt-helpers.ts';

/**
 * `.request()` against the real brokers: one responder route pattern per transport —
 * `.to('amqp:queue/{replyTo}')` (direct reply-to), `.to('mqtt:{replyTo}')` (MQTT 5 response topic and
 * correlation data) — and the settlement of a source whose request is pending when the route stops.
 */
const admin = new BrokerAdmin();
const running: { app: Integration; kit: TestKit }[] = [];

async function start(app: Integration): Promise<TestKit> {
  await app.start();
  const kit = new TestKit(app);
  running.push({ app, kit });
  return kit;
}

afterEach(async () => {
  for (const { app, kit } of running.splice(0)) {
    kit.close();
    await app.stop({ drainTimeoutMs: 200 });
  }
  await admin.cleanup();
});
afterAll(() => admin.close());

describe('request-reply over AMQP (direct reply-to)', () => {
  it('a route requests, a responder route replies to {replyTo}; the reply goes on', async () => {
    const service = uniqueName('hE-rr-svc');
    admin.track({ queues: [service] });
    const kit = await start(
      createIntegration({
        logger: silentLogger,
        modules: [amqpModule({ url: AMQP_URL, topology: { queues: [{ name: service }] } })],
        routes: [
          from<{ x: number }>('memory:hE-rr-in').request<{ doubled: number }>(`amqp:queue/${service}`, { timeoutMs: 5_000 }).to('memory:hE-rr-out'),
          from<{ x: number }>(`amqp:queue/${service}`)
            .transform((m) => ({ doubled: m.body.x * 2 }))
            .to('amqp:queue/{replyTo}'),
        ],
      }),
    );
    const out = kit.mock<{ doubled: number }>('memory:hE-rr-out');
    await kit.sendMessages('memory:hE-rr-in', [createMessage({ x: 21 }, { headers: { correlationId: 'conv-hE' } }), createMessage({ x: 2 }, { headers: { correlationId: 'conv-hE' } })]);
    await out.expect(2);
    expect(out.bodies().map((b) => b.doubled).sort((a, b) => a - b)).toEqual([4, 42]);
    // two requests of one conversation did not collide, and the conversation's id is back on the replies
    expect(out.received.map((m) => m.headers.correlationId)).toEqual(['conv-hE', 'conv-hE']);
  });

  it('Transport.request honours the SPI: typed timeout, and an abort rejects at once', async () => {
    const silent = uniqueName('hE-rr-silent');
    admin.track({ queues: [silent] });
    const amqp = await connectedTransport({ topology: { queues: [{ name: silent }] } });
    try {
      const endpoint = parseEndpoint(`amqp:queue/${silent}`);
      await expect(amqp.request(endpoint, createMessage(1), { timeoutMs: 200 })).rejects.toMatchObject({ code: 'TIMEOUT' });
      const abort = new AbortController();
      const pending = amqp.request(endpoint, createMessage(2, { id: 'hE-amqp-same' }), { timeoutMs: 60_000, signal: abort.signal });
      await sleep(50);
      abort.abort();
      await expect(pending).rejects.toMatchObject({ code: 'REQUEST_ABORTED' });
      // the aborted request is forgotten at once: its correlation id may be sent again (no REQUEST_IN_FLIGHT)
      await expect(amqp.request(endpoint, createMessage(3, { id: 'hE-amqp-same' }), { timeoutMs: 100 })).rejects.toMatchObject({ code: 'TIMEOUT' });
    } finally {
      await amqp.close();
    }
  });

  it('a source whose request is pending when the route stops is left unsettled and redelivered', async () => {
    const input = uniqueName('hE-rr-stop-in');
    const silent = uniqueName('hE-rr-stop-svc');
    admin.track({ queues: [input, silent] });
    const app = createIntegration({
      logger: silentLogger,
      modules: [amqpModule({ url: AMQP_URL, topology: { queues: [{ name: input }, { name: silent }] } })],
      routes: [from(`amqp:queue/${input}`, { id: 'hE-stopping' }).request(`amqp:queue/${silent}`, { timeoutMs: 60_000 }).to('memory:hE-rr-never')],
    });
    await app.start();
    const feeder = await connectedTransport();
    try {
      await feeder.publish(parseEndpoint(`amqp:queue/${input}`), [createMessage({ n: 1 }, { id: 'hE-held' })]);
      await until(async () => (await admin.messageCount(silent)) === 1, () => 'the request reached the service queue');
      await app.stop({ drainTimeoutMs: 200 });
      // not acked, not dead-lettered: back in its queue for the next consumer
      await until(async () => (await admin.messageCount(input)) === 1, () => 'the source message went back to its queue');
      const metrics = app.metrics()['hE-stopping']!;
      expect([metrics.failed, metrics.rejected, metrics.deadLettered, metrics.handedBack]).toEqual([0, 0, 0, 1]);
    } finally {
      await feeder.close();
    }
  });
});

describe('request-reply over MQTT 5 (response topic + correlation data)', () => {
  it('a route requests, a responder route replies to {replyTo}; the reply goes on', async () => {
    await requireBroker();
    const topic = `hE/rr/${runClientId('svc')}`;
    const kit = await start(
      createIntegration({
        logger: silentLogger,
        modules: [mqttModule({ url: MOSQUITTO_URL, clientId: runClientId('hE-rr'), sessionExpirySeconds: 60 })],
        routes: [
          from<{ x: number }>('memory:hE-mqtt-in')
            .request<{ tripled: number }>(`mqtt:${topic}`, { timeoutMs: 1_000 })
            .to('memory:hE-mqtt-out')
            // the responder's subscription may still be on its way when the first request goes out
            .onError((failure) => (failure.error.code === 'TIMEOUT' ? retryAfter(100) : deadLetter()), { maxAttempts: 10 }),
          from<{ x: number }>(`mqtt:${topic}?headers=all`)
            .transform((m) => ({ tripled: m.body.x * 3 }))
            .to('mqtt:{replyTo}'),
        ],
      }),
    );
    const out = kit.mock<{ tripled: number }>('memory:hE-mqtt-out');
    await kit.sendMessages('memory:hE-mqtt-in', [createMessage({ x: 5 }, { headers: { correlationId: 'conv-hE-mqtt' } })]);
    await out.expect(1, { timeoutMs: 15_000 });
    expect(out.bodies()).toEqual([{ tripled: 15 }]);
    expect(out.received[0]!.headers.correlationId).toBe('conv-hE-mqtt');
    expect(out.received[0]!.headers.replyTo).toBeUndefined();
  });

  it('requests to two services on one transport each reach their own service', async () => {
    await requireBroker();
    const triple = `hE/rr/${runClientId('svc-triple')}`;
    const increment = `hE/rr/${runClientId('svc-increment')}`;
    const kit = await start(
      createIntegration({
        logger: silentLogger,
        modules: [mqttModule({ url: MOSQUITTO_URL, clientId: runClientId('hE-rr2'), sessionExpirySeconds: 60 })],
        routes: [
          from<{ x: number }>('memory:hE-mqtt2-in')
            .request<{ x: number }>(`mqtt:${triple}`, { timeoutMs: 1_000 })
            .request<{ x: number }>(`mqtt:${increment}`, { timeoutMs: 1_000 })
            .to('memory:hE-mqtt2-out')
            .onError((failure) => (failure.error.code === 'TIMEOUT' ? retryAfter(100) : deadLetter()), { maxAttempts: 10 }),
          from<{ x: number }>(`mqtt:${triple}?headers=all`)
            .transform((m) => ({ x: m.body.x * 3 }))
            .to('mqtt:{replyTo}'),
          from<{ x: number }>(`mqtt:${increment}?headers=all`)
            .transform((m) => ({ x: m.body.x + 1 }))
            .to('mqtt:{replyTo}'),
        ],
      }),
    );
    const out = kit.mock<{ x: number }>('memory:hE-mqtt2-out');
    await kit.sendMessages('memory:hE-mqtt2-in', [createMessage({ x: 5 })]);
    await out.expect(1, { timeoutMs: 15_000 });
    expect(out.bodies()).toEqual([{ x: 16 }]); // tripled by one service, then incremented by the other
  });

  it('Transport.request: typed timeout, abort, REQUEST_IN_FLIGHT, and close rejects what still waits', async () => {
    await requireBroker();
    const mqtt: MqttTransport = testTransport({ url: MOSQUITTO_URL, clientId: runClientId('hE-rr-direct') });
    await mqtt.connect();
    const endpoint = parseEndpoint(`mqtt:hE/rr/nobody/${runClientId('x')}`);
    try {
      await expect(mqtt.request(endpoint, createMessage(1), { timeoutMs: 300 })).rejects.toMatchObject({ code: 'TIMEOUT' });
      const abort = new AbortController();
      const aborted = mqtt.request(endpoint, createMessage(2, { id: 'hE-same' }), { timeoutMs: 60_000, signal: abort.signal });
      await expect(mqtt.request(endpoint, createMessage(3, { id: 'hE-same' }), { timeoutMs: 60_000 })).rejects.toMatchObject({ code: 'REQUEST_IN_FLIGHT' });
      abort.abort();
      await expect(aborted).rejects.toMatchObject({ code: 'REQUEST_ABORTED' });
      const waiting = mqtt.request(endpoint, createMessage(4), { timeoutMs: 60_000 }).catch((error: unknown) => error);
      await sleep(50);
      await mqtt.close();
      expect(await waiting).toMatchObject({ code: 'NOT_CONNECTED' });
    } finally {
      await mqtt.close();
    }
  });

  it('a responder without Interchange replies to the response topic with the correlation data', async () => {
    await requireBroker();
    const mqtt = testTransport({ url: MOSQUITTO_URL, clientId: runClientId('hE-rr-req') });
    const { connect } = await import('mqtt');
    const topic = `hE/rr/plain/${runClientId('svc')}`;
    const plain = await connect(MOSQUITTO_URL, { protocolVersion: 5, clientId: runClientId('hE-plain') });
    try {
      await plain.subscribeAsync(topic, { qos: 1 });
      plain.on('message', (_t, payload, packet) => {
        const responseTopic = packet.properties?.responseTopic;
        const correlationData = packet.properties?.correlationData;
        if (responseTopic === undefined) return;
        plain.publish(responseTopic, JSON.stringify({ echoed: JSON.parse(payload.toString()) as unknown }), { qos: 1, properties: correlationData === undefined ? {} : { correlationData } });
      });
      await mqtt.connect();
      const reply = await mqtt.request(parseEndpoint(`mqtt:${topic}`), createMessage('ping', { id: 'hE-ping' }), { timeoutMs: 5_000 });
      expect(reply.body).toEqual({ echoed: 'ping' });
      expect(reply.headers.correlationId).toBe('hE-ping');
    } finally {
      await mqtt.close();
      await plain.endAsync();
    }
  });

  it('is refused before connect with NotConnectedError', async () => {
    const mqtt = testTransport({ url: MOSQUITTO_URL, clientId: runClientId('hE-rr-closed') });
    await expect(mqtt.request(parseEndpoint('mqtt:hE/rr/x'), createMessage(1), { timeoutMs: 100 })).rejects.toMatchObject({ code: 'NOT_CONNECTED' });
  });
});
