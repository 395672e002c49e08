import {
  InterchangeError,
  isPermanentFailure,
  isTemplate,
  resolveEndpointTemplate,
  stepSpec,
  TimeoutError,
  toError,
  withBody,
  type Message,
  type StepFactory,
  type StepSpec,
} from '../src/core/index.ts';
import { abortableStep, replyMessage, requestId, requestMessage, requestWithin } from './request-reply.ts';

/** One recipient's reply, as the aggregate function gets it. */
export interface GatheredReply<R> {
  /** The recipient's endpoint URI (as resolved for the message). */
  readonly recipient: string;
  /** The reply (its `correlationId` the message's own again, no `replyTo`). */
  readonly message: Message<R>;
}

/** What arrived for one message: the aggregate function's input. */
export interface Gathered<R> {
  /** The replies, in the order of the recipients. */
  readonly replies: readonly GatheredReply<R>[];
  /** Recipients that had not replied when the completion timeout fired. */
  readonly missing: readonly string[];
  /** Recipients whose request failed (a transport error, e.g. unroutable), with the error. */
  readonly failed: readonly { readonly recipient: string; readonly error: Error }[];
  /** Whether some recipient did not reply (`missing` or `failed` not empty). */
  readonly partial: boolean;
}

/** Recipients: a static list of endpoint URIs (`{name}` placeholders allowed) or one list per message. */
export type ScatterRecipients<T> = readonly string[] | ((message: Message<T>) => readonly string[]);

export interface ScatterGatherOptions<T, R, A> {
  /** Completion timeout (ms): when it fires, the replies so far are aggregated and passed on, flagged partial. */
  readonly timeoutMs: number;
  /** Builds the gathered body from the replies (and the request message). A throw fails the message (the route's error handler). */
  readonly aggregate: (gathered: Gathered<R>, message: Message<T>) => A;
  /** Messages gathering at once (default 16); each sends to all its recipients at once. Later messages wait their turn. */
  readonly concurrency?: number;
}

/** Header set to `true` on a gathered message some recipient did not reply to. */
export const SCATTER_GATHER_PARTIAL = 'scatterGatherPartial';
/** Header listing the recipients that did not reply in time, a JSON array of URIs (only on a partial result). */
export const SCATTER_GATHER_MISSING = 'scatterGatherMissing';
/** Header listing the recipients whose request failed, a JSON array of URIs (only when some did). */
export const SCATTER_GATHER_FAILED = 'scatterGatherFailed';

/**
 * No recipient replied: every request failed or timed out. Permanent only when every failure was
 * (the same message would fail the same way); otherwise the route's error handler may retry it.
 */
export class ScatterGatherError extends InterchangeError {
  override readonly name = 'ScatterGatherError';
  constructor(
    readonly failures: ReadonlyMap<string, Error>,
    messageId: string,
  ) {
    const first = failures.values().next().value as Error | undefined;
    super('SCATTER_GATHER_FAILED', `no reply from any of ${failures.size} recipient(s) to message ${messageId}${first === undefined ? '' : `: ${first.message}`}`, {
      cause: first,
      permanent: failures.size > 0 && [...failures.values()].every(isPermanentFailure),
    });
  }
}

/**
 * Scatter-gather (the EIP book's, Spring Integration's `scatterGather`): sends a request to every
 * recipient at once (request-reply through each recipient's transport), gathers the replies until
 * all have answered or the completion timeout `timeoutMs` fires, and passes on one message whose
 * body is `aggregate(gathered, message)` (same id and headers as the request message).
 *
 * - Partial result: a recipient that did not answer in time is `missing`; one whose request failed is
 *   `failed`. The message still goes on, with header `scatterGatherPartial: true` and the lists in
 *   `scatterGatherMissing` / `scatterGatherFailed` (JSON arrays of URIs); outstanding requests are aborted.
 * - No reply at all (every recipient failed or timed out): `ScatterGatherError` naming each
 *   recipient's error, to the route's error handler (retried unless every error was permanent).
 * - No recipient (the function returned none): `aggregate` gets no replies, not partial — like a
 *   recipient list without recipients, the message goes on.
 * - Each recipient gets its own request (`correlationId` `<message id>/<index>:<random>`), so replies never mix.
 * - Settlement: the source is acked once the gathered message has settled downstream; an `aggregate`
 *   that throws fails the message (not the route).
 * - Stop: requests still waiting are aborted and the message is left unsettled, for the source to redeliver.
 * @example from('memory:quotes').step('scatterGather', scatterGather(['amqp:queue/vendor-a', 'amqp:queue/vendor-b'], { timeoutMs: 2_000, aggregate: ({ replies }) => replies.map((r) => r.message.body) }))
 */
