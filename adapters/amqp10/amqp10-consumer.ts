import type { AmqpError, Connection, Delivery as AmqpDelivery, EventContext, Receiver } from 'rhea';
import type { Subscriber } from 'rxjs';
import { clipErrorText, redeliveryDecision, Settlement, toError, type Delivery, type Logger, type Message } from '../../src/core/index.ts';
import type { AttemptCounter } from './attempt-counter.ts';
import { decodeMessage } from './amqp10-codec.ts';
import type { Amqp10Connection } from './amqp10-connection.ts';
import type { Amqp10Target } from './amqp10-endpoint.ts';
import { Amqp10LinkError } from './amqp10-errors.ts';

export interface ConsumerSettings {
  readonly prefetch: number;
  readonly maxDeliveries: number;
  readonly maxMessageBytes: number;
  readonly attempts: AttemptCounter;
  readonly log: Logger;
}

/** One received message and its settlement (bound to the link it came on). */
class LinkDelivery extends Settlement {
  constructor(
    message: Message,
    readonly transfer: AmqpDelivery,
    readonly receiver: Receiver,
    readonly attempt: number,
    private readonly consumer: Amqp10Subscription,
  ) {
    super(message);
  }

  protected onAck(): void {
    this.consumer.ack(this);
  }

  protected onNack(reason: Error): void {
    this.consumer.nack(this, reason);
  }
}

/**
 * One `consume` subscription: a receiver link with manual credit, re-attached on every reconnect.
 *
 * Contract:
 * - at most `prefetch` deliveries unsettled: the link's credit is `prefetch` minus what the route
 *   holds, one credit given back per settlement (`autoaccept` off, so nothing is accepted before its
 *   route settled it).
 * - ack → disposition `accepted`. nack → `released` (RabbitMQ puts it back and delivers it again at
 *   once) while `attempt < maxDeliveries`, then `rejected` → the queue's dead-letter exchange (a queue
 *   without one drops it; see docs/transports/amqp10.md). RabbitMQ 3.10 refuses the `modified`
 *   outcome (it ends the session), so it is never sent.
 * - `attempt`: the header's `delivery-count` + 1 when the broker counts; RabbitMQ 3.10 does not, and
 *   sets only `first-acquirer` (false after a release or a requeue), so `attempt` is this process's
 *   count of nacks (`AttemptCounter`), at least 2 when the broker says it is not the first acquirer.
 * - a message that cannot be decoded (`Amqp10DecodeError`) is rejected at once.
 * - connection lost: deliveries still held belong to the dead link (the broker requeued them);
 *   settling them only frees their prefetch slot. The link is attached again on reconnect.
 * - `stopIntake`: no more credit; messages the broker already sent are released unseen.
 * - `dispose`: detaches the link and ends its session (each subscription has its own: RabbitMQ 3.10
 *   requeues unsettled messages when the session ends, not on detach) — every unsettled message is
 *   delivered again, `first-acquirer` false; settlements afterwards are ignored.
 * - a refused attach (no such queue or exchange, access refused) ends the Observable with `Amqp10LinkError`.
 */
export class Amqp10Subscription {
  private receiver: Receiver | undefined;
  private dispositions: { transfer: AmqpDelivery; outcome: 'accept' | 'release' | AmqpError }[] = [];
  /** Deliveries emitted and not yet settled, on any link. */
  private outstanding = 0;
  private intake = true;
  private disposed = false;
  private readonly offOpen: () => void;
  private readonly offLost: () => void;

  constructor(
    private readonly target: Amqp10Target,
    private readonly subscriber: Subscriber<Delivery>,
    private readonly connection: Amqp10Connection,
    private readonly settings: ConsumerSettings,
  ) {
    this.offOpen = connection.onOpen((open) => this.attach(open));
    this.offLost = connection.onLost(() => {
      this.receiver = undefined;
    });
    const current = connection.current;
    if (current !== undefined) this.attach(current);
  }

  stopIntake(): void {
    this.intake = false;
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.intake = false;
    this.offOpen();
    this.offLost();
    this.flushDispositions();
    const receiver = this.receiver;
    this.receiver = undefined;
    if (receiver !== undefined && receiver.is_open()) {
      receiver.close();
      receiver.session.close();
    }
  }

  /** @internal */
  ack(delivery: LinkDelivery): void {
    if (this.disposed) return;
    this.outstanding -= 1;
    if (this.live(delivery)) {
      this.settle(delivery.transfer, 'accept');
      this.settings.attempts.forget(this.target.address, delivery.message.id);
    }
    this.credit(1);
  }

