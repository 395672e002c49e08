import { trace } from '@opentelemetry/api';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { afterEach, describe, expect, it } from 'vitest';
import { createIntegration, createMessage, from, schemaModule, type Message } from '../../../facade/index.ts';
import { DeadLetterStore } from '../../../facade/console/dead-letter-store.ts';
import { detailOf, summaryOf } from '../../../facade/console/dead-letter-view.ts';
import { tracingObserver } from '../../../facade/observability/tracing.ts';
import { validate } from '../../../patterns/validate.ts';
import type { MemoryTransport } from '../../../src/channel/memory-transport.ts';
import { parseEndpoint, type Logger } from '../../../src/core/index.ts';
import type { Integration } from '../../../src/runtime/integration.ts';
import { JsonSchemaRegistry } from '../../../src/schema/index.ts';
import type { ClassifiedField } from '../../../src/security/classification.ts';
import { classifiedValues, redactClassified, redactFailure, redactText } from '../../../src/security/redact-classified.ts';

const fields: ClassifiedField[] = [
  { pointer: '/email', classification: 'personal' },
  { pointer: '/lines/*/iban', classification: 'secret' },
];

describe('redactClassified', () => {
  it('replaces classified values with their marker without mutating the body', () => {
    const body = Object.freeze({ name: 'Ada', email: 'ada@example.org', lines: Object.freeze([Object.freeze({ iban: 'DE89370400440532013000', n: 1 }), Object.freeze({ n: 2 })]) });
    expect(redactClassified(body, fields)).toEqual({ name: 'Ada', email: '[personal]', lines: [{ iban: '[secret]', n: 1 }, { n: 2 }] });
    expect(body.email).toBe('ada@example.org');
  });

  it('gives the same body back when nothing is classified or present, and leaves internal fields unless asked', () => {
    const body = { name: 'Ada' };
    expect(redactClassified(body, fields)).toBe(body);
    const internal: ClassifiedField[] = [{ pointer: '/segment', classification: 'internal' }];
    expect(redactClassified({ segment: 'gold' }, internal)).toEqual({ segment: 'gold' });
    expect(redactClassified({ segment: 'gold' }, internal, ['internal'])).toEqual({ segment: '[internal]' });
  });

  it('redacts a JSON text or bytes body as the same kind', () => {
    expect(redactClassified('{"email":"ada@example.org"}', fields)).toBe('{"email":"[personal]"}');
    const bytes = redactClassified(Buffer.from('{"email":"ada@example.org"}'), fields);
    expect(Buffer.isBuffer(bytes) && bytes.toString()).toBe('{"email":"[personal]"}');
    expect(redactClassified('not json', fields)).toBe('not json');
  });
});

describe('redactText and redactFailure', () => {
  it('scrubs long values anywhere, short ones as whole words, JSON-escaped forms too', () => {
    const values = classifiedValues({ email: 'a"b@example.org', age: 42 }, [...fields, { pointer: '/age', classification: 'personal' }]);
    expect(redactText('to a"b@example.org, aged 42, order 1420', values)).toBe('to [redacted], aged [redacted], order 1420');
    expect(redactText('{"email":"a\\"b@example.org"}', values)).toBe('{"email":"[redacted]"}');
  });

  it('scrubs an error in place: message, stack and causes', () => {
    const inner = new Error('no account for ada@example.org');
    const outer = new Error('billing failed: no account for ada@example.org', { cause: inner });
    expect(redactFailure(outer, ['ada@example.org'])).toBe(true);
    expect(outer.message).toBe('billing failed: no account for [redacted]');
    expect(inner.message).toBe('no account for [redacted]');
    expect(`${outer.stack} ${inner.stack}`).not.toContain('ada@example.org');
  });
});

