import type { Consumer, ConsumerMessages, JsMsg } from '@nats-io/jetstream';
import type { Subscriber } from 'rxjs';
import { backoffDelay, derivedMessageId, redeliveryDecision, Settlement, toError, type BackoffOptions, type Delivery, type Logger, type Message } from '../../src/core/index.ts';
import { decodeMessage, type InboundPolicy } from './nats-codec.ts';
import { NatsMessageTooLargeError } from './nats-errors.ts';

export interface JetStreamSubscriptionSettings {
  readonly stream: string;
  readonly durable: string;
  readonly prefetch: number;
  readonly maxDeliveries: number;
  readonly redelivery: BackoffOptions;
  readonly maxMessageBytes: number;
  /** The consumer's `ack_wait` when its info does not tell it (the adapter's `ackWaitMs`). */
  readonly ackWaitMs: number;
  readonly inbound: InboundPolicy;
  /** Publishes a dead letter to the dead-letter stream; resolves on its stream acknowledgement. */
  readonly deadLetter: (message: Message, reason: Error, subject: string) => Promise<void>;
  readonly log: Logger;
}

/**
 * One consumer of a JetStream durable pull consumer (`nats:jetstream/<stream>/<subject>`): at-least-once.
 *
 * Contract:
 * - Pulls with at most `prefetch` messages requested; the consumer's `max_ack_pending` (set to the
 *   first consumer's prefetch when the adapter creates it) bounds the unacknowledged messages of all
 *   instances of the durable together.
 * - `attempt` is the server's delivery count (set when > 1): a nack, an `ack_wait` expiry, a handed-back
 *   delivery and a crash all count.
 * - `ack` acknowledges the message (`+ACK`, not waited for: a lost ack means a redelivery, never a loss).
 *   `nack` below `maxDeliveries` naks it with the delay `backoffDelay(attempt - 1, redelivery)`; at
 *   `maxDeliveries` (or for a permanent reason, at once) the message is published to the dead-letter
 *   subject and, once that stream acknowledged it, terminated (`+TERM`); if that publish fails it is
 *   nakked instead (kept).
 * - A delivery the route holds is kept from redelivery: every `ack_wait / 3` (the consumer's own
 *   `ack_wait`, from its info), each delivery held for over `ack_wait / 3` gets `msg.working()`
 *   (`+WPI`: its `ack_wait` restarts, not counted as a delivery) — as Redis Streams and pgqueue renew
 *   their leases — until it is settled or the subscription closes. So a slow route step (a retry with
 *   a long backoff, a deep backlog) never gets a second copy of a message it is still processing.
 * - Aborting the intake stops pulling (held deliveries still get `working()` until closed);
 *   unsubscribing also naks every delivery still unsettled, without delay (handed back: the next
 *   consumer gets it with `attempt` + 1; settling it later does nothing).
 * - A message over `maxMessageBytes` is emitted with `intakeError` (its body empty).
 */
export class JetStreamSubscription {
  private messages: ConsumerMessages | undefined;
  private readonly unsettled = new Set<JetStreamDelivery>();
  private intake = true;
  private closed = false;
  private stopped: Promise<void> | undefined;
  private heartbeat: ReturnType<typeof setInterval> | undefined;

  constructor(
    private readonly settings: JetStreamSubscriptionSettings,
    private readonly subscriber: Subscriber<Delivery>,
  ) {}

  async start(consumer: Consumer): Promise<void> {
    if (!this.intake) return;
    // the consumer's own ack_wait (its cached info: no round trip): one created elsewhere may differ
    const ackWaitNanos = await consumer.info(true).then(
      (info) => info.config.ack_wait ?? 0,
      () => 0,
    );
    const ackWaitMs = ackWaitNanos > 0 ? ackWaitNanos / 1_000_000 : this.settings.ackWaitMs;
    const messages = await consumer.consume({ max_messages: this.settings.prefetch, callback: (msg) => this.onMessage(msg) });
    this.messages = messages;
    if (!this.intake) {
      await messages.close();
      return;
    }
    this.heartbeat = setInterval(() => this.keepHeld(ackWaitMs / 3), Math.max(50, Math.floor(ackWaitMs / 3)));
    this.heartbeat.unref();
    void this.watch(messages);
  }

  /** `working()` on each delivery held for over `heldMs`: the server restarts its `ack_wait`. */
  private keepHeld(heldMs: number): void {
    const old = Date.now() - heldMs;
    for (const delivery of this.unsettled) if (delivery.receivedAt < old) delivery.msg.working();
  }

