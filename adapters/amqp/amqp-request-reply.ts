import type { ChannelModel, ConfirmChannel, ConsumeMessage } from 'amqplib';
import { InterchangeError, NotConnectedError, TimeoutError, toError, type Logger, type Message } from '../../src/core/index.ts';
import { decodeMessage, encodeMessage } from './amqp-codec.ts';
import type { AmqpConnectionManager, ConnectionUser } from './amqp-connection.ts';
import type { AmqpTarget } from './amqp-endpoint.ts';
import { AmqpUnencodableError, PublishRejectedError, UnroutableError } from './amqp-errors.ts';

/** RabbitMQ's direct reply-to pseudo-queue: replies come back on the channel that sent the request. */
export const DIRECT_REPLY_TO = 'amq.rabbitmq.reply-to';

interface PendingRequest {
  readonly resolve: (reply: Message) => void;
  readonly reject: (error: Error) => void;
  readonly timer: NodeJS.Timeout;
}

/**
 * Request-reply over direct reply-to: one confirm channel (opened on first use, per connection)
 * consumes `amq.rabbitmq.reply-to` without acks and sends the requests, so replies need no queue.
 *
 * Contract: `request` resolves with the first reply whose correlationId matches; rejects with
 * `TimeoutError` when none comes within the timeout, `UnroutableError` when no queue takes the
 * request, `NotConnectedError` when the channel is lost before the reply (a reply addressed to a
 * dead channel cannot arrive), `AmqpUnencodableError` when the request cannot be written as AMQP
 * (nothing sent), or an `InterchangeError` 'REQUEST_IN_FLIGHT' when a request with the same
 * correlation id is already waiting. The responder publishes its reply to
 * `amqp:queue/<replyTo header>` (e.g. `.to('amqp:queue/{replyTo}')`), keeping the correlationId.
 */
export class AmqpRequester implements ConnectionUser {
  private channel: Promise<ConfirmChannel> | undefined;
  private readonly pending = new Map<string, PendingRequest>();

  constructor(
    private readonly manager: AmqpConnectionManager,
    private readonly log: Logger,
    private readonly maxMessageBytes?: number,
  ) {}

  async connected(): Promise<void> {
    // opened lazily on the first request
  }

  lost(): void {
    this.channel = undefined;
    this.failAll(new NotConnectedError('connection lost before the reply arrived'));
  }

