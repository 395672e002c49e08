import { describe, expect, it } from 'vitest';
import { createMessage, InterchangeError, StepError } from '../../facade/index.ts';
import { JsonSchemaRegistry, SchemaRegistry } from '../../src/spi.ts';
import { AmqpMemoryBroker, bindingMatches } from '../../adapters/amqp/index.ts';
import { flowErrorPolicy, flowNames, flowRoutes, flowTopology, SCHEMAS_DIRECTORY } from '../../examples/mqtt-to-amqp/flow.ts';
import {
  checkTelemetry,
  fahrenheit,
  foldReading,
  isAlert,
  readingHeaders,
  routingKeyOf,
  toBackendReading,
  toSummary,
  type SummaryState,
} from '../../examples/mqtt-to-amqp/telemetry.ts';
import type { BackendReadingV1, DeviceTelemetryV1 } from '../../schemas/types.generated.ts';
import { drive, Harness, source } from '../patterns/harness.ts';
import { parseEndpoint } from '../../src/core/index.ts';

const registry = JsonSchemaRegistry.fromDirectory(SCHEMAS_DIRECTORY);
const telemetry: DeviceTelemetryV1 = { deviceId: 'd-1', ts: '2026-01-01T00:00:00.250Z', temperature: 21.5, humidity: 40, battery: 90 };

describe('translation device.telemetry@1 → backend.reading@1', () => {
  it('gives epoch ms, both scales, and the optional fields only when sent; the result satisfies the contract', () => {
    const reading = toBackendReading(telemetry);
    expect(reading).toEqual({ deviceId: 'd-1', timestamp: Date.UTC(2026, 0, 1, 0, 0, 0, 250), temperatureC: 21.5, temperatureF: 70.7, humidity: 40, battery: 90 });
    expect(registry.validate('backend.reading@1', reading)).toEqual(reading);
    const bare = toBackendReading({ deviceId: 'd-2', ts: '2026-01-01T01:00:00+01:00', temperature: -40 });
    expect(bare).toEqual({ deviceId: 'd-2', timestamp: Date.UTC(2026, 0, 1), temperatureC: -40, temperatureF: -40 });
    expect(Object.keys(bare)).not.toContain('humidity');
  });

  it('°F = °C × 9/5 + 32', () => {
    expect([fahrenheit(0), fahrenheit(100), fahrenheit(-40), fahrenheit(37)]).toEqual([32, 212, -40, (37 * 9) / 5 + 32]);
  });

  it('keeps the source id as correlation id, or the conversation it already belonged to', () => {
    const plain = createMessage(telemetry, { id: 'm-1' });
    expect(readingHeaders(plain)).toEqual({ contentType: 'application/json', correlationId: 'm-1', 'x-schema': 'backend.reading@1' });
    expect(readingHeaders(createMessage(telemetry, { id: 'm-2', headers: { correlationId: 'c-9' } })).correlationId).toBe('c-9');
  });
});

describe('content-based routing', () => {
  const at = (temperatureC: number): BackendReadingV1 => ({ deviceId: 'd-7', timestamp: 0, temperatureC, temperatureF: fahrenheit(temperatureC) });
  it('alerts at 50 °C and above, reading below', () => {
    expect([isAlert(at(49.99)), isAlert(at(50)), isAlert(at(80))]).toEqual([false, true, true]);
    expect([routingKeyOf(at(12)), routingKeyOf(at(50))]).toEqual(['reading.d-7', 'alert.d-7']);
  });

  it('the route sends alerts and readings through the telemetry exchange with those routing keys', () => {
    const [route] = flowRoutes({ names: flowNames('p-') });
    const choice = route?.definition().steps.find((step) => step.kind === 'choice');
    const uris = choice?.branches.map((branch) => branch.map((step) => step.id));
    expect(uris).toEqual([['alerts'], ['readings']]);
    expect(route?.definition().source).toBe('mqtt:p-/devices/+deviceId/telemetry?qos=1&payload=raw&headers=trace');
  });

  it('scales out on a shared subscription: one route per consumer connection, each with the summaries inline', () => {
    const routes = flowRoutes({ names: flowNames('p-'), consumers: 3 }).map((route) => route.definition());
    expect(routes.map((route) => route.id)).toEqual(['telemetry-1', 'telemetry-2', 'telemetry-3']);
    expect(routes.every((route) => route.steps.some((step) => step.kind === 'aggregate'))).toBe(true);
    expect(new Set(routes.slice(0, 3).map((route) => route.source))).toEqual(new Set(['mqtt:$share/p-telemetry-bridge/p-/devices/+deviceId/telemetry?qos=1&payload=raw&headers=trace']));
    expect(flowRoutes({ summaries: false }).map((route) => route.definition().id)).toEqual(['telemetry']);
    expect(flowRoutes({ names: flowNames('p-'), shareGroup: 'g' })[0]?.definition().source).toBe('mqtt:$share/g/p-/devices/+deviceId/telemetry?qos=1&payload=raw&headers=trace');
  });

  it('buffered: the intake ends at the durable buffer, forward takes it to RabbitMQ and the summaries, dead letters have their own buffer', () => {
    const routes = flowRoutes({ names: flowNames('p-'), buffered: true }).map((route) => route.definition());
    expect(routes.map((route) => route.id)).toEqual(['telemetry', 'forward', 'dead-letters']);
    const [telemetry, forward, deadLetters] = routes;
    expect(telemetry?.steps.at(-1)).toMatchObject({ kind: 'to', id: 'buffered' });
    expect(JSON.stringify(telemetry)).toContain('buffer:p-telemetry.dead');
    expect(forward?.source).toBe('buffer:p-telemetry');
    expect(forward?.steps.map((step) => step.kind)).toEqual(expect.arrayContaining(['choice', 'aggregate']));
    expect(deadLetters?.source).toBe('buffer:p-telemetry.dead');
  });
});

