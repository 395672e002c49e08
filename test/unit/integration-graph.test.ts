import { afterEach, describe, expect, it } from 'vitest';
import { createIntegration, from, silentLogger, type Integration } from '../../facade/index.ts';
import { DeadLetterStore } from '../../facade/console/dead-letter-store.ts';
import { TestKit } from '../../facade/testing/index.ts';
import { integrationGraph, normaliseUri, type EndpointNode, type GraphEdge, type StepNode } from '../../facade/console/integration-graph.ts';
import { emptyMetrics } from '../../src/runtime/route-metrics.ts';
import { flowRoutes } from '../../examples/mqtt-to-amqp/flow.ts';
import { until } from '../support/wait.ts';

const ORDER = 'order.checked@1';

interface Order {
  readonly n: number;
}

/** `orders`: filter → transform (declares a contract) → choice (two `to` branches) → aggregate → to; `audit` consumes what `orders` sends to `memory:big`. */
function routes() {
  const orders = from<Order>('memory:orders?capacity=50', { id: 'orders' })
    .deadLetterChannel('memory:orders.dlq')
    .filter((message) => message.body.n !== 1, { id: 'drop-first' })
    .transform((message) => ({ n: message.body.n, big: message.body.n >= 4 }), { id: 'check', contract: ORDER })
    .choice((choice) => choice.when((message) => message.body.big, (big) => big.to('memory:big', { id: 'to-big' })).otherwise((small) => small.to('memory:small', { id: 'to-small' })), { id: 'by-size' })
    .aggregate({ correlate: () => 'all', strategy: (previous: number | undefined) => (previous ?? 0) + 1, size: 5 }, { id: 'batch' })
    .to('memory:batches', { id: 'batches' });
  const audit = from('memory:big', { id: 'audit' }).to('memory:audit?capacity=10', { id: 'audited' });
  return [orders, audit];
}

const apps: Integration[] = [];
afterEach(async () => {
  for (const app of apps.splice(0)) await app.stop({ drainTimeoutMs: 100 });
});

function edge(edges: readonly GraphEdge[], from: string, to: string): GraphEdge {
  const found = edges.find((candidate) => candidate.from === from && candidate.to === to);
  if (found === undefined) throw new Error(`no edge ${from} -> ${to}; have:\n${edges.map((candidate) => `${candidate.from} -> ${candidate.to}`).join('\n')}`);
  return found;
}

