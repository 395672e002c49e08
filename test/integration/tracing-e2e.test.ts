import { context, SpanKind, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import mqtt from 'mqtt';
import { afterAll, expect, it } from 'vitest';
import { amqpModule } from '../../adapters/amqp/index.ts';
import { mqttModule, type MqttTransport } from '../../adapters/mqtt/index.ts';
import { openDatabase, Outbox, OutboxRelay } from '../../adapters/postgres/index.ts';
import { createIntegration, createMessage, from, silentLogger, type Message } from '../../facade/index.ts';
import { activeTraceHeaders, tracingObserver } from '../../facade/observability/tracing.ts';
import { parseTraceparent } from '../../facade/observability/trace-context.ts';
import type { MemoryTransport } from '../../src/channel/memory-transport.ts';
import { parseEndpoint } from '../../src/core/index.ts';
import { dropSchema, POSTGRES_URL, uniqueSchema } from '../unit/postgres/support.ts';
import { AMQP_URL, BrokerAdmin, uniqueName, until } from './amqp-support.ts';
import { MOSQUITTO_URL, requireBroker, runClientId } from './mqtt-helpers.ts';

// One trace from a device to a consumer on the other side of RabbitMQ: the device's W3C trace context
// rides MQTT 5 user properties (taken by `headers=trace` from an untrusted publisher), the route's
// spans carry it on in AMQP headers, and the consumer route continues it.

const DEVICE_TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const DEVICE_SPAN = '00f067aa0ba902b7';

const admin = new BrokerAdmin();
afterAll(() => admin.close());

function sdk(): { exporter: InMemorySpanExporter; provider: BasicTracerProvider } {
  const exporter = new InMemorySpanExporter();
  return { exporter, provider: new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }) };
}

function named(spans: readonly ReadableSpan[], name: string): ReadableSpan {
  const found = spans.filter((span) => span.name === name);
  expect(found, `one span '${name}' among ${spans.map((span) => span.name).join(', ')}`).toHaveLength(1);
  return found[0] as ReadableSpan;
}

const idOf = (span: ReadableSpan): string => span.spanContext().spanId;
const parentOf = (span: ReadableSpan): string | undefined => span.parentSpanContext?.spanId;

function received(memory: MemoryTransport, uri: string): Message[] {
  const out: Message[] = [];
  memory.consume(parseEndpoint(uri), { prefetch: 100 }).subscribe((delivery) => {
    out.push(delivery.message);
    delivery.ack();
  });
  return out;
}

it('one trace: device → MQTT 5 → route steps → AMQP publish → a consumer route on the other side', async () => {
  await requireBroker(MOSQUITTO_URL);
  const { exporter, provider } = sdk();
  const prefix = uniqueName('trace');
  const queue = `${prefix}-readings`;
  admin.track({ queues: [queue] });
  const source = `mqtt:${prefix}/devices/+deviceId/telemetry?qos=1&headers=trace`;
  const ingest = from<{ t: number }>(source, { id: 'ingest' })
    .transform((message) => ({ deviceId: message.headers.deviceId, temperatureC: message.body.t }), { id: 'enrich' })
    .to(`amqp:queue/${queue}`, { id: 'forward' });
  const consume = from(`amqp:queue/${queue}`, { id: 'consume' })
    .process(() => undefined, { id: 'handle' })
    .to('memory:delivered', { id: 'deliver' });
  const app = createIntegration({
    routes: [ingest, consume],
    modules: [
      mqttModule({ url: MOSQUITTO_URL, clientId: runClientId('trace').slice(0, 48), sessionExpirySeconds: 600, connectTimeoutMs: 5_000 }),
      amqpModule({ url: AMQP_URL, connectTimeoutMs: 5_000 }),
    ],
    observers: [tracingObserver({ tracer: provider.getTracer('e2e') })],
    logger: silentLogger,
  });
  const transport = app.transport<MqttTransport>('mqtt');
  await transport.connect();
  await transport.provision(parseEndpoint(source)); // the session exists before the device publishes
  await app.start();
  const device = await mqtt.connectAsync(MOSQUITTO_URL, { protocolVersion: 5, clientId: runClientId('device') });
  try {
    const delivered = received(app.transport<MemoryTransport>('memory'), 'memory:delivered');
    await until(async () => (await admin.messageCount(queue).catch(() => -1)) >= 0, () => `queue ${queue} not declared`);
    await device.publishAsync(`${prefix}/devices/d-7/telemetry`, JSON.stringify({ t: 21.5 }), {
      qos: 1,
      properties: { userProperties: { traceparent: `00-${DEVICE_TRACE}-${DEVICE_SPAN}-01`, tracestate: 'device=fw-2', 'x-interchange-error': 'forged', 'message-id': 'forged-id' } },
    });
    // both executions ended (route A's once RabbitMQ confirmed, route B's once memory:delivered took it): 4 spans each
    await until(() => delivered.length === 1 && exporter.getFinishedSpans().length >= 8, () => `delivered ${delivered.length}, spans ${exporter.getFinishedSpans().map((span) => span.name).join(', ')}`, 20_000);

    const spans = exporter.getFinishedSpans();
    expect(new Set(spans.map((span) => span.spanContext().traceId))).toEqual(new Set([DEVICE_TRACE]));

    // route A: process (consumer, child of the device's span) → its steps and the AMQP producer span
    const ingestSpan = named(spans, `process ${prefix}/devices/+deviceId/telemetry`);
    expect(ingestSpan.kind).toBe(SpanKind.CONSUMER);
    expect(parentOf(ingestSpan)).toBe(DEVICE_SPAN);
    expect(ingestSpan.attributes).toMatchObject({
      'messaging.system': 'mqtt',
      'messaging.destination.name': `${prefix}/devices/d-7/telemetry`,
      'messaging.destination.template': `${prefix}/devices/+deviceId/telemetry`,
      'interchange.route.id': 'ingest',
      'interchange.outcome': 'completed',
    });
    expect(parentOf(named(spans, 'transform enrich'))).toBe(idOf(ingestSpan));
    expect(parentOf(named(spans, 'to forward'))).toBe(idOf(ingestSpan));
    const send = named(spans, `send ${queue}`);
    expect(send.kind).toBe(SpanKind.PRODUCER);
    expect(parentOf(send)).toBe(idOf(ingestSpan));
    expect(send.attributes).toMatchObject({ 'messaging.system': 'rabbitmq', 'messaging.destination.name': queue, 'messaging.rabbitmq.destination.routing_key': queue });

    // route B, across RabbitMQ: its process span is the producer span's child
    const consumeSpan = named(spans, `process ${queue}`);
    expect(consumeSpan.kind).toBe(SpanKind.CONSUMER);
    expect(parentOf(consumeSpan)).toBe(idOf(send));
    expect(consumeSpan.attributes).toMatchObject({ 'messaging.system': 'rabbitmq', 'interchange.route.id': 'consume', 'interchange.outcome': 'completed' });
    expect(parentOf(named(spans, 'process handle'))).toBe(idOf(consumeSpan));
    expect(parentOf(named(spans, 'to deliver'))).toBe(idOf(consumeSpan));
    expect(parentOf(named(spans, 'send delivered'))).toBe(idOf(consumeSpan));

    // what arrived: the trace carried on, the device's tracestate with it, nothing else the device sent
    const [message] = delivered;
    expect(parseTraceparent(message?.headers.traceparent)?.traceId).toBe(DEVICE_TRACE);
    expect(message?.headers.tracestate).toBe('device=fw-2');
    expect(message?.headers['x-interchange-error']).toBeUndefined();
    expect(message?.id).not.toBe('forged-id');
    expect(message?.body).toEqual({ deviceId: 'd-7', temperatureC: 21.5 });
  } finally {
    await device.endAsync();
    await app.stop({ drainTimeoutMs: 5_000 });
  }
});

