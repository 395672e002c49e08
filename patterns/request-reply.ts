import { randomUUID } from 'node:crypto';
import { Observable } from 'rxjs';
import {
  deliveryStep,
  InterchangeError,
  isTemplate,
  resolveEndpointTemplate,
  stepSpec,
  TimeoutError,
  withHeaders,
  type DeliveryHandler,
  type Message,
  type Step,
  type StepContext,
  type StepFactory,
  type StepSpec,
} from '../src/core/index.ts';
import { validate } from './validate.ts';

export interface RequestReplyOptions {
  /** How long to wait for the reply (ms); then the message fails with `TimeoutError` (retryable, per the route's error handler). */
  readonly timeoutMs: number;
  /** The reply's contract (`subject@version`): the reply is validated against it; an invalid one fails with `SchemaValidationError` (never retried). */
  readonly reply?: string;
  /** Requests waiting for their reply at once (default 16); later messages wait their turn. */
  readonly concurrency?: number;
}

/** Why a request was given up without an answer: the route is stopping (its step was unsubscribed). */
export class RequestAbortedError extends InterchangeError {
  override readonly name = 'RequestAbortedError';
  constructor(message: string) {
    super('REQUEST_ABORTED', message);
  }
}

/**
 * One request through `context.request`, bounded by `timeoutMs` on the step's scheduler (virtual time
 * in tests; the transport also gets `timeoutMs`): resolves with the reply, rejects with `TimeoutError`
 * after the timeout, `RequestAbortedError` once `signal` aborts, or the transport's error. Either way
 * the transport's wait is aborted through the signal it was given.
 * @example const reply = await requestWithin(context, 'amqp:queue/prices', message, 2_000, stopping.signal)
 */
export function requestWithin(context: StepContext, uri: string, message: Message, timeoutMs: number, signal: AbortSignal): Promise<Message> {
  return new Promise<Message>((resolve, reject) => {
    if (signal.aborted) {
      reject(new RequestAbortedError(`request to '${uri}' aborted: the step is stopping`));
      return;
    }
    const own = new AbortController();
    let done = false;
    const finish = (): boolean => {
      if (done) return false;
      done = true;
      timer.unsubscribe();
      signal.removeEventListener('abort', onAbort);
      return true;
    };
    const onAbort = (): void => {
      if (!finish()) return;
      own.abort();
      reject(new RequestAbortedError(`request to '${uri}' aborted: the step is stopping`));
    };
    const timer = context.scheduler.schedule(() => {
      if (!finish()) return;
      own.abort();
      reject(new TimeoutError(`no reply to request ${message.id} sent to '${uri}' within ${timeoutMs} ms`));
    }, timeoutMs);
    signal.addEventListener('abort', onAbort, { once: true });
    let pending: Promise<Message>;
    try {
      pending = context.request(uri, message, { timeoutMs, signal: own.signal });
    } catch (error) {
      pending = Promise.reject(error);
    }
    pending.then(
      (reply) => {
        if (finish()) resolve(reply);
      },
      (error: unknown) => {
        if (finish()) reject(error);
      },
    );
  });
}

/**
 * A correlation id of its own for one request attempt: `<message id>:<random>`. Never the message id
 * alone — a multicast's branches, a retry, and two sources reusing an id would wait on one id (the
 * second refused with REQUEST_IN_FLIGHT) or take each other's (late) replies.
 */
export function requestId(messageId: string, suffix = ''): string {
  return `${messageId}${suffix}:${randomUUID()}`;
}

/**
 * The request as sent: `correlationId` set to `requestId` (see `requestId`: one per attempt), so
 * concurrent requests never share a correlation id — split parts and other messages of one
 * conversation share the conversation's — and a stale `replyTo` is dropped.
 */
export function requestMessage<T>(message: Message<T>, requestId: string): Message<T> {
  return withHeaders(message, { correlationId: requestId, replyTo: undefined, attempt: undefined });
}

/** The reply as it goes on: the conversation's `correlationId` back (the request's own one removed), no `replyTo`. */
export function replyMessage<R>(reply: Message<R>, request: Message<unknown>): Message<R> {
  return withHeaders(reply, { correlationId: request.headers.correlationId, replyTo: undefined, attempt: undefined });
}

/**
 * Runs `handler` as a `deliveryStep` with an abort signal per subscription, aborted when the step is
 * unsubscribed (the route stops after its drain): a handler whose request was aborted leaves its
 * delivery unsettled, so the source redelivers it — it is neither failed nor dead-lettered.
 * @example abortableStep(context, (stopping) => async (delivery, emit) => { … }, 16)
 */