  /** @internal */
  nack(delivery: LinkDelivery, reason: Error): void {
    if (this.disposed) return;
    this.outstanding -= 1;
    if (this.live(delivery)) {
      const decision = redeliveryDecision({ attempt: delivery.attempt, maxDeliveries: this.target.maxDeliveries ?? this.settings.maxDeliveries, reason });
      if (decision.action === 'deadLetter') this.reject(delivery.transfer, delivery.message.id, delivery.attempt, reason.message);
      else {
        this.settings.attempts.record(this.target.address, delivery.message.id, delivery.attempt);
        this.settle(delivery.transfer, 'release');
      }
    }
    this.credit(1);
  }

  private live(delivery: LinkDelivery): boolean {
    return delivery.receiver === this.receiver && delivery.receiver.is_open();
  }

  private reject(transfer: AmqpDelivery, id: string, attempt: number, reason: string): void {
    this.settings.attempts.forget(this.target.address, id);
    this.settings.log.warn('amqp10: delivery rejected to the dead-letter exchange', { endpoint: this.target.uri, id, attempt, reason });
    this.settle(transfer, { condition: 'amqp:internal-error', description: clipErrorText(reason) });
  }

  /**
   * Every disposition goes through here and leaves in one batch per tick, in DESCENDING delivery id
   * order. rhea 3.0.5 merges a disposition into the range of the one before it when their ids are
   * consecutive and that range has one delivery, without comparing outcomes (session.js
   * write_dispositions): an accept right after a reject would be sent as part of the reject, or the
   * other way round. Descending ids are never consecutive, so each disposition is sent as it is.
   */
  private settle(transfer: AmqpDelivery, outcome: 'accept' | 'release' | AmqpError): void {
    this.dispositions.push({ transfer, outcome });
    if (this.dispositions.length === 1) process.nextTick(() => this.flushDispositions());
  }

  private flushDispositions(): void {
    const batch = this.dispositions;
    if (batch.length === 0) return;
    this.dispositions = [];
    if (batch.length > 1) batch.sort((a, b) => b.transfer.id - a.transfer.id);
    for (const { transfer, outcome } of batch) {
      if (transfer.link.is_closed()) continue;
      if (outcome === 'accept') transfer.accept();
      else if (outcome === 'release') transfer.release();
      else transfer.reject(outcome);
    }
  }

  private credit(count: number): void {
    const receiver = this.receiver;
    if (!this.intake || receiver === undefined || !receiver.is_open()) return;
    receiver.add_credit(count);
  }

  private attach(connection: Connection): void {
    if (this.disposed) return;
    // a session of its own: RabbitMQ 3.10 backs each session with a 0-9-1 channel and requeues the
    // unsettled messages only when that channel closes — detaching the link alone keeps them unacked
    const session = connection.create_session();
    session.begin();
    const receiver: Receiver = session.open_receiver({
      source: { address: this.target.address },
      autoaccept: false,
      autosettle: true,
      credit_window: 0,
    });
    this.receiver = receiver;
    receiver.once('receiver_open', () => {
      if (receiver !== this.receiver || !this.intake) return;
      const free = this.settings.prefetch - this.outstanding;
      if (free > 0) receiver.add_credit(free);
    });
    const refused = (error: { condition?: unknown; description?: unknown } | undefined): void => {
      if (receiver !== this.receiver || this.disposed) return;
      this.receiver = undefined;
      this.subscriber.error(new Amqp10LinkError(this.target.address, error?.condition === undefined ? undefined : String(error.condition), String(error?.description ?? 'detached')));
    };
    receiver.on('receiver_error', (context: EventContext) => refused(context.receiver?.error as { condition?: unknown } | undefined));
    session.on('session_error', (context: EventContext) => refused(context.session?.error as { condition?: unknown } | undefined));
    receiver.on('message', (context: EventContext) => this.receive(receiver, context));
  }

  private receive(receiver: Receiver, context: EventContext): void {
    const transfer = context.delivery;
    const raw = context.message;
    if (transfer === undefined || raw === undefined) return;
    if (!this.intake || receiver !== this.receiver) {
      this.settle(transfer, 'release');
      return;
    }
    const rawId = typeof raw.message_id === 'string' ? raw.message_id : undefined;
    const counted = typeof raw.delivery_count === 'number' && raw.delivery_count > 0 ? raw.delivery_count + 1 : 1;
    const floor = raw.first_acquirer === false ? 2 : 1;
    const seen = rawId === undefined ? undefined : this.settings.attempts.last(this.target.address, rawId);
    const attempt = Math.max(counted, floor, seen === undefined ? 1 : seen + 1);
    let message: Message;
    try {
      message = decodeMessage(raw, { address: this.target.address, attempt, maxBytes: this.settings.maxMessageBytes }, this.target.inbound);
    } catch (error) {
      this.reject(transfer, rawId ?? '?', attempt, toError(error).message);
      receiver.add_credit(1);
      return;
    }
    this.outstanding += 1;
    this.subscriber.next(new LinkDelivery(message, transfer, receiver, attempt, this));
  }
}
