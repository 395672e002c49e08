import { DeadLetterHeaders, toError, type Headers, type Message } from '../../src/core/index.ts';
import type { Integration } from '../../src/runtime/integration.ts';
import { ValidationErrorsHeader } from '../../src/schema/validation-header.ts';
import type { DeadLetterEntry, ReplayOutcome, ReplayRecord } from './dead-letter-store.ts';

/** Audit headers every replayed message carries. */
export const ReplayHeaders = Object.freeze({
  /** When it was replayed (epoch ms). */
  replayedAt: 'x-interchange-replayed-at',
  /** The console's id of the dead letter it was replayed from. */
  replayOf: 'x-interchange-replay-of',
  /** How many times this message has been replayed (1 the first time; a replay of a replay's dead letter counts on). */
  replays: 'x-interchange-replays',
  /** Who replayed it (`console`). */
  replayedBy: 'x-interchange-replayed-by',
});

/** The failure headers a replay takes off: the new execution writes its own if it fails again. */
const FAILURE_HEADERS: readonly string[] = [
  DeadLetterHeaders.code,
  DeadLetterHeaders.error,
  DeadLetterHeaders.route,
  DeadLetterHeaders.step,
  DeadLetterHeaders.declaredAt,
  DeadLetterHeaders.failedAt,
  DeadLetterHeaders.attempts,
  DeadLetterHeaders.reason,
  DeadLetterHeaders.deadLetterError,
  DeadLetterHeaders.originalSize,
  DeadLetterHeaders.sha256,
  DeadLetterHeaders.truncated,
  ValidationErrorsHeader,
];

/** An edited body the replay cannot use (not JSON where the original body was neither bytes nor text): the API answers 400. */
export class ReplayInputError extends Error {
  override readonly name = 'ReplayInputError';
}

export interface ReplayOptions {
  /** A new body, as text: UTF-8 bytes if the original body was bytes, the text if it was a string, else parsed as JSON. */
  readonly body?: string | undefined;
  /** Send to this endpoint URI instead of running the message through its route. */
  readonly endpoint?: string | undefined;
  /** How long to wait for the route's outcome (default 30 s); past it the result is `timeout` and the record is updated when the execution ends. */
  readonly timeoutMs?: number;
  /** Who replays it, for `x-interchange-replayed-by` (default `console`). */
  readonly by?: string;
}

export interface ReplayResult {
  readonly id: string;
  readonly outcome: ReplayOutcome;
  readonly error?: string;
}

/**
 * The message a replay sends: the dead letter's message without the failure headers, with the audit
 * headers (`ReplayHeaders`), and the edited body if one is given. Same message id: the replay is the
 * same message, tried again. Throws `ReplayInputError` for an edited body that must be JSON and is not.
 */
export function replayMessage(entry: DeadLetterEntry, { body, by = 'console' }: Pick<ReplayOptions, 'body' | 'by'> = {}, now: number = Date.now()): Message {
  const original = entry.message;
  const headers: Record<string, Headers[string]> = {};
  for (const name in original.headers) {
    if (!FAILURE_HEADERS.includes(name) && original.headers[name] !== undefined) headers[name] = original.headers[name];
  }
  const previous = Number(original.headers[ReplayHeaders.replays] ?? 0);
  headers[ReplayHeaders.replayedAt] = now;
  headers[ReplayHeaders.replayOf] = entry.id;
  headers[ReplayHeaders.replays] = (Number.isFinite(previous) && previous > 0 ? Math.floor(previous) : 0) + 1;
  headers[ReplayHeaders.replayedBy] = by;
  return { id: original.id, headers, body: body === undefined ? original.body : editedBody(original.body, body) };
}

/** The edited text as a body of the original's kind. */
export function editedBody(original: unknown, text: string): unknown {
  if (original instanceof Uint8Array) return Buffer.from(text, 'utf8');
  if (typeof original === 'string') return text;
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    throw new ReplayInputError(`the edited body is not JSON (the original body was ${original === null ? 'null' : typeof original}, sent as JSON): ${toError(error).message}`);
  }
}

/**
 * Replays one stored dead letter: into its route as if the route's source delivered it (resolving
 * with how that execution ended, or `timeout`), or, with `endpoint`, published there (`sent` once the
 * destination confirmed). Records the replay on the entry. Never rejects except with
 * `ReplayInputError` (checked before anything is sent): a route that is not started, an unknown route
 * or a refused publish give `failed` with the error.
 * @example await replayDeadLetter(integration, store.get(id)!, { body: '{"temperature":21}' })
 */
export async function replayDeadLetter(integration: Pick<Integration, 'route' | 'transports'>, entry: DeadLetterEntry, { body, endpoint, timeoutMs = 30_000, by }: ReplayOptions = {}): Promise<ReplayResult> {
  const message = replayMessage(entry, { body, ...(by === undefined ? {} : { by }) });
  const record: ReplayRecord = { at: Date.now(), outcome: 'timeout', target: endpoint ?? `route:${entry.route}` };
  entry.replays.push(record);
  let running: Promise<ReplayOutcome>;
  try {
    running = endpoint === undefined ? integration.route(entry.route).replay(message) : integration.transports.publish(endpoint, [message]).then(() => 'sent' as const);
  } catch (error) {
    running = Promise.reject(error);
  }
  const ended = running.then(
    (outcome) => {
      record.outcome = outcome;
      return outcome;
    },
    (error: unknown) => {
      record.outcome = 'failed';
      record.error = toError(error).message;
      return 'failed' as const;
    },
  );
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), timeoutMs);
  });
  const outcome = await Promise.race([ended, late]);
  clearTimeout(timer);
  return { id: entry.id, outcome, ...(record.error === undefined || outcome !== 'failed' ? {} : { error: record.error }) };
}
