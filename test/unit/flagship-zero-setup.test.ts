import { expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { loadRouteFile } from '../../facade/cli/route-file.ts';
import { simulate, type SimulatorReport } from '../../examples/device-simulator/simulator.ts';
import type { DeviceSummary } from '../../examples/mqtt-to-amqp/telemetry.ts';
import type { BackendReadingV1 } from '../../schemas/types.generated.ts';
import { startFlow, uniquePrefix } from '../integration/flagship-support.ts';

const until = async (check: () => boolean, describe: () => string, timeoutMs = 20_000): Promise<void> => {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out: ${describe()}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
};

it('runs with nothing installed: embedded MQTT broker, in-memory RabbitMQ stand-in, simulated devices', { timeout: 40_000 }, async () => {
  const prefix = uniquePrefix('zero');
  const running = await startFlow(prefix, {}, { summaryIdleMs: 300 });
  const { flow, names, app } = running;
  const standIn = flow.standIn;
  expect(standIn).toBeDefined();
  expect(running.mqtt.url).toMatch(/^mqtt:\/\/127\.0\.0\.1:\d+$/);
  expect(flow.announce(running.mqtt)).toEqual([expect.stringContaining('EMBEDDED MQTT broker'), expect.stringContaining('IN-MEMORY STAND-IN replaces RabbitMQ')]);
  const topicPrefix = names.telemetryTopic.split('/devices/')[0] as string;
  let report: SimulatorReport;
  try {
    report = await simulate({ url: running.mqtt.url, devices: 20, rate: 0, count: 2_000, invalid: 0.05, topicPrefix, seed: 7 });
    const valid = report.valid;
    const telemetry = app.route('telemetry').metrics;
    // inputs folded into a summary are acked by the aggregator: settled, not `completed` (the summaries are)
    await until(() => telemetry.received >= 2_000 && telemetry.inFlight === 0, () => JSON.stringify(app.metrics()));
    // the last groups of each device complete after 300 ms idle
    await until(() => app.route('telemetry').metrics.inFlight === 0 && (standIn?.queue(names.summariesQueue) ?? []).reduce((sum, m) => sum + (m.body as DeviceSummary).count, 0) === valid, () => JSON.stringify(standIn?.queueDepths()));
  } finally {
    await running.stop();
  }
  const queue = (name: string) => standIn?.queue(name) ?? [];
  const invalid = report.invalid.badJson + report.invalid.schema + report.invalid.mismatch;
  expect(report.sent).toBe(2_000);
  expect(invalid).toBeGreaterThan(50);
  expect(queue(names.invalidQueue)).toHaveLength(invalid);
  expect(queue(names.readingsQueue).length + queue(names.alertsQueue).length).toBe(report.valid);
  expect(queue(names.alertsQueue)).toHaveLength(report.alerts);
  expect(queue(names.alertsQueue).every((m) => (m.body as BackendReadingV1).temperatureC >= 50)).toBe(true);
  expect(queue(names.readingsQueue).every((m) => (m.body as BackendReadingV1).temperatureC < 50)).toBe(true);
  for (const dead of queue(names.invalidQueue)) {
    expect(Buffer.isBuffer(dead.body)).toBe(true);
    expect(String(dead.headers['x-mqtt-topic'])).toMatch(new RegExp(`^${topicPrefix}/devices/dev-\\d{4}/telemetry$`));
    expect(['PAYLOAD_UNPARSEABLE', 'SCHEMA_INVALID', 'DEVICE_MISMATCH']).toContain(dead.headers['x-interchange-error-code']);
  }
  const codes = queue(names.invalidQueue).map((m) => m.headers['x-interchange-error-code']);
  expect(codes.filter((code) => code === 'DEVICE_MISMATCH')).toHaveLength(report.invalid.mismatch);
  expect(codes.filter((code) => code === 'PAYLOAD_UNPARSEABLE')).toHaveLength(report.invalid.badJson);
  expect(codes.filter((code) => code === 'SCHEMA_INVALID')).toHaveLength(report.invalid.schema);
  // 20 devices: groups of 10 by size, the rest by the idle timeout; every valid reading in exactly one
  const summaries = queue(names.summariesQueue).map((m) => m.body as DeviceSummary);
  expect(summaries.reduce((sum, s) => sum + s.count, 0)).toBe(report.valid);
  expect(new Set(summaries.map((s) => s.deviceId)).size).toBe(20);
  expect(app.metrics().telemetry?.sent).toMatchObject({ readings: queue(names.readingsQueue).length, alerts: report.alerts });
});

it('the route file `npm start` runs exports the flagship routes and its modules', async () => {
  const saved = { MQTT_URL: process.env.MQTT_URL, AMQP_URL: process.env.AMQP_URL };
  delete process.env.MQTT_URL;
  delete process.env.AMQP_URL;
  try {
    const loaded = await loadRouteFile('examples/mqtt-to-amqp/route.ts');
    expect(loaded.routes.map((route) => route.definition().id)).toEqual(['telemetry']);
    expect(loaded.routes[0]?.definition().source).toBe('mqtt:devices/+deviceId/telemetry?qos=1&payload=raw&headers=trace');
    expect(loaded.modules).toHaveLength(3);
    expect(loaded.onStart).toBeTypeOf('function');
  } finally {
    Object.assign(process.env, Object.fromEntries(Object.entries(saved).filter(([, value]) => value !== undefined)));
  }
});

it('with the stand-in, the summaries open at stop are completed and sent (completeSummariesOnStop); with a durable store they would stay open', { timeout: 40_000 }, async () => {
  const open = async (completeSummariesOnStop: boolean): Promise<readonly DeviceSummary[]> => {
    const prefix = uniquePrefix('stop');
    const running = await startFlow(prefix, {}, { summaryIdleMs: 60_000, completeSummariesOnStop });
    const topicPrefix = running.names.telemetryTopic.split('/devices/')[0] as string;
    await simulate({ url: running.mqtt.url, devices: 1, rate: 0, count: 4, invalid: 0, topicPrefix, seed: 3 });
    const telemetry = running.app.route('telemetry').metrics;
    await until(() => telemetry.received >= 4 && telemetry.inFlight === 0, () => JSON.stringify(telemetry));
    await running.stop();
    return (running.flow.standIn?.queue(running.names.summariesQueue) ?? []).map((m) => m.body as DeviceSummary);
  };
  const completed = await open(true);
  expect(completed.map((summary) => summary.count)).toEqual([4]);
  expect(await open(false)).toEqual([]);
});

it('`npm start` as a user runs it — the CLI, no MQTT_URL, no AMQP_URL, no FLOW_PREFIX: the simulated devices reach the bridge and Ctrl-C drains and stops', { timeout: 60_000 }, async () => {
  const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !['MQTT_URL', 'AMQP_URL', 'FLOW_PREFIX', 'DATABASE_URL', 'SIMULATE'].includes(name)));
  const cli = spawn(process.execPath, ['--conditions=interchange-source', 'bin/interchange.js', 'run', 'examples/mqtt-to-amqp/route.ts', '--quiet'], { env: { ...env, LOG_LEVEL: 'warn' }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  cli.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  cli.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => cli.on('exit', (code) => resolve(code)));
  await until(() => stdout.includes('simulating 20 devices'), () => stdout + stderr);
  await new Promise((resolve) => setTimeout(resolve, 3_000)); // ~600 readings at 200/s
  cli.kill('SIGINT');
  const code = await Promise.race([exited, new Promise<'hung'>((resolve) => setTimeout(() => resolve('hung'), 30_000))]);
  if (code === 'hung') cli.kill('SIGKILL');
  expect(code, stdout + stderr).toBe(0);
  const received = Number(/telemetry\s+in (\d+)/.exec(stdout)?.[1] ?? 0);
  const sent = Number(/simulator sent (\d+)/.exec(stdout)?.[1] ?? -1);
  expect(received, stdout).toBeGreaterThan(200);
  expect(received, stdout).toBe(sent);
});