describe('checkTelemetry: what is invalid, and why', () => {
  const harness = (): Harness => new Harness({ services: new Map([[SchemaRegistry, registry]]) });
  const fromTopic = (payload: string, topicDevice = 'd-1'): ReturnType<typeof source> =>
    source(Buffer.from(payload), { id: `m-${payload.length}`, headers: { deviceId: topicDevice, mqttTopic: `devices/${topicDevice}/telemetry` } });

  it('passes a valid message on with its parsed body and schema header', () => {
    const h = harness();
    const { output, send } = drive(h.build(checkTelemetry()));
    send(fromTopic(JSON.stringify(telemetry)));
    expect(output.bodies).toEqual([telemetry]);
    expect(output.messages[0]?.headers.schema).toBe('device.telemetry@1');
    expect(h.failures).toEqual([]);
  });

  const cases: [string, string, string | undefined, string, RegExp][] = [
    ['bad JSON', '{"deviceId":"d-1","temperature":', 'd-1', 'PAYLOAD_UNPARSEABLE', /JSON|parse|unexpected/i],
    ['a __proto__ key (refused, not dropped)', `{"__proto__":{"admin":true},${JSON.stringify(telemetry).slice(1)}`, 'd-1', 'PAYLOAD_UNPARSEABLE', /key '__proto__' at \/ is not allowed/],
    ['a schema violation', JSON.stringify({ ...telemetry, temperature: 'warm' }), 'd-1', 'SCHEMA_INVALID', /\/temperature/],
    ['an additional property', JSON.stringify({ ...telemetry, firmware: '1.0' }), 'd-1', 'SCHEMA_INVALID', /additional/],
    ['humidity out of 0–100', JSON.stringify({ ...telemetry, humidity: 101 }), 'd-1', 'SCHEMA_INVALID', /\/humidity/],
    ['a ts that is not RFC 3339', JSON.stringify({ ...telemetry, ts: 'yesterday' }), 'd-1', 'SCHEMA_INVALID', /\/ts/],
    ['a topic naming another device', JSON.stringify(telemetry), 'd-2', 'DEVICE_MISMATCH', /topic device id 'd-2' does not match body deviceId 'd-1'/],
    ['a ts before 1970', JSON.stringify({ ...telemetry, ts: '1969-12-31T23:59:59Z' }), 'd-1', 'TIMESTAMP_UNUSABLE', /1970/],
  ];
  it.each(cases)('fails %s permanently, with the original bytes, the topic and the reason', (_, payload, topicDevice, code, reason) => {
    const h = harness();
    const { output, send } = drive(h.build(checkTelemetry()));
    send(fromTopic(payload, topicDevice));
    expect(output.deliveries).toEqual([]);
    expect(h.failures).toHaveLength(1);
    const [failure] = h.failures;
    const error = failure?.error as InterchangeError;
    expect(error.code).toBe(code);
    expect(error.permanent).toBe(true);
    expect(error.message).toMatch(reason);
    expect(Buffer.isBuffer(failure?.delivery.message.body) && (failure.delivery.message.body as Buffer).toString()).toBe(payload);
    expect(failure?.delivery.message.headers['x-mqtt-topic']).toBe(`devices/${topicDevice}/telemetry`);
    if (code === 'SCHEMA_INVALID') expect(String(failure?.delivery.message.headers['x-interchange-validation-errors'])).not.toBe('');
  });
});

