import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { silentLogger, toError, type Logger } from '../../src/core/index.ts';
import type { Integration } from '../../src/runtime/integration.ts';
import { healthOf, type HealthOptions } from '../observability/health.ts';
import { controlRoute, getDeadLetter, listDeadLetters, replay, type ConsoleContext } from './console-api.ts';
import { authorize, checkBinding } from './console-auth.ts';
import { DeadLetterStore } from './dead-letter-store.ts';
import { HttpError, sendBody, sendError, sendJson } from './http-utils.ts';
import { integrationGraph } from './integration-graph.ts';
import { dagreBundlePath, serveFile, serveStatic } from './static-files.ts';

/** A Prometheus registry as the console serves it at `/metrics`. */
export interface MetricsSource {
  readonly contentType: string;
  scrape(): Promise<string>;
}

export interface ConsoleOptions {
  /** Port to listen on (default 0: any free one; `url` and `port` say which). */
  readonly port?: number;
  /** Address to listen on (default `127.0.0.1`). Any non-loopback address needs `token`. */
  readonly host?: string;
  /**
   * The write token (at least 16 characters): replay and stop/start need `Authorization: Bearer
   * <token>`, and with a token every API read needs it too (see docs/console.md). Without one, writes
   * are refused and the console only answers loopback clients.
   */
  readonly token?: string;
  /** Served at `/metrics` (503 without it). */
  readonly metrics?: MetricsSource;
  /** The page's files (default: `static/` beside this module). */
  readonly staticDir?: string;
  /** The dead-letter list (default: a new `DeadLetterStore`); registered with the integration once. */
  readonly deadLetters?: DeadLetterStore;
  /** Where the console writes its audit lines (replays, stops, starts) and request failures (default: nowhere). */
  readonly logger?: Logger;
  /** How long a replay waits for its route's outcome (default 30 s). */
  readonly replayTimeoutMs?: number;
  /** Largest JSON request body (default 1 MiB). */
  readonly bodyLimitBytes?: number;
  /** Readiness thresholds (buffers' high-water mark…). */
  readonly health?: HealthOptions;
}

export interface RunningConsole {
  /** `http://127.0.0.1:<port>/` */
  readonly url: string;
  readonly port: number;
  readonly deadLetters: DeadLetterStore;
  /** Stops listening and closes open connections. The dead-letter store stays registered. */
  close(): Promise<void>;
}

/** Stores already observing an integration: one store is registered once, however often a console starts. */
const registered = new WeakMap<Integration, WeakSet<DeadLetterStore>>();

/**
 * Starts the console's HTTP server (node:http): `/metrics`, `/health/live`, `/health/ready`, `/graph`,
 * the dead-letter API with replay, the route control bus, and the web page. See docs/console.md.
 *
 * Start it BEFORE `integration.start()`: its dead-letter store sees a route from that route's next
 * start. Throws `RangeError` for a non-loopback `host` without a token or a token under 16 characters;
 * rejects with the listen error (port in use…).
 * @example
 * const console = await startConsole(integration, { port: 8080, token: process.env.INTERCHANGE_CONSOLE_TOKEN });
 * await integration.start();
 */