  /**
   * When `signal` aborts, rejects at once with an `InterchangeError` 'REQUEST_ABORTED' and forgets the
   * request (a later reply is dropped; the same correlation id may be sent again at once).
   */
  async request(target: AmqpTarget, message: Message, timeoutMs: number, signal?: AbortSignal): Promise<Message> {
    const correlationId = message.headers.correlationId ?? message.id;
    const aborted = (): InterchangeError => new InterchangeError('REQUEST_ABORTED', `request ${message.id} to '${target.uri}' aborted`);
    if (signal?.aborted === true) throw aborted();
    if (this.pending.has(correlationId)) throw new InterchangeError('REQUEST_IN_FLIGHT', `a request with correlation id '${correlationId}' is already waiting for its reply`);
    const encoded = encodeMessage(message, { persistent: false, mandatory: true, maxMessageBytes: this.maxMessageBytes, brokerHeaders: target.brokerHeaders });
    const channel = await this.open();
    if (isAborted(signal)) throw aborted(); // aborted while the channel opened
    encoded.properties.replyTo = DIRECT_REPLY_TO;
    encoded.properties.correlationId = correlationId;
    return new Promise<Message>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(correlationId);
        reject(new TimeoutError(`no reply to request ${message.id} sent to '${target.uri}' within ${timeoutMs} ms`));
      }, timeoutMs);
      const onAbort = (): void => this.settle(correlationId, aborted());
      signal?.addEventListener('abort', onAbort, { once: true });
      this.pending.set(correlationId, {
        resolve: (reply) => {
          signal?.removeEventListener('abort', onAbort);
          resolve(reply);
        },
        reject: (error) => {
          signal?.removeEventListener('abort', onAbort);
          reject(error);
        },
        timer,
      });
      const confirmed = (error: unknown): void => {
        if (error !== null && error !== undefined) this.settle(correlationId, new PublishRejectedError(target.exchange, target.routingKey));
      };
      try {
        channel.publish(target.exchange, target.routingKey, encoded.content, encoded.properties, confirmed);
      } catch (error) {
        if (error instanceof Error && error.name === 'IllegalOperationError') {
          this.settle(correlationId, new NotConnectedError(`cannot send request to '${target.uri}'`, { cause: error }));
          return;
        }
        // amqplib refused the message itself (encodeMessage should have caught it); nothing was sent.
        // Its ConfirmChannel pushed our confirm callback before encoding: take it back, or its
        // callbacks would answer the wrong requests from now on.
        const theirs = (channel as unknown as { unconfirmed?: unknown }).unconfirmed;
        if (Array.isArray(theirs) && theirs[theirs.length - 1] === confirmed) theirs.pop();
        else void channel.close().catch(() => undefined);
        this.settle(correlationId, new AmqpUnencodableError(message.id, 'properties', `were refused by amqplib: ${toError(error).message}`, { cause: error }));
      }
    });
  }

  close(): void {
    this.failAll(new NotConnectedError('transport closed before the reply arrived'));
    const channel = this.channel;
    this.channel = undefined;
    channel?.then((open) => open.close()).catch(() => undefined);
  }

  private open(): Promise<ConfirmChannel> {
    if (this.channel !== undefined) return this.channel;
    const live = this.manager.current;
    if (live === undefined) return Promise.reject(new NotConnectedError(`not connected to ${this.manager.redactedUrl}`));
    const opening = this.create(live.model);
    this.channel = opening;
    opening.catch(() => {
      if (this.channel === opening) this.channel = undefined;
    });
    return opening;
  }

  private async create(model: ChannelModel): Promise<ConfirmChannel> {
    const channel = await model.createConfirmChannel();
    channel.on('error', (error: unknown) => this.log.warn('amqp: request-reply channel error', { error: this.manager.redact(toError(error).message) }));
    channel.on('close', () => {
      this.channel = undefined;
      this.failAll(new NotConnectedError('request-reply channel closed before the reply arrived'));
    });
    channel.on('return', (returned: ConsumeMessage) => {
      const id = returned.properties.correlationId as unknown;
      if (typeof id === 'string') this.settle(id, new UnroutableError(returned.fields.exchange, returned.fields.routingKey, (returned.fields as unknown as { replyText: string }).replyText));
    });
    await channel.consume(DIRECT_REPLY_TO, (raw) => this.onReply(raw), { noAck: true });
    return channel;
  }

  private onReply(raw: ConsumeMessage | null): void {
    if (raw === null) return;
    const id = raw.properties.correlationId as unknown;
    if (typeof id !== 'string') return;
    const waiting = this.pending.get(id);
    if (waiting === undefined) return; // late reply after a timeout
    try {
      const reply = decodeMessage(raw, 1, id);
      this.pending.delete(id);
      clearTimeout(waiting.timer);
      waiting.resolve(reply);
    } catch (error) {
      this.settle(id, toError(error));
    }
  }

  private settle(id: string, error: Error): void {
    const waiting = this.pending.get(id);
    if (waiting === undefined) return;
    this.pending.delete(id);
    clearTimeout(waiting.timer);
    waiting.reject(error);
  }

  private failAll(error: Error): void {
    for (const id of [...this.pending.keys()]) this.settle(id, error);
  }
}

/** Read through a call, so a check after an `await` is not narrowed by one made before it. */
function isAborted(signal: AbortSignal | undefined): boolean {
  return signal?.aborted === true;
}
