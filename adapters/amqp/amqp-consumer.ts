import type { Channel, ChannelModel, ConsumeMessage } from 'amqplib';
import type { Subscriber } from 'rxjs';
import { backoffDelay, Settlement, toError, type Delivery, type Logger, type Message } from '../../src/core/index.ts';
import { decodeMessage } from './amqp-codec.ts';
import type { AmqpConnectionManager, ConnectionUser } from './amqp-connection.ts';
import type { AmqpDeclarer } from './amqp-declarer.ts';
import type { AmqpTarget } from './amqp-endpoint.ts';
import { AmqpAccessRefusedError, channelRefusalOf } from './amqp-errors.ts';
import type { AttemptTracker } from './attempt-tracker.ts';

/** One consumer channel. Deliveries remember theirs: an ack never goes to another channel. */
class ConsumerSession {
  live = true;
  consumerTag: string | undefined = undefined;
  constructor(
    readonly channel: Channel,
    readonly generation: number,
  ) {}
}

/**
 * One AMQP delivery and its settlement (a class, allocated per message). Ack and nack go to the
 * channel the message came on, and only while that channel lives: after a channel or connection
 * loss they are no-ops — the broker redelivers those messages, so acking their stale delivery tags
 * on a new channel (a 406 there) never happens.
 */
class AmqpDelivery extends Settlement {
  constructor(
    message: Message,
    private readonly raw: ConsumeMessage,
    private readonly session: ConsumerSession,
    private readonly consumer: AmqpConsumer,
  ) {
    super(message);
  }

  protected onAck(): void {
    this.consumer.ack(this.session, this.raw, this.message);
  }

  protected onNack(reason: Error): void {
    this.consumer.nack(this.session, this.raw, this.message, reason);
  }
}

export interface ConsumerSettings {
  readonly prefetch: number;
  readonly maxDeliveries: number;
  readonly initialDelayMs: number;
  readonly maxDelayMs: number;
  readonly log: Logger;
}

/**
 * One `consume` subscription: a channel with `prefetch` (basic.qos, per consumer) and manual acks,
 * re-opened on every reconnect and after channel errors (with backoff), re-subscribed after a
 * server-side cancel (amqplib hands `null`).
 *
 * Contract: at most `prefetch` deliveries unsettled per channel. `attempt` = `x-delivery-count` + 1
 * (quorum queues), else 2 when redelivered, raised by this process's own count of nacks. A nack
 * requeues while `attempt < maxDeliveries`, then rejects without requeue, so the broker moves the
 * message to the queue's dead-letter exchange (or drops it if it has none): never an endless loop.
 * A body that cannot be decoded is rejected the same way, at once. `stopIntake` cancels the consumer
 * (deliveries still arriving are requeued unseen); `dispose` closes the channel, which hands every
 * unsettled delivery back to the broker (redelivered with the redelivered flag).
 * A queue or exchange the user may not read, declare or bind (403 ACCESS_REFUSED) is not retried:
 * the refusal is logged once and the stream errors with `AmqpAccessRefusedError` (which resource,
 * which permission) — the route fails visibly instead of resubscribing forever.
 */
export class AmqpConsumer implements ConnectionUser {
  private session: ConsumerSession | undefined;
  private intake = true;
  private disposed = false;
  private failures = 0;
  private readonly attemptKey: string;

  constructor(
    private readonly target: AmqpTarget,
    private readonly subscriber: Subscriber<Delivery>,
    private readonly manager: AmqpConnectionManager,
    private readonly declarer: AmqpDeclarer,
    private readonly attempts: AttemptTracker,
    private readonly settings: ConsumerSettings,
  ) {
    this.attemptKey = `${target.kind}:${target.name}`;
  }

  async connected(model: ChannelModel, generation: number): Promise<void> {
    if (!this.intake || this.disposed) return;
    let channel: Channel | undefined;
    try {
      channel = await model.createChannel();
      const session = new ConsumerSession(channel, generation);
      channel.on('error', (error: unknown) => this.settings.log.warn('amqp: consumer channel error', { endpoint: this.target.uri, error: this.manager.redact(toError(error).message) }));
      channel.on('close', () => {
        session.live = false;
        if (this.session === session) this.session = undefined;
        this.retry(generation);
      });
      await channel.prefetch(this.settings.prefetch);
      const queue = await this.queueName(channel);
      this.session = session;
      await this.subscribe(session, queue);
      this.failures = 0;
    } catch (error) {
      const refusal = error instanceof AmqpAccessRefusedError ? error : channelRefusalOf(error, (text) => this.manager.redact(text));
      if (refusal !== undefined) {
        this.refuse(refusal);
        if (channel !== undefined) await channel.close().catch(() => undefined);
        return;
      }
      this.settings.log.warn('amqp: cannot start consuming; retrying', { endpoint: this.target.uri, error: this.manager.redact(toError(error).message) });
      if (channel !== undefined) await channel.close().catch(() => undefined); // its close handler schedules the retry
      else this.retry(generation);
    }
  }

