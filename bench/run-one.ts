// Runs one benchmark variant in this process and prints its result as JSON (peak RSS is per process).
import { forLoop, interchangeRoute, plainRx, readings, type RunResult } from './core-route.ts';

const [variant = '', countText = '1000000', repeatText = '3'] = process.argv.slice(2);
const bodies = readings(Number(countText));
const runs: RunResult[] = [];

/**
 * Issue 16: the core route with Prometheus metrics and the tracing observer — `interchange-observed`
 * with no OpenTelemetry SDK (the observer then attaches no probe), `interchange-traced` with a real
 * SDK registered globally whose span processor drops every span (what recording costs, no export).
 * Imported here, not at the top: the other variants load none of it.
 */
async function observedRoute(variant: 'interchange-observed' | 'interchange-traced'): Promise<RunResult> {
  const { createPrometheusMetrics, tracingObserver } = await import('../facade/observability/index.ts');
  if (variant === 'interchange-traced') {
    const { trace } = await import('@opentelemetry/api');
    const { BasicTracerProvider } = await import('@opentelemetry/sdk-trace-base');
    const dropAll = { onStart: (): void => {}, onEnd: (): void => {}, forceFlush: (): Promise<void> => Promise.resolve(), shutdown: (): Promise<void> => Promise.resolve() };
    trace.disable(); // a second run in this process: a fresh provider (setGlobalTracerProvider refuses to replace one)
    trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [dropAll] }));
  }
  return interchangeRoute(bodies, {
    observers: [tracingObserver()],
    observe: (app) => createPrometheusMetrics(app),
    name: variant === 'interchange-traced' ? 'Interchange route + metrics + tracing (SDK, spans dropped)' : 'Interchange route + metrics + tracing API (no SDK)',
  });
}
for (let i = 0; i < Number(repeatText); i += 1) {
  if (variant === 'for-loop') runs.push(forLoop(bodies));
  else if (variant === 'rxjs') runs.push(plainRx(bodies));
  else if (variant === 'interchange') runs.push(await interchangeRoute(bodies));
  else if (variant === 'interchange-validate') runs.push(await interchangeRoute(bodies, { validate: true }));
  else if (variant === 'interchange-with-creation') runs.push(await interchangeRoute(bodies, { createMessages: 'timed' }));
  else if (variant === 'interchange-observed' || variant === 'interchange-traced') runs.push(await observedRoute(variant));
  else throw new Error(`unknown variant '${variant}'`);
}
const best = runs.reduce((a, b) => (b.perSecond > a.perSecond ? b : a));
process.stdout.write(`${JSON.stringify({ ...best, runs: runs.map((r) => Math.round(r.perSecond)), cpuRuns: runs.map((r) => Number(r.cpuMicrosPerMessage.toFixed(3))), peakRssMb: Math.round(process.resourceUsage().maxRSS / 1024) })}\n`);