describe('integrationGraph', () => {
  it('normalises endpoint URIs to scheme:path', () => {
    expect(normaliseUri('mqtt:devices/+deviceId/telemetry?qos=1&payload=raw')).toBe('mqtt:devices/+deviceId/telemetry');
    expect(normaliseUri('amqp:exchange/telemetry?routingKey=alert.{deviceId}')).toBe('amqp:exchange/telemetry');
    expect(normaliseUri('memory:orders')).toBe('memory:orders');
  });

  it('draws endpoints, steps, branches and a channel shared by two routes, before any message', () => {
    const app = createIntegration({ routes: routes(), logger: silentLogger, observers: [new DeadLetterStore()] }); // as the console does: observed routes count per step
    const graph = integrationGraph(app);
    expect(graph.routes.map((route) => [route.id, route.status, route.source])).toEqual([
      ['orders', 'stopped', 'memory:orders?capacity=50'],
      ['audit', 'stopped', 'memory:big'],
    ]);
    expect(graph.routes[0]?.deadLetterUri).toBe('memory:orders.dlq');
    expect(graph.routes[1]?.deadLetterUri).toBeUndefined();

    const endpoints = graph.nodes.filter((node): node is EndpointNode => node.kind === 'endpoint');
    expect(Object.fromEntries(endpoints.map((node) => [node.id, node.role]))).toEqual({
      'endpoint:memory:orders': 'source',
      'endpoint:memory:big': 'channel',
      'endpoint:memory:small': 'destination',
      'endpoint:memory:batches': 'destination',
      'endpoint:memory:orders.dlq': 'dead-letter',
      'endpoint:memory:audit': 'destination',
    });
    expect(endpoints.find((node) => node.uri === 'memory:big')?.routes.toSorted()).toEqual(['audit', 'orders']);

    const steps = graph.nodes.filter((node): node is StepNode => node.kind === 'step');
    expect(steps.map((node) => node.id)).toEqual(['step:orders/drop-first', 'step:orders/check', 'step:orders/by-size', 'step:orders/to-big', 'step:orders/to-small', 'step:orders/batch', 'step:orders/batches', 'step:audit/audited']);
    const toBig = steps.find((node) => node.stepId === 'to-big');
    expect(toBig).toMatchObject({ route: 'orders', stepKind: 'to', parent: 'step:orders/by-size', branch: 0 });
    expect(toBig?.declaredAt).toMatch(/integration-graph\.test\.ts:\d+/);
    expect(steps.find((node) => node.stepId === 'to-small')).toMatchObject({ parent: 'step:orders/by-size', branch: 1 });
    expect(steps.find((node) => node.stepId === 'batch')?.parent).toBeUndefined();

    const edges = graph.edges;
    const ids = new Set(edges.map((candidate) => candidate.id));
    expect(ids.size).toBe(edges.length);
    // contracts: unknown until the transform declares one, kept through choice and `to`, reset by the aggregator
    expect(edge(edges, 'endpoint:memory:orders', 'step:orders/drop-first')).toMatchObject({ kind: 'flow', contract: null, route: 'orders' });
    expect(edge(edges, 'step:orders/drop-first', 'step:orders/check').contract).toBeNull();
    expect(edge(edges, 'step:orders/check', 'step:orders/by-size').contract).toBe(ORDER);
    expect(edge(edges, 'step:orders/by-size', 'step:orders/to-big').contract).toBe(ORDER);
    expect(edge(edges, 'step:orders/by-size', 'step:orders/to-small').contract).toBe(ORDER);
    // what leaves a branch goes on after the choice, `to` or not
    expect(edge(edges, 'step:orders/to-big', 'step:orders/batch').contract).toBe(ORDER);
    expect(edge(edges, 'step:orders/to-small', 'step:orders/batch').contract).toBe(ORDER);
    expect(edge(edges, 'step:orders/batch', 'step:orders/batches').contract).toBeNull();
    expect(edge(edges, 'step:orders/to-big', 'endpoint:memory:big')).toMatchObject({ kind: 'send', contract: ORDER });
    expect(edge(edges, 'step:orders/batches', 'endpoint:memory:batches')).toMatchObject({ kind: 'send', contract: null });
    expect(edge(edges, 'endpoint:memory:orders', 'endpoint:memory:orders.dlq')).toMatchObject({ kind: 'dead-letter', route: 'orders', contract: null });
    // the channel's consumer takes what the other route sends there
    expect(edge(edges, 'endpoint:memory:big', 'step:audit/audited')).toMatchObject({ route: 'audit', contract: ORDER });
    expect(edges.some((candidate) => candidate.from === 'step:orders/by-size' && candidate.to === 'step:orders/batch')).toBe(false);
    expect(edges.every((candidate) => candidate.counters.messages === 0 && candidate.counters.failed === 0)).toBe(true);
  });

  it('counts messages on nodes and edges as they flow', async () => {
    const app = createIntegration({ routes: routes(), logger: silentLogger, observers: [new DeadLetterStore()] }); // as the console does: observed routes count per step
    apps.push(app);
    await app.start();
    const kit = new TestKit(app);
    await kit.sendAll('memory:orders', [1, 2, 3, 4, 5, 6].map((n) => ({ n })));
    await until(
      () => (app.metrics().orders?.steps.batches?.passed ?? 0) === 1 && (app.metrics().audit?.completed ?? 0) === 3,
      () => JSON.stringify(app.metrics()),
    );
    const graph = integrationGraph(app);
    const edges = graph.edges;
    expect(graph.routes.find((route) => route.id === 'orders')?.metrics).toMatchObject({ received: 6, filtered: 1, failed: 0 });
    expect(graph.routes.find((route) => route.id === 'orders')?.status).toBe('started');
    expect(edge(edges, 'endpoint:memory:orders', 'step:orders/drop-first').counters).toEqual({ messages: 6, failed: 0 });
    expect(edge(edges, 'step:orders/drop-first', 'step:orders/check').counters.messages).toBe(5);
    expect(edge(edges, 'step:orders/check', 'step:orders/by-size').counters.messages).toBe(5);
    expect(edge(edges, 'step:orders/by-size', 'step:orders/to-big').counters.messages).toBe(3);
    expect(edge(edges, 'step:orders/by-size', 'step:orders/to-small').counters.messages).toBe(2);
    expect(edge(edges, 'step:orders/to-big', 'step:orders/batch').counters.messages).toBe(3);
    expect(edge(edges, 'step:orders/to-small', 'step:orders/batch').counters.messages).toBe(2);
    expect(edge(edges, 'step:orders/batch', 'step:orders/batches').counters.messages).toBe(1);
    expect(edge(edges, 'step:orders/to-big', 'endpoint:memory:big').counters.messages).toBe(3);
    expect(edge(edges, 'step:orders/batches', 'endpoint:memory:batches').counters.messages).toBe(1);
    expect(edge(edges, 'endpoint:memory:big', 'step:audit/audited').counters.messages).toBe(3);
    const check = graph.nodes.find((node) => node.id === 'step:orders/check') as StepNode;
    expect(check.counters).toEqual({ passed: 5, failed: 0 });
  });

  it('counts failures at the failing step and dead letters on the dead-letter edge', async () => {
    const failing = from<Order>('memory:in', { id: 'failing' })
      .deadLetterChannel('memory:dlq')
      .transform((message) => {
        if (message.body.n % 2 === 0) throw new Error('even');
        return message.body;
      }, { id: 'odd-only' })
      .to('memory:out', { id: 'out' });
    const app = createIntegration({ routes: [failing], logger: silentLogger, observers: [new DeadLetterStore()] });
    apps.push(app);
    await app.start();
    await new TestKit(app).sendAll('memory:in', [1, 2, 3, 4].map((n) => ({ n })));
    await until(() => (app.metrics().failing?.deadLettered ?? 0) === 2 && (app.metrics().failing?.completed ?? 0) === 2, () => JSON.stringify(app.metrics()));
    const graph = integrationGraph(app);
    expect(edge(graph.edges, 'endpoint:memory:in', 'step:failing/odd-only').counters).toEqual({ messages: 4, failed: 2 });
    expect(edge(graph.edges, 'endpoint:memory:in', 'endpoint:memory:dlq').counters).toEqual({ messages: 2, failed: 0 });
    expect((graph.nodes.find((node) => node.id === 'step:failing/odd-only') as StepNode).counters).toEqual({ passed: 2, failed: 2 });
  });

  it("draws the flagship's buffered flow: the buffers are channels and the forward route takes readings from one", () => {
    const definitions = flowRoutes({ buffered: true }).map((route) => route.definition());
    const graph = integrationGraph({ routes: definitions.map((definition) => ({ id: definition.id, status: 'stopped' as const, definition, metrics: emptyMetrics() })) });
    const roles = Object.fromEntries(graph.nodes.flatMap((node) => (node.kind === 'endpoint' ? [[node.uri, node.role]] : [])));
    expect(roles).toEqual({
      'mqtt:devices/+deviceId/telemetry': 'source',
      'buffer:telemetry': 'channel',
      'buffer:telemetry.dead': 'channel',
      'amqp:exchange/telemetry': 'destination',
      'amqp:exchange/telemetry.dlx': 'dead-letter',
    });
    expect(edge(graph.edges, 'step:telemetry/translate', 'step:telemetry/reading-headers').contract).toBe('backend.reading@1');
    expect(edge(graph.edges, 'endpoint:buffer:telemetry', 'step:forward/route-by-temperature').contract).toBe('backend.reading@1');
    expect(edge(graph.edges, 'step:forward/route-by-temperature', 'step:forward/alerts').contract).toBe('backend.reading@1');
    expect(edge(graph.edges, 'step:forward/alerts', 'endpoint:amqp:exchange/telemetry').kind).toBe('send');
    expect(edge(graph.edges, 'endpoint:mqtt:devices/+deviceId/telemetry', 'endpoint:buffer:telemetry.dead').kind).toBe('dead-letter');
  });
});
