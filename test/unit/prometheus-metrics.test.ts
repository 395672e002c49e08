import { ContainerModule } from 'inversify';
import { BehaviorSubject, Observable } from 'rxjs';
import { afterEach, describe, expect, it } from 'vitest';
import { createMessage, from, retry, silentLogger, type RouteSource } from '../../facade/index.ts';
import { createPrometheusMetrics, type PrometheusMetrics } from '../../facade/observability/prometheus-metrics.ts';
import { healthOf } from '../../facade/observability/health.ts';
import { createIntegration, type Integration } from '../../src/runtime/integration.ts';
import { Transport, type Delivery, type EndpointDepth, type TransportStatus } from '../../src/spi.ts';
import { until } from '../support/wait.ts';
import { parse, value, type Sample } from '../support/prometheus-text.ts';


const running: Integration[] = [];
const metricsRunning: PrometheusMetrics[] = [];

afterEach(async () => {
  for (const metrics of metricsRunning.splice(0)) metrics.close();
  for (const app of running.splice(0)) await app.stop({ drainTimeoutMs: 1_000 });
});

function integration(routes: RouteSource[], transports: Transport[] = []): Integration {
  const app = createIntegration({ routes, logger: silentLogger, modules: [new ContainerModule(({ bind }) => transports.forEach((t) => void bind<Transport>(Transport).toConstantValue(t)))] });
  running.push(app);
  return app;
}

function watch(app: Integration, options: Parameters<typeof createPrometheusMetrics>[1] = { defaultMetrics: false }): PrometheusMetrics {
  const metrics = createPrometheusMetrics(app, options);
  metricsRunning.push(metrics);
  return metrics;
}

const N = 50;
// n % 5 === 0 filtered (10); of the rest, n % 7 === 0 fails twice then is dead-lettered (7 14 21 28 42 49); 34 complete
const FILTERED = 10;
const DEAD = 6;
const COMPLETED = N - FILTERED - DEAD;

function ordersRoute(): RouteSource {
  return from<{ n: number }>('memory:in', { id: 'orders' })
    .deadLetterChannel('memory:dlq', { retry: retry({ maxAttempts: 2, initialDelayMs: 1 }), label: 'dead' })
    .filter((m) => m.body.n % 5 !== 0, { id: 'not-fifth' })
    .process(
      (m) => {
        if (m.body.n % 7 === 0) throw new Error('sevens fail');
      },
      { id: 'check' },
    )
    .to('memory:out', { id: 'deliver' });
}

async function runOrders(options: Parameters<typeof createPrometheusMetrics>[1] = { defaultMetrics: false, timingSampleEvery: 1 }): Promise<{ app: Integration; metrics: PrometheusMetrics }> {
  const app = integration([ordersRoute()]);
  const metrics = watch(app, options);
  await app.start();
  await app.transports.publish(
    'memory:in',
    Array.from({ length: N }, (_, n) => createMessage({ n })),
  );
  const orders = app.route('orders').metrics;
  await until(
    () => orders.completed + orders.filtered + orders.deadLettered === N && orders.inFlight === 0,
    () => JSON.stringify(orders),
  );
  return { app, metrics };
}