  /** Stops pulling: no new deliveries; emitted ones can still be settled. Resolves once the pull has ended. */
  stopIntake(): Promise<void> {
    this.intake = false;
    const messages = this.messages;
    this.messages = undefined;
    this.stopped ??= messages === undefined ? Promise.resolve() : messages.close().then(
      () => undefined,
      () => undefined,
    );
    return this.stopped;
  }

  /**
   * Stops pulling and hands back every unsettled delivery: settled at once (later calls do nothing),
   * nakked without delay once the pull has ended — so the server cannot give them back to this
   * consumer's last pull request, which would count one more delivery for nothing.
   */
  async close(): Promise<void> {
    const stopped = this.stopIntake();
    this.closed = true;
    clearInterval(this.heartbeat);
    const handedBack = [...this.unsettled].filter((delivery) => delivery.handBack());
    this.unsettled.clear();
    await stopped;
    for (const delivery of handedBack) delivery.msg.nak();
  }

  private onMessage(msg: JsMsg): void {
    if (!this.intake) {
      msg.nak(); // arrived after the intake stopped: never emitted, given back at once
      return;
    }
    const { settings } = this;
    const size = msg.data.length + (msg.headers === undefined ? 0 : msg.headers.toString().length);
    const tooLarge = size > settings.maxMessageBytes;
    let message: Message;
    try {
      message = decodeMessage(
        tooLarge ? new Uint8Array(0) : msg.data,
        msg.headers,
        { subject: msg.subject, stream: settings.stream, sequence: msg.seq, attempt: msg.info.deliveryCount, fallbackId: () => derivedMessageId([settings.stream, String(msg.seq)]) },
        settings.inbound,
      );
    } catch (error) {
      settings.log.warn('nats: undecodable JetStream message terminated', { stream: settings.stream, sequence: msg.seq, error: toError(error).message });
      msg.term();
      return;
    }
    const intakeError = tooLarge ? new NatsMessageTooLargeError(`message ${msg.seq} of stream '${settings.stream}' is ${size} bytes, over maxMessageBytes ${settings.maxMessageBytes}`) : undefined;
    const delivery = new JetStreamDelivery(message, msg, this, intakeError);
    this.unsettled.add(delivery);
    this.subscriber.next(delivery);
  }

  /** A delivery was nacked: redeliver after a backoff, or dead-letter (see the class contract). */
  rejected(delivery: JetStreamDelivery, reason: Error): void {
    this.unsettled.delete(delivery);
    if (this.closed) return;
    const { msg } = delivery;
    const attempt = msg.info.deliveryCount;
    const decision = redeliveryDecision({ attempt, maxDeliveries: this.settings.maxDeliveries, reason, permanentAtOnce: true });
    if (decision.action === 'redeliver') {
      msg.nak(backoffDelay(attempt - 1, this.settings.redelivery));
      return;
    }
    this.settings
      .deadLetter(delivery.message, reason, msg.subject)
      .then(() => msg.term())
      .catch((error: unknown) => {
        this.settings.log.error('nats: dead letter not published; message kept and redelivered', { stream: this.settings.stream, sequence: msg.seq, error: toError(error).message });
        msg.nak(backoffDelay(attempt - 1, this.settings.redelivery));
      });
  }

  acked(delivery: JetStreamDelivery): void {
    this.unsettled.delete(delivery);
  }

  get isClosed(): boolean {
    return this.closed;
  }

  private async watch(messages: ConsumerMessages): Promise<void> {
    for await (const status of messages.status()) {
      if (status.type === 'consumer_deleted' || status.type === 'consumer_not_found' || status.type === 'stream_not_found') {
        this.settings.log.warn('nats: JetStream consumer unavailable, retrying', { stream: this.settings.stream, consumer: this.settings.durable, status: status.type });
      }
    }
  }
}

class JetStreamDelivery extends Settlement {
  readonly receivedAt = Date.now();

  constructor(
    message: Message,
    readonly msg: JsMsg,
    private readonly owner: JetStreamSubscription,
    readonly intakeError: Error | undefined,
  ) {
    super(message);
  }

  /** Given back by an unsubscribe: settled now (later settlement ignored); false when it was settled already. */
  handBack(): boolean {
    if (this.settled) return false;
    this.settled = true;
    return true;
  }

  protected onAck(): void {
    if (this.owner.isClosed) return;
    this.owner.acked(this);
    this.msg.ack();
  }

  protected onNack(reason: Error): void {
    this.owner.rejected(this, reason);
  }
}