export function abortableStep<I, O>(context: StepContext, handler: (stopping: AbortSignal) => DeliveryHandler<I, O>, concurrency: number): Step<I, O> {
  return (source) =>
    new Observable((subscriber) => {
      const stopping = new AbortController();
      const inner = deliveryStep<I, O>(
        context,
        async (delivery, emit, attempt) => {
          try {
            await handler(stopping.signal)(delivery, emit, attempt);
          } catch (error) {
            if (stopping.signal.aborted) return; // stopping: left unsettled, handed back by the transport
            throw error;
          }
        },
        { concurrency },
      )(source).subscribe({ next: (delivery) => subscriber.next(delivery), error: (error: unknown) => subscriber.error(error), complete: () => subscriber.complete() });
      return () => {
        inner.unsubscribe();
        stopping.abort();
      };
    });
}

/**
 * Request-reply (Camel's InOut `to`, Spring Integration's outbound gateway, the EIP book's Request-Reply):
 * sends each message to `uri` with a reply address of the transport's own (AMQP direct reply-to, an
 * MQTT 5 response topic, a private memory channel) and passes the reply on in its place.
 *
 * - `uri` may hold `{name}` placeholders, filled from headers, then body fields (as `.to`'s).
 * - The request carries a `correlationId` of its own (`<message id>:<random>`, one per attempt: see
 *   `requestId`); the responder replies
 *   to its `replyTo` keeping that `correlationId` (e.g. `.to('amqp:queue/{replyTo}')`, `.to('memory:{replyTo}')`).
 *   The reply passed on has the message's own `correlationId` back and no `replyTo`.
 *   A responder's `.to('…:{replyTo}')` publishes wherever the request says, with the responder's
 *   credentials: consume requests only where trusted peers publish (an MQTT device's Response Topic
 *   becomes `replyTo` in the default `standard` mode), or check `replyTo` first (e.g. a `.filter` on
 *   the reply prefixes `interchange/replies/`, `interchange.replies.`, `amq.rabbitmq.reply-to`).
 * - Concurrency: at most `concurrency` (default 16) requests wait at once; later messages queue in order.
 * - Failure: no reply within `timeoutMs` fails the message with `TimeoutError`; a transport error
 *   (unroutable, not connected…) fails it as is; the route's error handler retries or dead-letters it.
 *   With `reply`, the reply is validated first (`SchemaValidationError`, never retried).
 * - Settlement: the source is acked only when the reply passed on has settled downstream (same settlement).
 * - Stop: when the route stops, requests still waiting are aborted (`signal`) and their messages are
 *   left unsettled, so the source redelivers them; late replies are dropped by the transport.
 * @example from('memory:orders').step('request', requestReply('amqp:queue/prices', { timeoutMs: 2_000 }))
 */
export function requestReply<T, R = unknown>(uri: string, { timeoutMs, concurrency = 16 }: Omit<RequestReplyOptions, 'reply'>): StepFactory<T, R> {
  if (!(timeoutMs > 0)) throw new InterchangeError('REQUEST_OPTIONS', `request-reply to '${uri}': timeoutMs must be a positive number, got ${String(timeoutMs)}`);
  const templated = isTemplate(uri);
  return (context) =>
    abortableStep<T, R>(
      context,
      (stopping) => async (delivery, emit) => {
        const target = templated ? resolveEndpointTemplate(uri, delivery.message) : uri;
        const request = requestMessage(delivery.message, requestId(delivery.message.id));
        const reply = await requestWithin(context, target, request, timeoutMs, stopping);
        emit(delivery.with(replyMessage(reply as Message<R>, delivery.message)));
      },
      concurrency,
    );
}

/**
 * `.request(uri, { timeoutMs, reply, concurrency })`: request-reply's DSL entry (kind `request`; sends
 * to `uri` when it is a static URI). With `reply`, an inbound `validate` of the reply runs in the same
 * step, and the graph labels the edge after the step with that contract.
 */
export function requestReplyStep<T, R = unknown>(uri: string, options: RequestReplyOptions): StepSpec<T, R> {
  const { reply } = options;
  const send = requestReply<T, R>(uri, options);
  const sendsTo = isTemplate(uri) ? [] : [uri];
  if (reply === undefined) return stepSpec('request', send, { sends: true, sendsTo, destinations: [uri] });
  const check = validate<R>(reply);
  return stepSpec<T, R>(
    'request',
    (context) => {
      const requested = send(context);
      const validated = check(context);
      return (source) => validated(requested(source));
    },
    { sends: true, sendsTo, destinations: [uri], contract: reply },
  );
}