describe('prometheus metrics', () => {
  it('counts per route and per outcome exactly what the route did', async () => {
    const { metrics } = await runOrders();
    const samples = parse(await metrics.scrape());
    const route = { route: 'orders' };
    expect(value(samples, 'interchange_route_messages_received_total', route)).toBe(N);
    expect(value(samples, 'interchange_route_message_outcomes_total', { ...route, outcome: 'completed' })).toBe(COMPLETED);
    expect(value(samples, 'interchange_route_message_outcomes_total', { ...route, outcome: 'filtered' })).toBe(FILTERED);
    expect(value(samples, 'interchange_route_message_outcomes_total', { ...route, outcome: 'dead_lettered' })).toBe(DEAD);
    for (const outcome of ['discarded', 'rejected', 'expired', 'handed_back']) expect(value(samples, 'interchange_route_message_outcomes_total', { ...route, outcome })).toBe(0);
    expect(value(samples, 'interchange_route_failures_total', route)).toBe(DEAD * 2);
    expect(value(samples, 'interchange_route_retries_total', route)).toBe(DEAD);
    expect(value(samples, 'interchange_route_in_flight_messages', route)).toBe(0);
    expect(value(samples, 'interchange_route_status', { ...route, status: 'started' })).toBe(1);
    expect(value(samples, 'interchange_route_status', { ...route, status: 'stopped' })).toBe(0);
    expect(value(samples, 'interchange_route_sent_messages_total', { ...route, step: 'deliver' })).toBe(COMPLETED);
    expect(value(samples, 'interchange_route_sent_messages_total', { ...route, step: 'dead' })).toBe(DEAD);
  });

  it('counts per step what it passed on and how often it failed, with its kind', async () => {
    const { metrics } = await runOrders();
    const samples = parse(await metrics.scrape());
    const step = (id: string, kind: string): Record<string, string> => ({ route: 'orders', step: id, kind });
    expect(value(samples, 'interchange_step_messages_passed_total', step('not-fifth', 'filter'))).toBe(N - FILTERED);
    expect(value(samples, 'interchange_step_messages_passed_total', step('check', 'process'))).toBe(COMPLETED);
    expect(value(samples, 'interchange_step_messages_passed_total', step('deliver', 'to'))).toBe(COMPLETED);
    expect(value(samples, 'interchange_step_failures_total', step('check', 'process'))).toBe(DEAD * 2);
    expect(value(samples, 'interchange_step_failures_total', step('deliver', 'to'))).toBe(0);
  });

  it('times each execution by outcome, each leaf step and each publish, in seconds', async () => {
    const { metrics } = await runOrders();
    const samples = parse(await metrics.scrape());
    const execution = (outcome: string, suffix: string): number => value(samples, `interchange_route_execution_duration_seconds_${suffix}`, { route: 'orders', outcome });
    expect(execution('completed', 'count')).toBe(COMPLETED);
    expect(execution('filtered', 'count')).toBe(FILTERED);
    expect(execution('dead_lettered', 'count')).toBe(DEAD);
    expect(execution('completed', 'sum')).toBeGreaterThan(0);
    expect(execution('completed', 'sum')).toBeLessThan(COMPLETED * 5); // seconds, not milliseconds
    expect(value(samples, 'interchange_route_execution_duration_seconds_bucket', { route: 'orders', outcome: 'completed', le: '+Inf' })).toBe(COMPLETED);
    const buckets = samples.filter((s) => s.name === 'interchange_route_execution_duration_seconds_bucket' && s.labels.outcome === 'completed').map((s) => s.value);
    expect(buckets).toEqual([...buckets].sort((a, b) => a - b)); // cumulative
    const step = (id: string): number => value(samples, 'interchange_step_duration_seconds_count', { route: 'orders', step: id });
    expect(step('not-fifth')).toBe(N - FILTERED);
    expect(step('check')).toBe(COMPLETED);
    expect(step('deliver')).toBe(COMPLETED);
    expect(value(samples, 'interchange_publish_confirm_duration_seconds_count', { route: 'orders', step: 'deliver', transport: 'memory' })).toBe(COMPLETED);
    expect(value(samples, 'interchange_publish_failed_messages_total', { route: 'orders', step: 'deliver', transport: 'memory' })).toBe(0);
  });

  it('times one execution in timingSampleEvery (16 by default), its steps too; the counters count every message', async () => {
    const { metrics } = await runOrders({ defaultMetrics: false });
    const samples = parse(await metrics.scrape());
    // the 16th, 32nd and 48th executions (n = 15, 31, 47) are timed step by step; a filtered one never leaves its filter
    const timed = [15, 31, 47]; // 0-based admission order
    const step = (id: string): number => value(samples, 'interchange_step_duration_seconds_count', { route: 'orders', step: id });
    expect(step('not-fifth')).toBe(timed.filter((n) => n % 5 !== 0).length);
    expect(step('deliver')).toBe(timed.filter((n) => n % 5 !== 0 && n % 7 !== 0).length);
    expect(value(samples, 'interchange_route_execution_duration_seconds_count', { route: 'orders', outcome: 'completed' })).toBe(timed.filter((n) => n % 5 !== 0 && n % 7 !== 0).length);
    expect(value(samples, 'interchange_route_message_outcomes_total', { route: 'orders', outcome: 'completed' })).toBe(COMPLETED);
    expect(() => createPrometheusMetrics(integration([ordersRoute()]), { defaultMetrics: false, timingSampleEvery: 0 })).toThrow(RangeError);
  });

  it('reads the same counters on every scrape: scraping again does not add them up', async () => {
    const { metrics } = await runOrders();
    const first = await metrics.scrape();
    const second = await metrics.scrape();
    const counters = (text: string): Sample[] => parse(text).filter((s) => s.name.endsWith('_total') || s.name.endsWith('_count'));
    expect(counters(second)).toEqual(counters(first));
    expect(value(parse(second), 'interchange_route_messages_received_total', { route: 'orders' })).toBe(N);
  });

  it('counts the messages a destination did not confirm, per step and transport', async () => {
    const app = integration([from('memory:x', { id: 'f' }).deadLetterChannel('memory:dlq').to('refuse:out', { id: 'send' })], [new RefusingTransport()]);
    const metrics = watch(app);
    await app.start();
    await app.transports.publish(
      'memory:x',
      Array.from({ length: 7 }, (_, n) => createMessage({ n })),
    );
    await until(
      () => app.route('f').metrics.deadLettered === 7,
      () => JSON.stringify(app.route('f').metrics),
    );
    const samples = parse(await metrics.scrape());
    const labels = { route: 'f', step: 'send', transport: 'refuse' };
    expect(value(samples, 'interchange_publish_failed_messages_total', labels)).toBe(7);
    expect(value(samples, 'interchange_publish_confirm_duration_seconds_count', labels)).toBe(0);
    expect(value(samples, 'interchange_step_failures_total', { route: 'f', step: 'send', kind: 'to' })).toBe(7);
  });

  it('keeps histograms across a route restart and shows its status', async () => {
    const { app, metrics } = await runOrders();
    await app.stopRoute('orders');
    let samples = parse(await metrics.scrape());
    expect(value(samples, 'interchange_route_status', { route: 'orders', status: 'stopped' })).toBe(1);
    expect(value(samples, 'interchange_route_status', { route: 'orders', status: 'started' })).toBe(0);
    app.startRoute('orders');
    await app.transports.publish('memory:in', [createMessage({ n: 1 })]);
    await until(
      () => app.route('orders').metrics.completed === COMPLETED + 1,
      () => 'one more',
    );
    samples = parse(await metrics.scrape());
    expect(value(samples, 'interchange_route_execution_duration_seconds_count', { route: 'orders', outcome: 'completed' })).toBe(COMPLETED + 1);
  });

  it('serves the text format with its content type, process metrics included by default', async () => {
    const app = integration([from('memory:a', { id: 'a' }).to('memory:b')]);
    const metrics = watch(app, {});
    await app.start();
    expect(metrics.contentType).toMatch(/^text\/plain; version=0\.0\.4/);
    const text = await metrics.scrape();
    expect(text).toContain('# TYPE interchange_route_messages_received_total counter');
    expect(text).toContain('# TYPE interchange_step_duration_seconds histogram');
    expect(text).toMatch(/^process_cpu_user_seconds_total /m);
    expect(text).toMatch(/^nodejs_eventloop_lag_seconds /m);
  });

  it('uses the prefix and buckets given', async () => {
    const app = integration([from('memory:a', { id: 'a' }).to('memory:b', { id: 'out' })]);
    const metrics = watch(app, { defaultMetrics: false, prefix: 'bridge_', buckets: [0.5, 0.1] });
    await app.start();
    await app.transports.publish('memory:a', [createMessage('x')]);
    await until(
      () => app.route('a').metrics.completed === 1,
      () => 'one',
    );
    const samples = parse(await metrics.scrape());
    expect(samples.some((s) => s.name.startsWith('interchange_'))).toBe(false);
    expect(samples.filter((s) => s.name === 'bridge_step_duration_seconds_bucket' && s.labels.step === 'out').map((s) => s.labels.le)).toEqual(['0.1', '0.5', '+Inf']);
  });

  it('shows transport links up and counts their losses, not their closing', async () => {
    const link = new LinkTransport();
    const app = integration([from('link:in', { id: 'l' }).to('memory:out')], [link]);
    const metrics = watch(app);
    const up = async (): Promise<number> => value(parse(await metrics.scrape()), 'interchange_transport_up', { transport: 'link' });
    const reconnects = async (): Promise<number> => value(parse(await metrics.scrape()), 'interchange_transport_reconnects_total', { transport: 'link' });
    expect(await up()).toBe(0);
    await app.start();
    expect(await up()).toBe(1);
    link.status.next({ state: 'reconnecting' });
    expect(await up()).toBe(0);
    link.status.next({ state: 'connecting' });
    link.status.next({ state: 'connected' });
    link.status.next({ state: 'blocked' });
    expect(await up()).toBe(1);
    link.status.next({ state: 'reconnecting' });
    link.status.next({ state: 'connected' });
    expect(await reconnects()).toBe(2);
    await app.stop();
    running.splice(0);
    expect(await up()).toBe(0);
    expect(await reconnects()).toBe(2);
    metrics.close();
    expect(link.status.observed).toBe(false);
  });

  it('reports the depth of endpoints whose transport reports it, at scrape time', async () => {
    const link = new LinkTransport();
    const app = integration([from('link:in', { id: 'l' }).to('memory:out')], [link]);
    const metrics = watch(app);
    link.held = [{ uri: 'link:in', messages: 3, bytes: 300, capacityMessages: 10 }];
    let samples = parse(await metrics.scrape());
    const endpoint = { transport: 'link', endpoint: 'link:in' };
    expect(value(samples, 'interchange_endpoint_depth_messages', endpoint)).toBe(3);
    expect(value(samples, 'interchange_endpoint_depth_bytes', endpoint)).toBe(300);
    expect(value(samples, 'interchange_endpoint_capacity_messages', endpoint)).toBe(10);
    expect(samples.some((s) => s.name === 'interchange_endpoint_capacity_bytes')).toBe(false);
    link.held = [];
    samples = parse(await metrics.scrape());
    expect(samples.some((s) => s.name === 'interchange_endpoint_depth_messages')).toBe(false);
  });

  it('shows the depth of in-process channels (memory:) against their bound; readiness ignores them', async () => {
    const app = integration([from('memory:busy-in', { id: 'busy' }).to('memory:nobody-reads?capacity=50')]);
    const metrics = watch(app);
    await app.start();
    await app.transports.publish('memory:busy-in', Array.from({ length: 5 }, (_, n) => createMessage({ n })));
    await until(() => app.route('busy').metrics.completed === 5, () => JSON.stringify(app.route('busy').metrics));
    const samples = parse(await metrics.scrape());
    const endpoint = { transport: 'memory', endpoint: 'memory:nobody-reads' };
    expect(value(samples, 'interchange_endpoint_depth_messages', endpoint)).toBe(5);
    expect(value(samples, 'interchange_endpoint_capacity_messages', endpoint)).toBe(50);
    expect(value(samples, 'interchange_endpoint_depth_messages', { transport: 'memory', endpoint: 'memory:busy-in' })).toBe(0);
    expect(healthOf(app).ready.checks.buffers).toEqual([]);
  });

  it('queries the outbox backlog once per scrape; a failing query keeps the last values and sets outbox_up 0', async () => {
    const app = integration([from('memory:a', { id: 'a' }).to('memory:b')]);
    const metrics = watch(app);
    let queries = 0;
    let failing = false;
    metrics.watchOutbox({
      backlog: async () => {
        queries += 1;
        if (failing) throw new Error('database is down');
        return { pending: 12, inFlight: 2, parked: 1, lagMs: 1500 };
      },
    });
    let samples = parse(await metrics.scrape());
    expect(queries).toBe(1);
    const outbox = { outbox: 'outbox' };
    expect(value(samples, 'interchange_outbox_up', outbox)).toBe(1);
    expect(value(samples, 'interchange_outbox_pending_rows', outbox)).toBe(12);
    expect(value(samples, 'interchange_outbox_in_flight_partitions', outbox)).toBe(2);
    expect(value(samples, 'interchange_outbox_parked_rows', outbox)).toBe(1);
    expect(value(samples, 'interchange_outbox_lag_seconds', outbox)).toBe(1.5);
    failing = true;
    samples = parse(await metrics.scrape());
    expect(queries).toBe(2);
    expect(value(samples, 'interchange_outbox_up', outbox)).toBe(0);
    expect(value(samples, 'interchange_outbox_pending_rows', outbox)).toBe(12);
  });
});

/** `refuse:` fails every publish. */
class RefusingTransport implements Transport {
  readonly scheme = 'refuse';
  async connect(): Promise<void> {}
  async close(): Promise<void> {}
  async publish(): Promise<void> {
    throw new Error('refused');
  }
  consume(): Observable<Delivery> {
    return new Observable<Delivery>();
  }
}

/** A transport that reports a status the test drives and depths the test sets. */
class LinkTransport implements Transport {
  readonly scheme = 'link';
  readonly status = new BehaviorSubject<TransportStatus>({ state: 'idle' });
  readonly status$ = this.status.asObservable();
  held: EndpointDepth[] = [];
  async connect(): Promise<void> {
    this.status.next({ state: 'connecting' });
    this.status.next({ state: 'connected' });
  }
  async close(): Promise<void> {
    this.status.next({ state: 'closed' });
  }
  async publish(): Promise<void> {}
  consume(): Observable<Delivery> {
    return new Observable<Delivery>();
  }
  depths(): readonly EndpointDepth[] {
    return this.held;
  }
}
