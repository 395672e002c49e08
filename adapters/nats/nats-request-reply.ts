import type { NatsConnection } from '@nats-io/transport-node';
import { InterchangeError, TimeoutError, withHeaders, type Message } from '../../src/core/index.ts';
import { decodeMessage, type EncodedMessage } from './nats-codec.ts';

/**
 * NATS's native request-reply: publishes the request with a reply subject of the connection's own
 * (one muxed `_INBOX.<nuid>.*` subscription, a token per request) and resolves with the first reply —
 * a NATS inbox is unique per request, so no correlation id is needed on the wire; the reply gets the
 * request's `correlationId` (else its id) as header `correlationId`. Replies are decoded as from a
 * trusted peer (the service the route chose to call): id and typed headers.
 *
 * Rejects with `TimeoutError` after `timeoutMs`; `InterchangeError` `NATS_NO_RESPONDERS` at once when
 * nobody subscribes to the subject (the server says so); `REQUEST_ABORTED` when `signal` aborts.
 */
export async function natsRequest(nc: NatsConnection, subject: string, message: Message, encoded: EncodedMessage, timeoutMs: number, signal: AbortSignal | undefined, uri: string): Promise<Message> {
  if (signal?.aborted === true) throw new InterchangeError('REQUEST_ABORTED', `request to '${uri}' aborted before it was sent`);
  const sent = nc.request(subject, encoded.payload, { timeout: timeoutMs, ...(encoded.headers === undefined ? {} : { headers: encoded.headers }) });
  let onAbort: (() => void) | undefined;
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(new InterchangeError('REQUEST_ABORTED', `request to '${uri}' aborted`));
    signal?.addEventListener('abort', onAbort, { once: true });
  });
  try {
    const reply = await Promise.race([sent, aborted]);
    const decoded = decodeMessage(reply.data, reply.headers, { subject: reply.subject, attempt: 1 }, { headers: 'all' });
    return withHeaders(decoded, { correlationId: message.headers.correlationId ?? message.id, natsSubject: undefined });
  } catch (error) {
    if (error instanceof InterchangeError) throw error;
    const name = (error as Error).name;
    const text = (error as Error).message;
    if (name === 'TimeoutError' || /timeout/i.test(text)) throw new TimeoutError(`no reply to request ${message.id} sent to '${uri}' within ${timeoutMs} ms`);
    if (name === 'NoRespondersError' || /no responders/i.test(text)) throw new InterchangeError('NATS_NO_RESPONDERS', `no responder subscribes to '${subject}' (request ${message.id})`, { cause: error });
    throw new InterchangeError('NATS_REQUEST', `request to '${uri}' failed: ${text}`, { cause: error });
  } finally {
    if (onAbort !== undefined) signal?.removeEventListener('abort', onAbort);
    sent.catch(() => undefined);
  }
}