describe('classified fields end to end over memory channels', () => {
  const signup = {
    $id: 'urn:test:redact.signup:1',
    type: 'object',
    required: ['name', 'email', 'card', 'plan'],
    properties: {
      name: { type: 'string' },
      email: { type: 'string', 'x-classification': 'personal' },
      card: { type: 'string', 'x-classification': 'secret' },
      plan: { type: 'string', enum: ['free', 'pro'] },
    },
  };
  const apps: Integration[] = [];
  afterEach(async () => {
    for (const app of apps.splice(0)) await app.stop({ drainTimeoutMs: 1_000 });
    trace.disable();
  });

  it('never writes a personal or secret value in clear to logs, dead-letter headers, traces or the console', async () => {
    const logs: unknown[] = [];
    const logger: Logger = {
      info: (message, extra) => logs.push(['info', message, extra]),
      warn: (message, extra) => logs.push(['warn', message, extra]),
      error: (message, extra) => logs.push(['error', message, extra]),
    };
    const exporter = new InMemorySpanExporter();
    const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
    const store = new DeadLetterStore();
    const registry = new JsonSchemaRegistry({ contracts: [{ subject: 'redact.signup', version: 1, schema: signup }] });
    const route = from('memory:signups', { id: 'signups' })
      .step('validate', validate('redact.signup@1'), { contract: 'redact.signup@1' })
      .process((message) => {
        const { name, email, card } = message.body as { name: string; email: string; card: string };
        if (name === 'Grace Hopper') throw new Error(`${name}: cannot bill card ${card} of ${email}`);
      })
      .to('memory:accepted')
      .deadLetterChannel('memory:signups.dlq');
    const app = createIntegration({ routes: [route], modules: [schemaModule({ registry })], logger, observers: [tracingObserver({ tracer: provider.getTracer('test') }), store] });
    apps.push(app);
    await app.start();
    const memory = app.transport<MemoryTransport>('memory');
    const dead: Message[] = [];
    memory.consume(parseEndpoint('memory:signups.dlq'), { prefetch: 100 }).subscribe((delivery) => {
      dead.push(delivery.message);
      delivery.ack();
    });

    const secrets = ['grace@navy.example', '4111111111111111', 'ada@example.org', '5500005555555559'];
    await memory.publish(parseEndpoint('memory:signups'), [
      createMessage(JSON.stringify({ name: 'Grace Hopper', email: 'grace@navy.example', card: '4111111111111111', plan: 'pro' })),
      // invalid: plan outside the enum
      createMessage(JSON.stringify({ name: 'Ada Lovelace', email: 'ada@example.org', card: '5500005555555559', plan: 'enterprise' })),
    ]);
    await waitFor(() => dead.length === 2 && store.size === 2);

    const captured = {
      logs,
      deadLetterHeaders: dead.map((message) => message.headers),
      spans: exporter.getFinishedSpans().map((span) => ({ name: span.name, attributes: span.attributes, events: span.events, status: span.status })),
      console: store.list().flatMap((entry) => [summaryOf(entry), detailOf(entry)]),
    };
    const text = JSON.stringify(captured);
    for (const secret of secrets) expect(text, `${secret} in the captures`).not.toContain(secret);
    // what is not classified is still there
    expect(text).toContain('Grace Hopper: cannot bill card [redacted] of [redacted]');
    expect(text).toContain('Ada Lovelace');
    expect(store.list().map((entry) => JSON.parse(detailOf(entry).body) as unknown)).toEqual([
      { name: 'Grace Hopper', email: '[personal]', card: '[secret]', plan: 'pro' },
      { name: 'Ada Lovelace', email: '[personal]', card: '[secret]', plan: 'enterprise' },
    ]);
    expect(captured.spans.length).toBeGreaterThan(0);
    expect(logs.length).toBeGreaterThan(0);
    // the dead-lettered bodies are kept as they were: a dead-letter queue is inside the trust zone, and replay needs them
    expect(JSON.stringify(dead.map((message) => message.body))).toContain('ada@example.org');
  });

  it('scrubs a failure rejected to its source (no dead-letter channel) before the log line and the trace see it', async () => {
    const logs: unknown[] = [];
    const logger: Logger = {
      info: (message, extra) => logs.push(['info', message, extra]),
      warn: (message, extra) => logs.push(['warn', message, extra]),
      error: (message, extra) => logs.push(['error', message, extra]),
    };
    const exporter = new InMemorySpanExporter();
    const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
    const registry = new JsonSchemaRegistry({ contracts: [{ subject: 'redact.signup', version: 1, schema: signup }] });
    const route = from('memory:signups-rejected?maxDeliveries=1', { id: 'signups-rejected' })
      .step('validate', validate('redact.signup@1'), { contract: 'redact.signup@1' })
      .process((message) => {
        const { name, email, card } = message.body as { name: string; email: string; card: string };
        throw new Error(`${name}: cannot bill card ${card} of ${email}`);
      })
      .to('memory:accepted-rejected');
    const app = createIntegration({ routes: [route], modules: [schemaModule({ registry })], logger, observers: [tracingObserver({ tracer: provider.getTracer('test') })] });
    apps.push(app);
    await app.start();
    const memory = app.transport<MemoryTransport>('memory');
    await memory.publish(parseEndpoint('memory:signups-rejected'), [
      createMessage(JSON.stringify({ name: 'Grace Hopper', email: 'grace@navy.example', card: '4111111111111111', plan: 'pro' })),
    ]);
    await waitFor(() => app.route('signups-rejected').metrics.rejected >= 1);
    const text = JSON.stringify({ logs, spans: exporter.getFinishedSpans().map((span) => ({ attributes: span.attributes, events: span.events, status: span.status })) });
    for (const secret of ['grace@navy.example', '4111111111111111']) expect(text, `${secret} in the captures`).not.toContain(secret);
    expect(text).toContain('Grace Hopper: cannot bill card [redacted] of [redacted]');
  });
});

async function waitFor(condition: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
