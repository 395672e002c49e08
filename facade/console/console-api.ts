import type { IncomingMessage } from 'node:http';
import { toError, type Logger } from '../../src/core/index.ts';
import type { Integration } from '../../src/runtime/integration.ts';
import type { RouteStatus } from '../../src/runtime/route-runtime.ts';
import type { DeadLetterStore } from './dead-letter-store.ts';
import { detailOf, summaryOf, type DeadLetterDetail, type DeadLetterSummary } from './dead-letter-view.ts';
import { HttpError, integerParameter, readJson } from './http-utils.ts';
import { editedBody, replayDeadLetter, ReplayInputError, type ReplayResult } from './replay.ts';

/** What the API handlers work on. */
export interface ConsoleContext {
  readonly integration: Integration;
  readonly deadLetters: DeadLetterStore;
  readonly log: Logger;
  readonly replayTimeoutMs: number;
  readonly bodyLimitBytes: number;
}

/** The most dead letters one replay request may name. */
const MAX_REPLAY_IDS = 1_000;
const DEFAULT_LIST_LIMIT = 100;

/** `GET /api/dead-letters?route=&limit=`: the most recent first. */
export function listDeadLetters(context: ConsoleContext, url: URL): { deadLetters: DeadLetterSummary[] } {
  const route = url.searchParams.get('route') ?? undefined;
  const limit = integerParameter(url, 'limit', DEFAULT_LIST_LIMIT);
  return { deadLetters: context.deadLetters.list({ route: route === '' ? undefined : route, limit }).map(summaryOf) };
}

/** `GET /api/dead-letters/:id`. */
export function getDeadLetter(context: ConsoleContext, id: string): DeadLetterDetail {
  const entry = context.deadLetters.get(id);
  if (entry === undefined) throw new HttpError(404, `no dead letter '${id}' (the console keeps the most recent ones per route, in memory)`);
  return detailOf(entry);
}

interface ReplayRequest {
  readonly ids: readonly string[];
  readonly body?: string;
  readonly endpoint?: string;
}

/**
 * `POST /api/dead-letters/replay` `{ ids, body?, endpoint? }`: replays each, one after the other in
 * the order given. An edited `body` goes with one id only, and must be JSON where the original body
 * was neither bytes nor text (400 before anything is sent).
 */
export async function replay(context: ConsoleContext, request: IncomingMessage): Promise<{ results: ReplayResult[] }> {
  const { ids, body, endpoint } = replayRequest(await readJson(request, context.bodyLimitBytes));
  const entries = ids.map((id) => ({ id, entry: context.deadLetters.get(id) }));
  if (body !== undefined) {
    const only = entries[0]?.entry;
    if (only === undefined) throw new HttpError(404, `no dead letter '${ids[0] ?? ''}' to replay with an edited body`);
    try {
      editedBody(only.body, body);
    } catch (error) {
      if (error instanceof ReplayInputError) throw new HttpError(400, error.message);
      throw error;
    }
  }
  const results: ReplayResult[] = [];
  for (const { id, entry } of entries) {
    if (entry === undefined) {
      results.push({ id, outcome: 'failed', error: 'no dead letter with this id (forgotten, or never kept)' });
      continue;
    }
    const result = await replayDeadLetter(context.integration, entry, { body, endpoint, timeoutMs: context.replayTimeoutMs });
    context.log.info('console: dead letter replayed', { id, route: entry.route, messageId: entry.messageId, target: endpoint ?? `route:${entry.route}`, edited: body !== undefined, outcome: result.outcome, ...(result.error === undefined ? {} : { error: result.error }) });
    results.push(result);
  }
  return { results };
}

/** `POST /api/routes/:id/stop` and `/start`: the control bus. */
export async function controlRoute(context: ConsoleContext, id: string, action: 'stop' | 'start'): Promise<{ id: string; status: RouteStatus }> {
  const route = context.integration.routes.find((candidate) => candidate.id === id);
  if (route === undefined) throw new HttpError(404, `no route '${id}' (have: ${context.integration.routes.map((candidate) => candidate.id).join(', ')})`);
  context.log.info(`console: ${action} route`, { route: id, status: route.status });
  if (action === 'stop') {
    await context.integration.stopRoute(id);
  } else {
    try {
      context.integration.startRoute(id);
    } catch (error) {
      throw new HttpError(409, `route '${id}' did not start: ${toError(error).message}`);
    }
  }
  return { id, status: route.status };
}

function replayRequest(value: unknown): ReplayRequest {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new HttpError(400, 'expected { ids: string[], body?: string, endpoint?: string }');
  const { ids, body, endpoint } = value as Record<string, unknown>;
  if (!Array.isArray(ids) || ids.length === 0 || !ids.every((id) => typeof id === 'string')) throw new HttpError(400, "'ids' must be a non-empty array of dead-letter ids");
  if (ids.length > MAX_REPLAY_IDS) throw new HttpError(400, `at most ${MAX_REPLAY_IDS} ids per replay`);
  if (body !== undefined && typeof body !== 'string') throw new HttpError(400, "'body' must be a string (the edited body as text)");
  if (body !== undefined && ids.length !== 1) throw new HttpError(400, 'an edited body replays one dead letter: give one id');
  if (endpoint !== undefined && (typeof endpoint !== 'string' || endpoint.trim() === '')) throw new HttpError(400, "'endpoint' must be an endpoint URI");
  return { ids: ids as string[], ...(body === undefined ? {} : { body }), ...(endpoint === undefined ? {} : { endpoint: endpoint as string }) };
}