  /** A permanent refusal: no more retries; the subscriber gets the typed error (the route fails). */
  private refuse(refusal: AmqpAccessRefusedError): void {
    if (!this.intake || this.disposed) return;
    this.intake = false;
    this.settings.log.error('amqp: the broker refused this consumer; not retrying', { endpoint: this.target.uri, code: refusal.code, error: refusal.message });
    this.subscriber.error(refusal);
  }

  lost(generation: number): void {
    if (this.session?.generation === generation) {
      this.session.live = false;
      this.session = undefined;
    }
  }

  /** Stops the intake: the broker is told to cancel; emitted deliveries can still be settled. */
  stopIntake(): void {
    this.intake = false;
    const session = this.session;
    if (session?.consumerTag !== undefined && session.live) session.channel.cancel(session.consumerTag).catch(() => undefined);
  }

  /** Stops for good and closes the channel: the broker requeues whatever is unsettled. */
  dispose(): void {
    this.stopIntake();
    this.disposed = true;
    const session = this.session;
    this.session = undefined;
    if (session !== undefined && session.live) {
      session.live = false;
      session.channel.close().catch(() => undefined);
    }
  }

  /** @internal */
  ack(session: ConsumerSession, raw: ConsumeMessage, message: Message): void {
    if (this.attempts.size > 0) this.attempts.forget(this.attemptKey, message.id);
    if (!session.live) return;
    try {
      session.channel.ack(raw);
    } catch {
      // the channel closed meanwhile: the broker redelivers
    }
  }

  /** @internal */
  nack(session: ConsumerSession, raw: ConsumeMessage, message: Message, reason: Error): void {
    if (!session.live) return;
    const attempt = message.headers.attempt ?? 1;
    const requeue = attempt < (this.target.maxDeliveries ?? this.settings.maxDeliveries);
    if (requeue) this.attempts.record(this.attemptKey, message.id, attempt);
    else {
      this.attempts.forget(this.attemptKey, message.id);
      this.settings.log.warn('amqp: delivery rejected to the dead-letter exchange', { endpoint: this.target.uri, id: message.id, attempt, reason: reason.message });
    }
    try {
      session.channel.nack(raw, false, requeue);
    } catch {
      // the channel closed meanwhile: the broker redelivers
    }
  }

  private async queueName(channel: Channel): Promise<string> {
    const target = this.target;
    if (target.kind === 'queue') {
      await this.declarer.ensureQueue(target.name);
      return target.name;
    }
    if (target.exchangeType !== undefined) await this.declarer.ensureExchange(target.name, target.exchangeType);
    const { queue } = await channel.assertQueue('', { exclusive: true, autoDelete: true, durable: false });
    await channel.bindQueue(queue, target.name, target.bindingKey ?? (target.exchangeType === 'topic' ? '#' : target.routingKey));
    return queue;
  }

  private async subscribe(session: ConsumerSession, queue: string): Promise<void> {
    const { consumerTag } = await session.channel.consume(queue, (raw) => this.onMessage(session, queue, raw), { noAck: false });
    session.consumerTag = consumerTag;
    if (!this.intake) session.channel.cancel(consumerTag).catch(() => undefined);
  }

  private onMessage(session: ConsumerSession, queue: string, raw: ConsumeMessage | null): void {
    if (raw === null) {
      // cancelled by the server (queue deleted, failover): start over on a fresh channel, which checks
      // (and, if allowed, declares) the queue again; closing this one hands back what it held
      this.settings.log.warn('amqp: consumer cancelled by the broker; resubscribing', { endpoint: this.target.uri });
      if (this.target.kind === 'queue') this.declarer.forget('queue', this.target.name);
      session.consumerTag = undefined;
      session.channel.close().catch(() => undefined);
      return;
    }
    if (!this.intake || !session.live) {
      try {
        session.channel.nack(raw, false, true);
      } catch {
        // closed: requeued by the broker anyway
      }
      return;
    }
    let message: Message;
    try {
      message = decodeMessage(raw, this.attemptOf(raw), `${queue}:${raw.fields.deliveryTag}`);
    } catch (error) {
      this.settings.log.error('amqp: undecodable message rejected to the dead-letter exchange', { endpoint: this.target.uri, error: toError(error).message });
      try {
        session.channel.nack(raw, false, false);
      } catch {
        // closed meanwhile: the broker redelivers it, and it is rejected again
      }
      return;
    }
    this.subscriber.next(new AmqpDelivery(message, raw, session, this));
  }

  private attemptOf(raw: ConsumeMessage): number {
    const count = raw.properties.headers?.['x-delivery-count'] as unknown;
    let attempt = typeof count === 'number' ? count + 1 : raw.fields.redelivered ? 2 : 1;
    if (raw.fields.redelivered && this.attempts.size > 0) {
      const seen = this.attempts.last(this.attemptKey, String(raw.properties.messageId));
      if (seen !== undefined && seen + 1 > attempt) attempt = seen + 1;
    }
    return attempt;
  }

  private retry(generation: number): void {
    if (!this.intake || this.disposed) return;
    setTimeout(() => {
      const live = this.manager.current;
      if (!this.intake || this.disposed || this.session !== undefined || live === undefined || live.generation !== generation) return;
      void this.connected(live.model, generation);
    }, backoffDelay(this.failures++, { initialMs: this.settings.initialDelayMs, maxMs: this.settings.maxDelayMs })).unref();
  }
}