export function scatterGather<T, R, A>(recipients: ScatterRecipients<T>, { timeoutMs, aggregate, concurrency = 16 }: ScatterGatherOptions<T, R, A>): StepFactory<T, A> {
  if (!(timeoutMs > 0)) throw new InterchangeError('SCATTER_GATHER_OPTIONS', `scatter-gather: timeoutMs must be a positive number, got ${String(timeoutMs)}`);
  const recipientsOf = typeof recipients === 'function' ? recipients : () => recipients;
  return (context) =>
    abortableStep<T, A>(
      context,
      (stopping) => async (delivery, emit) => {
        const message = delivery.message;
        const uris = recipientsOf(message).map((uri) => (isTemplate(uri) ? resolveEndpointTemplate(uri, message) : uri));
        const outcomes = await Promise.all(
          uris.map((uri, index) =>
            requestWithin(context, uri, requestMessage(message, requestId(message.id, `/${index}`)), timeoutMs, stopping).then(
              (reply) => ({ uri, reply: replyMessage(reply as Message<R>, message) }),
              (error: unknown) => ({ uri, error: toError(error) }),
            ),
          ),
        );
        if (stopping.aborted) throw new InterchangeError('REQUEST_ABORTED', 'scatter-gather aborted: the step is stopping');
        const replies: GatheredReply<R>[] = [];
        const missing: string[] = [];
        const failed: { recipient: string; error: Error }[] = [];
        for (const outcome of outcomes) {
          if ('reply' in outcome) replies.push({ recipient: outcome.uri, message: outcome.reply });
          else if (outcome.error instanceof TimeoutError) missing.push(outcome.uri);
          else failed.push({ recipient: outcome.uri, error: outcome.error });
        }
        if (uris.length > 0 && replies.length === 0) throw new ScatterGatherError(new Map(outcomes.map((outcome) => [outcome.uri, 'error' in outcome ? outcome.error : new Error('no reply')])), message.id);
        const partial = missing.length > 0 || failed.length > 0;
        if (missing.length > 0) context.count('missing', missing.length);
        if (failed.length > 0) context.count('failed', failed.length);
        if (partial) context.count('partial');
        const body = aggregate({ replies, missing, failed, partial }, message);
        const headers = partial
          ? {
              [SCATTER_GATHER_PARTIAL]: true,
              ...(missing.length > 0 ? { [SCATTER_GATHER_MISSING]: JSON.stringify(missing) } : {}),
              ...(failed.length > 0 ? { [SCATTER_GATHER_FAILED]: JSON.stringify(failed.map((f) => f.recipient)) } : {}),
            }
          : undefined;
        emit(delivery.with(withBody(message, body, headers)));
      },
      concurrency,
    );
}

/**
 * `.scatterGather(recipients, { timeoutMs, aggregate, concurrency })`: scatter-gather's DSL entry
 * (kind `scatterGather`; sends, to the static non-template recipients).
 */
export function scatterGatherStep<T, R, A>(recipients: ScatterRecipients<T>, options: ScatterGatherOptions<T, R, A>): StepSpec<T, A> {
  const declared = typeof recipients === 'function' ? [] : recipients;
  return stepSpec('scatterGather', scatterGather(recipients, options), {
    sends: true,
    sendsTo: declared.filter((uri) => !isTemplate(uri)),
    destinations: [...declared],
  });
}