it('through the outbox: a message added inside a span is consumed in that span\'s trace (traceHeaders: activeTraceHeaders)', async () => {
  const { exporter, provider } = sdk();
  const tracer = provider.getTracer('e2e');
  const db = await openDatabase({ url: POSTGRES_URL, log: silentLogger });
  const schema = uniqueSchema('trace');
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  const app = createIntegration({ routes: [from('memory:orders', { id: 'orders' }).to('memory:shipped', { id: 'ship' })], observers: [tracingObserver({ tracer })], logger: silentLogger });
  const relay = new OutboxRelay(db, app.transports, { schema, log: silentLogger, pollIntervalMs: 50 });
  try {
    await app.start();
    await relay.start();
    const shipped = received(app.transport<MemoryTransport>('memory'), 'memory:shipped');
    const outbox = new Outbox({ schema, traceHeaders: activeTraceHeaders });
    const own = `00-${DEVICE_TRACE}-${DEVICE_SPAN}-01`;
    const request = tracer.startSpan('POST /orders', { kind: SpanKind.SERVER });
    await context.with(trace.setSpan(context.active(), request), () =>
      db.transaction(async (tx) => {
        await outbox.add(tx, createMessage({ order: 1 }, { id: 'stamped' }), { destination: 'memory:orders' });
        await outbox.add(tx, createMessage({ order: 2 }, { id: 'own', headers: { traceparent: own } }), { destination: 'memory:orders' });
      }),
    );
    request.end();
    await until(() => shipped.length === 2, () => `shipped ${shipped.length}`, 10_000);

    const processes = exporter.getFinishedSpans().filter((span) => span.name === 'process orders');
    const byId = new Map(processes.map((span) => [span.attributes['messaging.message.id'], span]));
    // stamped with the request's context when added; the row kept it; the route continued it
    expect(byId.get('stamped')?.spanContext().traceId).toBe(request.spanContext().traceId);
    expect(byId.get('stamped')?.parentSpanContext?.spanId).toBe(request.spanContext().spanId);
    // a message's own traceparent is kept as it is
    expect(byId.get('own')?.spanContext().traceId).toBe(DEVICE_TRACE);
    expect(byId.get('own')?.parentSpanContext?.spanId).toBe(DEVICE_SPAN);
    expect(shipped.every((message) => parseTraceparent(message.headers.traceparent) !== undefined)).toBe(true);
  } finally {
    context.disable();
    await relay.stop();
    await app.stop({ drainTimeoutMs: 2_000 });
    await dropSchema(db, schema);
    await db.close();
  }
});
