import { relative } from 'node:path';
import { Container } from 'inversify';
import { createIntegration, type Integration, type RouteFailure } from '../../src/runtime/integration.ts';
import type { Logger } from '../../src/core/logger.ts';
import type { RunningConsole } from '../console/console-server.ts';
import { depthLine, isDepthReportingTransport, type Transport } from '../../src/core/index.ts';
import type { Command } from './command-line.ts';
import { LiveDisplay, type LiveOutput } from './live-display.ts';
import { liveLine } from './live-line.ts';
import { loadRouteFile, type StopHook } from './route-file.ts';
import { shutdownSignals } from './shutdown-signals.ts';
import { createPinoLogger } from '../observability/pino-logger.ts';
import { tracingObserver } from '../observability/tracing.ts';

export interface RunIo {
  readonly stdout: LiveOutput;
  readonly stderr: { write(text: string): unknown };
  /** Ends the process at once (a second signal); `process.exit` outside tests. */
  readonly exit: (code: number) => never;
}

/**
 * `interchange run <file>`: loads the route file, starts its integration, shows the live counters
 * until SIGINT/SIGTERM, then stops intake, drains in-flight messages (up to `drainTimeoutMs`), calls
 * the route file's `onStopped` and prints the final counts. A route whose source fails while running
 * (a fatal transport error) is reported on stderr and stops everything as a signal would.
 * Resolves with the exit code once stopped: 0 clean; 1 if a route failed to start (said on stderr,
 * naming it) or while running, if the drain deadline passed with messages unsettled (said on stderr
 * with how many went back to their source), or if `onStopped` threw. A second signal exits 1 at once.
 * Throws what loading, validating or `onStart` throws (the caller maps it to an exit code).
 */
export async function runCommand(command: Extract<Command, { name: 'run' }>, io: RunIo): Promise<number> {
  // first: a bad LOG_LEVEL fails (RangeError) before anything loads
  const logger = createPinoLogger();
  const loaded = await loadRouteFile(command.file);
  const container = new Container();
  container.load(...(loaded.modules ?? []));
  // Imported here, not at the top: the adapters it may load stay out of `interchange --help`.
  const { environmentModules } = await import('./environment-modules.ts');
  for (const { module, announcement } of await environmentModules(container, loaded.routes)) {
    container.load(module);
    io.stdout.write(`interchange: ${announcement}\n`);
  }
  // tracing through the OpenTelemetry API: a no-op until an SDK is registered (node --import ./tracing.mjs)
  const integration = createIntegration({ routes: loaded.routes, container, logger, observers: [tracingObserver()] });
  const consoleServer = command.http === undefined ? undefined : await serveConsole(integration, command.http, logger);
  if (consoleServer !== undefined) io.stdout.write(`interchange: console on ${consoleServer.url} (metrics, health, graph, dead letters)\n`);
  const signals = shutdownSignals((signal) => {
    io.stderr.write(`\n${signal} again: exiting without draining\n`);
    io.exit(1);
  });
  const startedAt = performance.now();
  const display = command.quiet ? undefined : new LiveDisplay(() => integration.metrics(), io.stdout, undefined, () => depthLines(integration.transports.all));
  // Transports need not hold the event loop open (memory channels do not): this does, until stopped.
  const keepAlive = setInterval(() => {}, 1 << 30);
  let stopHook: void | StopHook;
  try {
    await integration.start();
    const ids = integration.routes.map((route) => route.id);
    io.stdout.write(`interchange: ${ids.length} route${ids.length === 1 ? '' : 's'} running from ${relative(process.cwd(), command.file) || command.file} (${ids.join(', ')}); Ctrl-C to stop\n`);
    display?.start();
    stopHook = await loaded.onStart?.(integration);
  } catch (error) {
    display?.stop();
    clearInterval(keepAlive);
    signals.dispose();
    await integration.stop({ drainTimeoutMs: Math.min(command.drainTimeoutMs, 1000) });
    await consoleServer?.close();
    const failed = integration.routes.find((route) => route.failure === error);
    if (failed === undefined) throw error;
    io.stderr.write(`interchange: route '${failed.id}' failed to start: ${describe(error)}\n`);
    return 1;
  }

  let exitCode = 0;
  let onFailure: ((failure: RouteFailure) => void) | undefined;
  const routeFailed = new Promise<RouteFailure>((resolve) => {
    onFailure = resolve;
  });
  const failures = integration.failures$.subscribe((failure) => onFailure?.(failure));
  const failure = await Promise.race([signals.first.then(() => undefined), routeFailed]);
  failures.unsubscribe();
  display?.stop();
  if (failure !== undefined) {
    io.stderr.write(`interchange: route '${failure.routeId}' failed: ${describe(failure.error)}\n`);
    exitCode = 1;
  }
  io.stdout.write('stopping: draining in-flight messages…\n');
  await stopHook?.();
  await integration.stop({ drainTimeoutMs: command.drainTimeoutMs });
  // the console answers until the drain is over (ready turns 503 while routes stop)
  await consoleServer?.close();
  clearInterval(keepAlive);
  signals.dispose();
  const handedBack = integration.routes.filter((route) => route.metrics.handedBack > 0);
  if (handedBack.length > 0) {
    const total = handedBack.reduce((sum, route) => sum + route.metrics.handedBack, 0);
    const perRoute = handedBack.map((route) => `${route.id}: ${route.metrics.handedBack}`).join(', ');
    io.stderr.write(`interchange: drain deadline of ${command.drainTimeoutMs} ms passed: ${total} unsettled message${total === 1 ? '' : 's'} went back to the source for redelivery (${perRoute}); raise --drain-timeout to let them finish\n`);
    exitCode = 1;
  }
  try {
    await loaded.onStopped?.(integration);
  } catch (error) {
    io.stderr.write(`interchange: onStopped failed: ${error instanceof Error ? error.message : String(error)}\n`);
    exitCode = 1;
  }

  const elapsedSeconds = (performance.now() - startedAt) / 1000;
  const idWidth = Math.max(0, ...integration.routes.map((route) => route.id.length));
  io.stdout.write(`stopped after ${elapsedSeconds.toFixed(1)} s; final counts (msg/s averaged over the run):\n`);
  io.stdout.write(integration.routes.map((route) => `${liveLine(route.id, undefined, route.metrics, elapsedSeconds, { idWidth })}\n`).join(''));
  return exitCode;
}

/** The console with Prometheus metrics (imported only with --http: prom-client and the server stay unloaded otherwise). */
async function serveConsole(integration: Integration, address: { host: string; port: number }, logger: Logger): Promise<RunningConsole> {
  const [{ startConsole }, { createPrometheusMetrics }] = await Promise.all([import('../console/console-server.ts'), import('../observability/prometheus-metrics.ts')]);
  return startConsole(integration, { ...address, token: process.env.INTERCHANGE_CONSOLE_TOKEN || undefined, metrics: createPrometheusMetrics(integration), logger });
}

function describe(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}

/** One line per endpoint of every transport that reports its depth (a durable buffer's fill). */
function depthLines(transports: readonly Transport[]): string[] {
  return transports.filter(isDepthReportingTransport).flatMap((transport) => transport.depths().flatMap((depth) => (depth.transient === true ? [] : [depthLine(depth)])));
}
