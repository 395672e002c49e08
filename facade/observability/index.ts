/**
 * `interchange-eip/observability`: see a running integration — Prometheus metrics, OpenTelemetry
 * traces, health, structured logs, and the console (the live integration graph, dead letters and
 * their replay, a control bus). `interchange run --http :PORT` wires all of it; embedding:
 * @example
 * const app = createIntegration({ routes, logger: createPinoLogger(), observers: [tracingObserver()] });
 * const console = await startConsole(app, { port: 9090, metrics: createPrometheusMetrics(app) });
 * await app.start();
 */
export { createPinoLogger, type PinoLogger, type PinoLoggerOptions, type LogDestination } from './pino-logger.ts';
export { createPrometheusMetrics, type PrometheusMetrics, type PrometheusMetricsOptions, type OutboxBacklogSource } from './prometheus-metrics.ts';
export { tracingObserver, activeTraceHeaders, type TracingOptions } from './tracing.ts';
export { parseTraceparent, formatTraceparent, isValidTracestate, type TraceParent, type TraceHeaders } from './trace-context.ts';
export { healthOf, type Health, type HealthOptions, type HealthSource, type RouteCheck, type TransportCheck, type BufferCheck } from './health.ts';
export { startConsole, type ConsoleOptions, type RunningConsole, type MetricsSource } from '../console/console-server.ts';
export { integrationGraph, type IntegrationGraph, type GraphNode, type GraphEdge, type GraphRoute, type EndpointNode, type StepNode } from '../console/integration-graph.ts';
export { DeadLetterStore, type DeadLetterEntry, type ReplayOutcome } from '../console/dead-letter-store.ts';
export { ReplayHeaders } from '../console/replay.ts';
export { RouteObserver, type RouteProbe, type ObservedRoute, type ExecutionOutcome, type GaveUp, type PublishObservation } from '../../src/runtime/route-observer.ts';
