import { InterchangeError, NotConnectedError, TimeoutError, toError } from './errors.ts';
import type { Message } from './message.ts';
import type { RequestOptions } from './transport.ts';

/** A request waiting for its reply (settles once: the reply, the timeout, the abort or close). */
interface Waiting {
  readonly resolve: (reply: Message) => void;
  readonly reject: (error: Error) => void;
}

/**
 * The requests of a transport's request-reply waiting for their replies, by correlation id — what a
 * transport that correlates replies itself (memory, MQTT 5) needs around its own send and receive.
 *
 * Contract of `wait`: rejects at once with `NotConnectedError` once `close`d, an `InterchangeError`
 * 'REQUEST_ABORTED' when `signal` is already aborted, 'REQUEST_IN_FLIGHT' when a request with the same
 * correlation id is waiting; else registers the request, calls `send`, and settles once — with the
 * reply passed to `reply`, `TimeoutError` after `timeoutMs`, 'REQUEST_ABORTED' when `signal` aborts,
 * `send`'s rejection, or `NotConnectedError` on `close`.
 * @example const reply = await this.pending.wait(uri, message.id, correlationId, options, () => this.publish(…));
 */
export class PendingReplies {
  private readonly waiting = new Map<string, Waiting>();
  private closed = false;

  constructor(private readonly transport: string) {}

  wait(uri: string, messageId: string, correlationId: string, { timeoutMs, signal }: RequestOptions, send: () => Promise<void>): Promise<Message> {
    if (this.closed) return Promise.reject(new NotConnectedError(`${this.transport} request-reply is closed; cannot send a request to '${uri}'`));
    if (signal?.aborted === true) return Promise.reject(new InterchangeError('REQUEST_ABORTED', `request to '${uri}' aborted before it was sent`));
    if (this.waiting.has(correlationId)) return Promise.reject(new InterchangeError('REQUEST_IN_FLIGHT', `a request with correlation id '${correlationId}' is already waiting for its reply`));
    return new Promise<Message>((resolve, reject) => {
      const finish = (): boolean => {
        if (this.waiting.get(correlationId) !== request) return false;
        this.waiting.delete(correlationId);
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        return true;
      };
      const request: Waiting = {
        resolve: (reply) => {
          if (finish()) resolve(reply);
        },
        reject: (error) => {
          if (finish()) reject(error);
        },
      };
      const timer = setTimeout(() => request.reject(new TimeoutError(`no reply to request ${messageId} sent to '${uri}' within ${timeoutMs} ms`)), timeoutMs);
      const onAbort = (): void => request.reject(new InterchangeError('REQUEST_ABORTED', `request to '${uri}' aborted`));
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiting.set(correlationId, request);
      let sending: Promise<void>;
      try {
        sending = send();
      } catch (thrown) {
        sending = Promise.reject(toError(thrown)); // a send that throws instead of rejecting: the same failure
      }
      sending.catch((error: unknown) => request.reject(toError(error)));
    });
  }

  /** Settles the request waiting for `correlationId` with its reply; a late or unknown reply is ignored (false). */
  reply(correlationId: string, reply: Message): boolean {
    const request = this.waiting.get(correlationId);
    request?.resolve(reply);
    return request !== undefined;
  }

  /** Takes requests again after `close` (a transport connected again). */
  open(): void {
    this.closed = false;
  }

  /** Rejects every waiting request with `NotConnectedError` and refuses new ones (until `open`). */
  close(): void {
    this.closed = true;
    for (const request of [...this.waiting.values()]) request.reject(new NotConnectedError(`${this.transport} transport closed before the reply arrived`));
  }
}
