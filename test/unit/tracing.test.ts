import { context, SpanKind, SpanStatusCode, trace, type Tracer } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { AlwaysOffSampler, BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { afterEach, describe, expect, it } from 'vitest';
import { createIntegration, createMessage, deadLetter, from, reject, type Message, type RouteSource } from '../../facade/index.ts';
import { activeTraceHeaders, tracingObserver } from '../../facade/observability/tracing.ts';
import { parseTraceparent } from '../../facade/observability/trace-context.ts';
import type { MemoryTransport } from '../../src/channel/memory-transport.ts';
import { parseEndpoint, PartialPublishError, silentLogger } from '../../src/core/index.ts';
import type { Integration } from '../../src/runtime/integration.ts';
import type { RouteObserver } from '../../src/runtime/route-observer.ts';

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const DEVICE_SPAN = '00f067aa0ba902b7';
const TRACEPARENT = `00-${TRACE_ID}-${DEVICE_SPAN}-01`;

const apps: Integration[] = [];
afterEach(async () => {
  for (const app of apps.splice(0)) await app.stop({ drainTimeoutMs: 1_000 });
  trace.disable(); // no global provider left for the next test
});

function sdk(options: { sampler?: AlwaysOffSampler } = {}): { exporter: InMemorySpanExporter; provider: BasicTracerProvider; tracer: Tracer } {
  const exporter = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)], ...options });
  return { exporter, provider, tracer: provider.getTracer('test') };
}

async function run(routes: RouteSource[], observer: RouteObserver): Promise<{ app: Integration; memory: MemoryTransport }> {
  const app = createIntegration({ routes, observers: [observer], logger: silentLogger });
  apps.push(app);
  await app.start();
  return { app, memory: app.transport<MemoryTransport>('memory') };
}

const settle = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 30));

function received(memory: MemoryTransport, uri: string): Message[] {
  const out: Message[] = [];
  memory.consume(parseEndpoint(uri), { prefetch: 1_000 }).subscribe((delivery) => {
    out.push(delivery.message);
    delivery.ack();
  });
  return out;
}

function named(spans: readonly ReadableSpan[], name: string): ReadableSpan {
  const found = spans.filter((span) => span.name === name);
  expect(found, `one span '${name}' among ${spans.map((span) => span.name).join(', ')}`).toHaveLength(1);
  return found[0] as ReadableSpan;
}

const parentOf = (span: ReadableSpan): string | undefined => span.parentSpanContext?.spanId;

const orders = (): RouteSource =>
  from<{ n: number }>('memory:orders', { id: 'orders' })
    .transform((message) => ({ ...message.body, doubled: message.body.n * 2 }), { id: 'enrich' })
    .to('memory:shipped', { id: 'ship' });

