import type { Msg, NatsConnection, Subscription } from '@nats-io/transport-node';
import type { Subscriber } from 'rxjs';
import { Settlement, toError, type Delivery, type Logger, type Message } from '../../src/core/index.ts';
import { decodeMessage, type InboundPolicy } from './nats-codec.ts';
import { NatsMessageTooLargeError } from './nats-errors.ts';

export interface CoreSubscriptionSettings {
  readonly subject: string;
  readonly queue?: string;
  /** At most this many emitted deliveries unsettled; later messages wait in a local queue. */
  readonly prefetch: number;
  /** Messages waiting beyond `prefetch` at most; more are dropped (counted in `dropped`, logged). */
  readonly maxWaiting: number;
  readonly maxMessageBytes: number;
  readonly inbound: InboundPolicy;
  readonly log: Logger;
}

/**
 * One consumer of a core NATS subject (`nats:subject/…`): at-most-once. The server pushes every
 * matching message (or, with a queue group, one member's share) with no acknowledgement and no flow
 * control, so this subscription holds at most `prefetch` emitted deliveries unsettled and queues the
 * rest locally, up to `maxWaiting`; beyond that a message is dropped (as the server would drop it for
 * a slow consumer) and counted. Settling does nothing on the wire: `ack` frees a window slot (the next
 * waiting message is emitted on a fresh microtask, not inside the `ack`); `nack` frees it too and the
 * message is gone (core NATS has no redelivery). Messages queued or unsettled when
 * the subscription ends are lost. A message over `maxMessageBytes` is emitted with `intakeError`.
 */
export class CoreSubscription {
  private subscription: Subscription | undefined;
  private readonly waiting: { readonly message: Message; readonly intakeError: Error | undefined }[] = [];
  private unsettled = 0;
  private intake = true;
  private closed = false;
  /** Messages dropped because the local queue was full. */
  dropped = 0;

  constructor(
    private readonly settings: CoreSubscriptionSettings,
    private readonly subscriber: Subscriber<Delivery>,
  ) {}

  start(nc: NatsConnection): void {
    const { subject, queue } = this.settings;
    this.subscription = nc.subscribe(subject, { ...(queue === undefined ? {} : { queue }), callback: (error, msg) => (error === null ? this.onMessage(msg) : this.onError(error)) });
  }

  /** Stops taking messages (the route is stopping): unsubscribes; queued messages are dropped. */
  stopIntake(): void {
    this.intake = false;
    this.waiting.length = 0;
    this.subscription?.unsubscribe();
  }

  close(): Promise<void> {
    this.closed = true;
    this.stopIntake();
    return Promise.resolve();
  }

  private onMessage(msg: Msg): void {
    if (!this.intake) return;
    let message: Message;
    let intakeError: Error | undefined;
    const size = msg.data.length + (msg.headers === undefined ? 0 : msg.headers.toString().length);
    try {
      message = decodeMessage(size > this.settings.maxMessageBytes ? new Uint8Array(0) : msg.data, msg.headers, { subject: msg.subject, attempt: 1 }, this.settings.inbound);
      if (msg.reply !== undefined && msg.reply !== '' && (this.settings.inbound.headers === 'standard' || this.settings.inbound.headers === 'all')) {
        message = { ...message, headers: { ...message.headers, replyTo: msg.reply } };
      }
    } catch (error) {
      this.settings.log.warn('nats: undecodable message dropped', { subject: msg.subject, error: toError(error).message });
      return;
    }
    if (size > this.settings.maxMessageBytes) {
      intakeError = new NatsMessageTooLargeError(`message on '${msg.subject.slice(0, 200)}' is ${size} bytes, over maxMessageBytes ${this.settings.maxMessageBytes}`);
    }
    if (this.unsettled < this.settings.prefetch) {
      this.emit(message, intakeError);
      return;
    }
    if (this.waiting.length >= this.settings.maxWaiting) {
      this.dropped += 1;
      if (this.dropped === 1 || this.dropped % 1_000 === 0) this.settings.log.warn('nats core subscription: local queue full, message dropped (at-most-once)', { subject: this.settings.subject, dropped: this.dropped });
      return;
    }
    this.waiting.push({ message, intakeError });
  }

  private emit(message: Message, intakeError?: Error): void {
    this.unsettled += 1;
    this.subscriber.next(new CoreDelivery(message, this, intakeError));
  }

  /**
   * A delivery of this subscription settled: the next waiting message takes its slot at once (a
   * message arriving meanwhile queues behind it) and is emitted on a fresh microtask — never inside
   * the settling `ack`/`nack`, so the consumer's settlement code is not re-entered. Dropped if the
   * intake stops before that microtask runs.
   */
  settled(): void {
    this.unsettled -= 1;
    if (this.closed || !this.intake) return;
    const next = this.waiting.shift();
    if (next === undefined) return;
    this.unsettled += 1;
    queueMicrotask(() => {
      if (this.closed || !this.intake) return;
      this.subscriber.next(new CoreDelivery(next.message, this, next.intakeError));
    });
  }

  private onError(error: Error): void {
    if (this.closed) return;
    this.settings.log.error('nats core subscription failed', { subject: this.settings.subject, error: error.message });
    this.subscriber.error(error);
  }
}

class CoreDelivery extends Settlement {
  constructor(
    message: Message,
    private readonly owner: CoreSubscription,
    readonly intakeError: Error | undefined,
  ) {
    super(message);
  }

  protected onAck(): void {
    this.owner.settled();
  }

  protected onNack(): void {
    this.owner.settled();
  }
}