export async function startConsole(
  integration: Integration,
  { port = 0, host = '127.0.0.1', token, metrics, staticDir, deadLetters = new DeadLetterStore(), logger = silentLogger, replayTimeoutMs = 30_000, bodyLimitBytes = 1024 * 1024, health = {} }: ConsoleOptions = {},
): Promise<RunningConsole> {
  checkBinding(host, token);
  const stores = registered.get(integration) ?? new WeakSet<DeadLetterStore>();
  registered.set(integration, stores);
  if (!stores.has(deadLetters)) {
    integration.observe(deadLetters);
    stores.add(deadLetters);
    const running = integration.routes.filter((route) => route.status === 'started').map((route) => route.id);
    if (running.length > 0) logger.warn('console started after its routes: their dead letters are listed from their next start', { routes: running });
  }
  const root = staticDir ?? fileURLToPath(new URL('./static/', import.meta.url));
  const context: ConsoleContext = { integration, deadLetters, log: logger, replayTimeoutMs, bodyLimitBytes };
  let closed = false;
  const healthOptions: HealthOptions = { ...health, stopped: () => closed || health.stopped?.() === true };

  const handle = async (request: IncomingMessage, response: ServerResponse): Promise<void> => {
    const url = new URL(request.url ?? '/', 'http://console.invalid');
    const path = url.pathname;
    const method = request.method ?? 'GET';
    const isPage = path === '/' || path === '/index.html' || path.startsWith('/static/');
    const isProbe = path === '/metrics' || path.startsWith('/health/');
    const write = method === 'POST';
    if (method !== 'GET' && method !== 'POST') throw new HttpError(405, `${method} is not served`, { Allow: 'GET, POST' });
    authorize(request, { token, write, open: isProbe || isPage });
    const post = (): void => {
      if (!write) throw new HttpError(405, `${path} takes POST`, { Allow: 'POST' });
    };
    const get = (): void => {
      if (write) throw new HttpError(405, `${path} takes GET`, { Allow: 'GET' });
    };

    if (path === '/metrics') {
      get();
      if (metrics === undefined) return sendBody(response, 503, 'no metrics: the console was started without a metrics registry\n', 'text/plain; charset=utf-8', { 'Cache-Control': 'no-store' });
      return sendBody(response, 200, await metrics.scrape(), metrics.contentType, { 'Cache-Control': 'no-store' });
    }
    if (path === '/health/live') {
      get();
      const { live } = healthOf(integration, healthOptions);
      return sendJson(response, live.status === 'up' ? 200 : 503, live);
    }
    if (path === '/health/ready') {
      get();
      const { ready } = healthOf(integration, healthOptions);
      return sendJson(response, ready.status === 'ready' ? 200 : 503, ready);
    }
    if (path === '/graph') {
      get();
      return sendJson(response, 200, integrationGraph(integration));
    }
    if (path === '/api/dead-letters') {
      get();
      return sendJson(response, 200, listDeadLetters(context, url));
    }
    if (path === '/api/dead-letters/replay') {
      post();
      return sendJson(response, 200, await replay(context, request));
    }
    const deadLetter = /^\/api\/dead-letters\/([^/]+)$/.exec(path);
    if (deadLetter !== null) {
      get();
      return sendJson(response, 200, getDeadLetter(context, decode(deadLetter[1] ?? '')));
    }
    const control = /^\/api\/routes\/(.+)\/(stop|start)$/.exec(path);
    if (control !== null) {
      post();
      return sendJson(response, 200, await controlRoute(context, decode(control[1] ?? ''), control[2] === 'stop' ? 'stop' : 'start'));
    }
    if (isPage) {
      get();
      if (path === '/static/dagre.min.js') return serveFile(response, dagreBundlePath(), 'the dagre layout bundle is missing: npm install @dagrejs/dagre');
      return serveStatic(response, root, path === '/' || path === '/index.html' ? 'index.html' : decode(path.slice('/static/'.length)));
    }
    throw new HttpError(404, `nothing at ${path}`);
  };

  const server = createServer((request, response) => {
    handle(request, response).catch((thrown: unknown) => {
      if (response.headersSent) return void response.destroy();
      const path = (request.url ?? '/').split('?')[0] ?? '/';
      const error = thrown instanceof HttpError ? thrown : new HttpError(500, toError(thrown).message);
      if (!(thrown instanceof HttpError)) logger.error('console: request failed', { method: request.method, path, error: thrown });
      if (path === '/' || path.startsWith('/static/')) return sendBody(response, error.status, `${error.message}\n`, 'text/plain; charset=utf-8', error.headers);
      sendError(response, error);
    });
  });
  server.on('clientError', (_error, socket) => socket.destroy());
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const bound = (server.address() as AddressInfo).port;
  const shownHost = host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
  logger.info('console listening', { url: `http://${shownHost}:${bound}/`, writes: token === undefined ? 'refused (no token)' : 'with the token' });
  return {
    url: `http://${shownHost}:${bound}/`,
    port: bound,
    deadLetters,
    close: () =>
      new Promise<void>((resolve, reject) => {
        closed = true;
        server.close((error) => (error === undefined ? resolve() : reject(error)));
        server.closeAllConnections();
      }),
  };
}

/** A path segment, percent-decoded; 400 for a malformed one. */
function decode(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw new HttpError(400, `malformed path segment '${segment}'`);
  }
}
