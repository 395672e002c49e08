import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createIntegration, createMessage, from, silentLogger } from '../../facade/index.ts';
import { createPrometheusMetrics } from '../../facade/observability/prometheus-metrics.ts';
import { amqpModule, type AmqpTransport } from '../../adapters/amqp/index.ts';
import { bufferModule } from '../../adapters/buffer/index.ts';
import { migrate, openDatabase, Outbox, OutboxRelay } from '../../adapters/postgres/index.ts';
import { parseEndpoint } from '../../src/core/index.ts';
import { AMQP_URL, BrokerAdmin, uniqueName, until } from './amqp-support.ts';
import { dropSchema, POSTGRES_URL, RecordingPublisher, uniqueSchema } from '../unit/postgres/support.ts';
import { parse, value } from '../support/prometheus-text.ts';

// A scrape of a real integration: RabbitMQ and a durable buffer (temp directory), then an outbox on
// the real PostgreSQL. Fails when either server is down.

const admin = new BrokerAdmin();
const directory = mkdtempSync(join(tmpdir(), 'interchange-metrics-'));
afterAll(async () => {
  await admin.close();
  rmSync(directory, { recursive: true, force: true });
});


describe('metrics scrape', () => {
  it('shows a RabbitMQ route, its confirms, its links and the depth of the buffer it fills', async () => {
    const N = 40;
    const [input, output] = ['metrics-in', 'metrics-out'].map(uniqueName) as [string, string];
    const buffer = uniqueName('held');
    admin.track({ queues: [input, output] });
    const app = createIntegration({
      logger: silentLogger,
      modules: [amqpModule({ url: AMQP_URL, topology: { queues: [{ name: input }, { name: output }] } }), bufferModule({ directory, logger: silentLogger })],
      routes: [from(`amqp:queue/${input}`, { id: 'relay' }).to(`amqp:queue/${output}`, { id: 'to-rabbit' }).to(`buffer:${buffer}`, { id: 'to-buffer' })],
    });
    const metrics = createPrometheusMetrics(app, { timingSampleEvery: 1 });
    await app.start();
    try {
      await app.transport<AmqpTransport>('amqp').publish(
        parseEndpoint(`amqp:queue/${input}`),
        Array.from({ length: N }, (_, n) => createMessage({ n })),
      );
      await until(
        () => app.route('relay').metrics.completed === N,
        () => JSON.stringify(app.route('relay').metrics),
      );
      const samples = parse(await metrics.scrape());
      const route = { route: 'relay' };
      expect(value(samples, 'interchange_route_messages_received_total', route)).toBe(N);
      expect(value(samples, 'interchange_route_message_outcomes_total', { ...route, outcome: 'completed' })).toBe(N);
      expect(value(samples, 'interchange_route_in_flight_messages', route)).toBe(0);
      expect(value(samples, 'interchange_route_execution_duration_seconds_count', { ...route, outcome: 'completed' })).toBe(N);
      expect(value(samples, 'interchange_publish_confirm_duration_seconds_count', { ...route, step: 'to-rabbit', transport: 'amqp' })).toBe(N);
      expect(value(samples, 'interchange_publish_confirm_duration_seconds_sum', { ...route, step: 'to-rabbit', transport: 'amqp' })).toBeGreaterThan(0);
      expect(value(samples, 'interchange_publish_confirm_duration_seconds_count', { ...route, step: 'to-buffer', transport: 'buffer' })).toBe(N);
      expect(value(samples, 'interchange_step_duration_seconds_count', { ...route, step: 'to-rabbit' })).toBe(N);
      expect(value(samples, 'interchange_transport_up', { transport: 'amqp' })).toBe(1);
      expect(value(samples, 'interchange_transport_up', { transport: 'buffer' })).toBe(1);
      expect(value(samples, 'interchange_transport_reconnects_total', { transport: 'amqp' })).toBe(0);
      const endpoint = { transport: 'buffer', endpoint: `buffer:${buffer}` };
      expect(value(samples, 'interchange_endpoint_depth_messages', endpoint)).toBe(N);
      expect(value(samples, 'interchange_endpoint_depth_bytes', endpoint)).toBeGreaterThan(0);
      expect(value(samples, 'interchange_endpoint_capacity_messages', endpoint)).toBeGreaterThan(N);
      expect(await admin.messageCount(output)).toBe(N);
      expect(samples.some((sample) => sample.name === 'process_resident_memory_bytes')).toBe(true);
    } finally {
      await app.stop();
      metrics.close();
    }
    const stopped = parse(await metrics.scrape());
    expect(value(stopped, 'interchange_transport_up', { transport: 'amqp' })).toBe(0);
    expect(value(stopped, 'interchange_transport_reconnects_total', { transport: 'amqp' })).toBe(0); // a close is no loss
    expect(value(stopped, 'interchange_route_status', { route: 'relay', status: 'stopped' })).toBe(1);
  });

  it('shows an outbox backlog and lag from PostgreSQL, and outbox_up 0 with the last values when the query fails', async () => {
    const db = await openDatabase({ url: POSTGRES_URL, log: silentLogger });
    const schema = uniqueSchema('metrics');
    let closed = false;
    try {
      await migrate(db, { schema });
      const outbox = new Outbox({ schema });
      await db.transaction(async (tx) => {
        for (let n = 0; n < 3; n += 1) await outbox.add(tx, createMessage({ n }), { destination: 'memory:things' });
      });
      const relay = new OutboxRelay(db, new RecordingPublisher(), { schema, migrate: false, log: silentLogger });
      const app = createIntegration({ logger: silentLogger, routes: [from('memory:a', { id: 'a' }).to('memory:b')] });
      const metrics = createPrometheusMetrics(app, { defaultMetrics: false });
      metrics.watchOutbox(relay, 'orders');
      await new Promise((resolve) => setTimeout(resolve, 20));
      let samples = parse(await metrics.scrape());
      const outboxLabel = { outbox: 'orders' };
      expect(value(samples, 'interchange_outbox_up', outboxLabel)).toBe(1);
      expect(value(samples, 'interchange_outbox_pending_rows', outboxLabel)).toBe(3);
      expect(value(samples, 'interchange_outbox_parked_rows', outboxLabel)).toBe(0);
      expect(value(samples, 'interchange_outbox_in_flight_partitions', outboxLabel)).toBe(0);
      expect(value(samples, 'interchange_outbox_lag_seconds', outboxLabel)).toBeGreaterThan(0);
      await dropSchema(db, schema);
      await db.close();
      closed = true;
      samples = parse(await metrics.scrape());
      expect(value(samples, 'interchange_outbox_up', outboxLabel)).toBe(0);
      expect(value(samples, 'interchange_outbox_pending_rows', outboxLabel)).toBe(3);
    } finally {
      if (!closed) {
        await dropSchema(db, schema);
        await db.close();
      }
    }
  });
});