describe('tracingObserver', () => {
  it('one CONSUMER span per execution, child of the message\'s traceparent, with an INTERNAL span per step and a PRODUCER span per message sent', async () => {
    const { exporter, tracer } = sdk();
    const { app, memory } = await run([orders()], tracingObserver({ tracer }));
    const out = received(memory, 'memory:shipped');
    await app.transports.publish('memory:orders', [createMessage({ n: 1 }, { id: 'o-1', headers: { traceparent: TRACEPARENT, tracestate: 'vendor=abc' } })]);
    await settle();

    const spans = exporter.getFinishedSpans();
    expect(spans.map((span) => span.name).sort()).toEqual(['process orders', 'send shipped', 'to ship', 'transform enrich']);
    expect(new Set(spans.map((span) => span.spanContext().traceId))).toEqual(new Set([TRACE_ID]));

    const processSpan = named(spans, 'process orders');
    expect(processSpan.kind).toBe(SpanKind.CONSUMER);
    expect(parentOf(processSpan)).toBe(DEVICE_SPAN);
    expect(processSpan.parentSpanContext?.isRemote).toBe(true);
    expect(processSpan.attributes).toEqual({
      'messaging.system': 'interchange',
      'messaging.operation.type': 'process',
      'messaging.operation.name': 'process',
      'messaging.destination.name': 'orders',
      'messaging.message.id': 'o-1',
      'interchange.route.id': 'orders',
      'interchange.outcome': 'completed',
    });
    expect(processSpan.status.code).toBe(SpanStatusCode.UNSET);

    const enrich = named(spans, 'transform enrich');
    expect(enrich.kind).toBe(SpanKind.INTERNAL);
    expect(parentOf(enrich)).toBe(processSpan.spanContext().spanId);
    expect(enrich.attributes).toMatchObject({ 'interchange.step.id': 'enrich', 'interchange.step.kind': 'transform', 'code.file.path': expect.stringContaining('tracing.test.ts'), 'code.line.number': expect.any(Number) });
    expect(enrich.attributes['interchange.step.declared_at']).toMatch(/tracing\.test\.ts:\d+$/);
    expect(parentOf(named(spans, 'to ship'))).toBe(processSpan.spanContext().spanId);

    const send = named(spans, 'send shipped');
    expect(send.kind).toBe(SpanKind.PRODUCER);
    expect(parentOf(send)).toBe(processSpan.spanContext().spanId);
    expect(send.attributes).toEqual({
      'messaging.system': 'interchange',
      'messaging.operation.type': 'send',
      'messaging.operation.name': 'send',
      'messaging.destination.name': 'shipped',
      'messaging.message.id': 'o-1',
      'interchange.route.id': 'orders',
      'interchange.step.id': 'ship',
    });
    // the producer span ends once the destination confirmed, after the step span that waits for it began
    expect(send.status.code).toBe(SpanStatusCode.UNSET);

    // what left carries the producer span's context, and the tracestate passed through
    expect(out).toHaveLength(1);
    expect(parseTraceparent(out[0]?.headers.traceparent)).toEqual({ traceId: TRACE_ID, spanId: send.spanContext().spanId, traceFlags: 1 });
    expect(out[0]?.headers.tracestate).toBe('vendor=abc');
    expect(out[0]?.body).toEqual({ n: 1, doubled: 2 });
  });

  it('a consumer route on the other side continues the trace under the producer span', async () => {
    const { exporter, tracer } = sdk();
    const consumer = from('memory:shipped', { id: 'billing' }).process(() => undefined, { id: 'bill' }).to('memory:billed', { id: 'done' });
    const { app } = await run([orders(), consumer], tracingObserver({ tracer }));
    await app.transports.publish('memory:orders', [createMessage({ n: 2 }, { headers: { traceparent: TRACEPARENT } })]);
    await settle();
    const spans = exporter.getFinishedSpans();
    expect(new Set(spans.map((span) => span.spanContext().traceId))).toEqual(new Set([TRACE_ID]));
    const billing = named(spans, 'process shipped');
    expect(parentOf(billing)).toBe(named(spans, 'send shipped').spanContext().spanId);
    expect(billing.attributes['interchange.route.id']).toBe('billing');
    expect(parentOf(named(spans, 'process bill'))).toBe(billing.spanContext().spanId);
    expect(parentOf(named(spans, 'send billed'))).toBe(billing.spanContext().spanId);
  });

  it('starts a new trace for a message without (or with a malformed) traceparent, and carries it on', async () => {
    const { exporter, tracer } = sdk();
    const { app, memory } = await run([orders()], tracingObserver({ tracer }));
    const out = received(memory, 'memory:shipped');
    await app.transports.publish('memory:orders', [
      createMessage({ n: 1 }, { id: 'plain' }),
      createMessage({ n: 2 }, { id: 'forged', headers: { traceparent: `00-${TRACE_ID.toUpperCase()}-${DEVICE_SPAN}-01`, tracestate: 'Bad State' } }),
    ]);
    await settle();
    const processes = exporter.getFinishedSpans().filter((span) => span.name === 'process orders');
    expect(processes).toHaveLength(2);
    for (const span of processes) expect(span.parentSpanContext).toBeUndefined();
    expect(processes[0]?.spanContext().traceId).not.toBe(processes[1]?.spanContext().traceId);
    expect(out.map((message) => parseTraceparent(message.headers.traceparent)?.traceId).sort()).toEqual(processes.map((span) => span.spanContext().traceId).sort());
    // a tracestate that came with no valid traceparent is not passed on
    expect(out.find((message) => message.id === 'forged')?.headers.tracestate).toBeUndefined();
  });

  it('nests a branch\'s step spans under their enclosing step\'s span', async () => {
    const { exporter, tracer } = sdk();
    const route = from<{ n: number }>('memory:numbers', { id: 'router' })
      .choice((choice) => choice.when((message) => message.body.n > 0, (branch) => branch.transform((message) => message.body, { id: 'positive' })).otherwise((branch) => branch.transform((message) => message.body, { id: 'other' })), { id: 'by-sign' })
      .to('memory:routed', { id: 'send' });
    const { app } = await run([route], tracingObserver({ tracer }));
    await app.transports.publish('memory:numbers', [createMessage({ n: 5 })]);
    await settle();
    const spans = exporter.getFinishedSpans();
    const processSpan = named(spans, 'process numbers');
    const choice = named(spans, 'choice by-sign');
    expect(parentOf(choice)).toBe(processSpan.spanContext().spanId);
    expect(parentOf(named(spans, 'transform positive'))).toBe(choice.spanContext().spanId);
    expect(parentOf(named(spans, 'to send'))).toBe(processSpan.spanContext().spanId);
    expect(spans.some((span) => span.name === 'transform other')).toBe(false);
  });

  it('marks a rejected execution ERROR with its error, and the step it failed in', async () => {
    const { exporter, tracer } = sdk();
    const route = from<{ n: number }>('memory:checks?maxDeliveries=1', { id: 'checks' })
      .onError(() => reject())
      .process(
        () => {
          throw new Error('no such customer');
        },
        { id: 'lookup' },
      )
      .to('memory:checked');
    const { app } = await run([route], tracingObserver({ tracer }));
    await app.transports.publish('memory:checks?maxDeliveries=1', [createMessage({ n: 1 })]);
    await settle();
    const spans = exporter.getFinishedSpans();
    const processSpan = named(spans, 'process checks');
    expect(processSpan.attributes['interchange.outcome']).toBe('rejected');
    expect(processSpan.status).toEqual({ code: SpanStatusCode.ERROR, message: expect.stringContaining('no such customer') });
    expect(processSpan.attributes['error.type']).toEqual(expect.any(String));
    expect(processSpan.events.map((event) => event.name)).toContain('exception');
    const lookup = named(spans, 'process lookup');
    expect(lookup.status.code).toBe(SpanStatusCode.ERROR);
    expect(spans.some((span) => span.name.startsWith('send'))).toBe(false);
  });

  it('records dead-lettered and filtered executions with their outcome, ending the step they stopped in', async () => {
    const { exporter, tracer } = sdk();
    const route = from<{ n: number }>('memory:values', { id: 'values' })
      .onError(() => deadLetter('negative'), { deadLetterUri: 'memory:values-dead' })
      .filter((message) => message.body.n !== 0, { id: 'non-zero' })
      .process(
        (message) => {
          if (message.body.n < 0) throw new Error('negative');
        },
        { id: 'check' },
      )
      .to('memory:values-out', { id: 'send' });
    const { app } = await run([route], tracingObserver({ tracer }));
    await app.transports.publish('memory:values', [createMessage({ n: 0 }, { id: 'zero' }), createMessage({ n: -1 }, { id: 'negative' })]);
    await settle();
    const spans = exporter.getFinishedSpans();
    const outcomes = Object.fromEntries(spans.filter((span) => span.name === 'process values').map((span) => [span.attributes['messaging.message.id'], [span.attributes['interchange.outcome'], span.status.code]]));
    expect(outcomes).toEqual({ zero: ['filtered', SpanStatusCode.UNSET], negative: ['dead-lettered', SpanStatusCode.UNSET] });
    const filters = spans.filter((span) => span.name === 'filter non-zero');
    expect(filters.map((span) => span.status.code)).toEqual([SpanStatusCode.UNSET, SpanStatusCode.UNSET]);
    expect(named(spans, 'process check').status.code).toBe(SpanStatusCode.ERROR);
  });

  it('uses the globally registered provider when given no tracer', async () => {
    const { exporter, provider } = sdk();
    trace.setGlobalTracerProvider(provider);
    const { app } = await run([orders()], tracingObserver());
    await app.transports.publish('memory:orders', [createMessage({ n: 1 }, { headers: { traceparent: TRACEPARENT } })]);
    await settle();
    const spans = exporter.getFinishedSpans();
    expect(spans.map((span) => span.name).sort()).toEqual(['process orders', 'send shipped', 'to ship', 'transform enrich']);
    expect(spans[0]?.instrumentationScope.name).toBe('interchange-eip');
  });

  it('without an SDK: attaches no probe, creates nothing and leaves headers untouched', async () => {
    const observer = tracingObserver();
    expect(observer.attach({ id: 'orders', definition: orders().definition() })).toBeUndefined();
    const { app, memory } = await run([orders()], observer);
    const out = received(memory, 'memory:shipped');
    await app.transports.publish('memory:orders', [createMessage({ n: 1 }, { id: 'with', headers: { traceparent: TRACEPARENT } }), createMessage({ n: 2 }, { id: 'without' })]);
    await settle();
    expect(out.map((message) => [message.id, message.headers.traceparent])).toEqual([
      ['with', TRACEPARENT],
      ['without', undefined],
    ]);
    expect(activeTraceHeaders()).toBeUndefined();
  });

  it('an execution sampled out is not followed: no spans, headers untouched', async () => {
    const { exporter, tracer } = sdk({ sampler: new AlwaysOffSampler() });
    const { app, memory } = await run([orders()], tracingObserver({ tracer }));
    const out = received(memory, 'memory:shipped');
    await app.transports.publish('memory:orders', [createMessage({ n: 1 }, { headers: { traceparent: TRACEPARENT } }), createMessage({ n: 2 })]);
    await settle();
    expect(exporter.getFinishedSpans()).toEqual([]);
    expect(out.map((message) => message.headers.traceparent)).toEqual([TRACEPARENT, undefined]);
  });

  it('marks a producer span ERROR when its publish is not confirmed (only the messages a partial failure names)', () => {
    const { exporter, tracer } = sdk();
    const definition = orders().definition();
    const probe = tracingObserver({ tracer }).attach({ id: 'orders', definition });
    const step = definition.steps[1];
    if (probe?.publish === undefined || step === undefined) throw new Error('expected a probe with publish');
    const messages = ['a', 'b', 'c'].map((id) => createMessage(id, { id, headers: { traceparent: TRACEPARENT } }));
    const observation = probe.publish(step, 'memory:shipped', [...messages, createMessage('untraced', { id: 'd' })]);
    const carried = (message: Message): string => (message.headers.traceparent === undefined ? 'none' : message.headers.traceparent === TRACEPARENT ? 'kept' : 'producer');
    // a message carrying no trace context gets no (orphan) producer span and is sent as it is
    expect(observation?.messages?.map(carried)).toEqual(['producer', 'producer', 'producer', 'none']);
    observation?.done(new PartialPublishError(new Map([[1, new Error('refused by the broker')]]), 4));
    const sends = exporter.getFinishedSpans();
    expect(sends.map((span) => [span.attributes['messaging.message.id'], span.status.code, span.attributes['messaging.batch.message_count']])).toEqual([
      ['a', SpanStatusCode.UNSET, 4],
      ['b', SpanStatusCode.ERROR, 4],
      ['c', SpanStatusCode.UNSET, 4],
    ]);
    for (const span of sends) expect(parentOf(span)).toBe(DEVICE_SPAN);
  });

  it('names a producer span after the declared destination, templates unexpanded; the resolved one is an attribute', () => {
    const { exporter, tracer } = sdk();
    const definition = from('memory:readings', { id: 'readings' }).to('amqp:exchange/telemetry?routingKey=reading.{deviceId}', { id: 'publish' }).definition();
    const probe = tracingObserver({ tracer }).attach({ id: 'readings', definition });
    const step = definition.steps[0];
    if (probe?.publish === undefined || step === undefined) throw new Error('expected a probe with publish');
    probe.publish(step, 'amqp:exchange/telemetry?routingKey=reading.d-17', [createMessage(1, { headers: { traceparent: TRACEPARENT } })])?.done(undefined);
    const [send] = exporter.getFinishedSpans();
    expect(send?.name).toBe('send telemetry');
    expect(send?.attributes).toMatchObject({ 'messaging.system': 'rabbitmq', 'messaging.destination.name': 'telemetry', 'messaging.destination.template': 'telemetry', 'messaging.rabbitmq.destination.routing_key': 'reading.d-17' });
  });

  it('names an MQTT process span after the declared filter; the concrete topic is the destination name', () => {
    const { exporter, tracer } = sdk();
    const definition = from('mqtt:site/+siteId/devices/#rest?qos=1', { id: 'devices' }).to('memory:x').definition();
    const probe = tracingObserver({ tracer }).attach({ id: 'devices', definition });
    const state = probe?.begin?.(createMessage(1, { headers: { mqttTopic: 'site/s1/devices/d1/telemetry' } }));
    probe?.end?.(state, 'completed', 1, undefined);
    const [span] = exporter.getFinishedSpans();
    expect(span?.name).toBe('process site/+siteId/devices/#rest');
    expect(span?.attributes).toMatchObject({ 'messaging.system': 'mqtt', 'messaging.destination.name': 'site/s1/devices/d1/telemetry', 'messaging.destination.template': 'site/+siteId/devices/#rest' });
  });

  it('activeTraceHeaders: the active span\'s context as headers', () => {
    const { tracer } = sdk();
    context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
    try {
      const span = tracer.startSpan('http request');
      const headers = context.with(trace.setSpan(context.active(), span), () => activeTraceHeaders());
      span.end();
      expect(parseTraceparent(headers?.traceparent)).toEqual({ traceId: span.spanContext().traceId, spanId: span.spanContext().spanId, traceFlags: 1 });
      expect(activeTraceHeaders()).toBeUndefined();
    } finally {
      context.disable();
    }
  });
});