describe('error policy', () => {
  const failure = (error: Error, attempt: number) => ({ error: new StepError('telemetry', 'alerts', 'x.ts:1', error), message: createMessage(null), attempt });
  it('dead-letters invalid messages, retries transient failures with backoff, then rejects them to MQTT', () => {
    expect(flowErrorPolicy(failure(new InterchangeError('SCHEMA_INVALID', 'bad', { permanent: true }), 1))).toEqual({ action: 'deadLetter', reason: 'invalid device telemetry' });
    const retry = flowErrorPolicy(failure(new InterchangeError('TIMEOUT', 'slow'), 1));
    expect(retry.action).toBe('retry');
    expect(flowErrorPolicy(failure(new InterchangeError('TIMEOUT', 'slow'), 10))).toEqual({ action: 'reject' });
  });
});

describe('summaries', () => {
  const reading = (temperatureC: number, timestamp: number) => createMessage<BackendReadingV1>({ deviceId: 'd-1', timestamp, temperatureC, temperatureF: fahrenheit(temperatureC) });
  it('folds readings into count, min, max, average and the time span', () => {
    let state: SummaryState | undefined;
    for (const [c, t] of [[20, 3_000], [18, 1_000], [25, 2_000], [21, 4_000]] as const) state = foldReading(state, reading(c, t));
    expect(toSummary(state as SummaryState)).toEqual({ deviceId: 'd-1', count: 4, minC: 18, maxC: 25, avgC: 21, from: 1_000, to: 4_000 });
  });
});

describe('the in-memory RabbitMQ stand-in (AmqpMemoryBroker) on the flow topology', () => {
  it('matches binding keys as RabbitMQ does', () => {
    expect(bindingMatches('topic', 'reading.#', 'reading.d-1')).toBe(true);
    expect(bindingMatches('topic', 'reading.#', 'reading')).toBe(true);
    expect(bindingMatches('topic', 'reading.#', 'alert.d-1')).toBe(false);
    expect(bindingMatches('topic', 'a.*.c', 'a.b.c')).toBe(true);
    expect(bindingMatches('topic', 'a.*.c', 'a.b.b.c')).toBe(false);
    expect(bindingMatches('topic', '#.c', 'a.b.c')).toBe(true);
    expect(bindingMatches('direct', 'k', 'k')).toBe(true);
    expect(bindingMatches('fanout', '', 'anything')).toBe(true);
  });

  it('routes the flow topology into its four queues, refuses what no binding takes, keeps the newest when full', async () => {
    const names = flowNames();
    const standIn = new AmqpMemoryBroker({ topology: flowTopology(names), defaultMaxLength: 2, logger: { info: () => {}, warn: () => {}, error: () => {} } });
    const publish = (uri: string, n: number) => standIn.publish(parseEndpoint(uri), [createMessage({ n })]);
    await publish('amqp:exchange/telemetry?routingKey=reading.d-1', 1);
    await publish('amqp:exchange/telemetry?routingKey=alert.d-1', 2);
    await publish('amqp:exchange/telemetry?routingKey=summary.d-1', 3);
    await publish('amqp:exchange/telemetry.dlx', 4);
    await expect(publish('amqp:exchange/telemetry?routingKey=other.d-1', 5)).rejects.toMatchObject({ code: 'UNROUTABLE' });
    expect(Object.fromEntries(Object.entries(standIn.queueDepths()).map(([queue, depth]) => [queue, depth.messages]))).toEqual({
      'telemetry.readings': 1,
      'telemetry.alerts': 1,
      'telemetry.summaries': 1,
      'telemetry.invalid': 1,
    });
    await publish('amqp:exchange/telemetry?routingKey=reading.d-2', 6);
    await publish('amqp:exchange/telemetry?routingKey=reading.d-3', 7);
    expect(standIn.queue('telemetry.readings').map((m) => (m.body as { n: number }).n)).toEqual([6, 7]);
    expect(standIn.queueDepths()['telemetry.readings']).toMatchObject({ messages: 2, dropped: 1 });
  });

  it('hands what it routed to a consumer of the queue', async () => {
    const standIn = new AmqpMemoryBroker({ topology: flowTopology(flowNames()) });
    await standIn.publish(parseEndpoint('amqp:exchange/telemetry?routingKey=alert.d-1'), [createMessage({ n: 1 })]);
    const delivery = await new Promise<{ message: { body: unknown }; ack(): void }>((resolve) => standIn.consume(parseEndpoint('amqp:queue/telemetry.alerts')).subscribe(resolve));
    expect(delivery.message.body).toEqual({ n: 1 });
    delivery.ack();
    expect(standIn.queueDepths()['telemetry.alerts']).toMatchObject({ messages: 0, unacknowledged: 0 });
  });
});
