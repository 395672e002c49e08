import type { AmqpError, Connection, Delivery as AmqpDelivery, EventContext, Message as AmqpMessage, Receiver } from 'rhea';
import type { Subscriber } from 'rxjs';
import { clipErrorText, redeliveryDecision, Settlement, toError, type Delivery, type Logger, type Message } from '../../src/core/index.ts';
import type { AttemptCounter } from './attempt-counter.ts';
import { decodeMessage, idText } from './amqp10-codec.ts';
import { decodeFailure, guardSession, messageDigest } from './amqp10-decode-guard.ts';
import type { Amqp10Connection } from './amqp10-connection.ts';
import { terminusDurability, type Amqp10Target } from './amqp10-endpoint.ts';
import { Amqp10DecodeError, Amqp10LinkError } from './amqp10-errors.ts';
import { closeLink } from './amqp10-link-close.ts';

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
    /** The attempt counter's key: the message id when it has a usable one, else a digest of its bytes. */
    readonly key: string | undefined,
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
 * - at most `prefetch` deliveries emitted and unsettled (`autoaccept` off, so nothing is accepted
 *   before its route settled it): the link's credit is topped up to `prefetch` minus what the route
 *   holds and what waits here. RabbitMQ 3.10 sends transfers beyond the credit granted; those wait
 *   here, unsettled, and are emitted as slots free.
 * - ack → disposition `accepted`. nack → `released` (RabbitMQ puts it back and delivers it again at
 *   once) while `attempt < maxDeliveries`, then `rejected` → the queue's dead-letter exchange (a queue
 *   without one drops it; see docs/transports/amqp10.md). RabbitMQ 3.10 refuses the `modified`
 *   outcome (it ends the session), so it is never sent.
 * - `attempt`: the header's `delivery-count` + 1 when the broker counts; RabbitMQ 3.10 does not, and
 *   sets only `first-acquirer` (false after a release or a requeue), so `attempt` is this process's
 *   count of nacks (`AttemptCounter`, keyed by the message id, or a digest of the message's bytes when
 *   it has no usable id), at least 2 when the broker says it is not the first acquirer; a nack the full
 *   counter cannot record is rejected rather than released uncounted.
 * - a message that cannot be decoded — rhea's decoder fails (an amqp-value nested too deep for its
 *   recursion), a message format other than 0, or `Amqp10DecodeError` — is rejected at once, alone.
 * - connection lost: deliveries still held belong to the dead link (the broker requeued them);
 *   settling them only frees their prefetch slot. The link is attached again on reconnect.
 * - `stopIntake`: no more credit; messages the broker already sent (and those waiting) are released unseen.
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
  /** Transfers of the current link received beyond `prefetch` (the broker overshot its credit), in order. */
  private waiting: EventContext[] = [];
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
      this.waiting = [];
    });
    const current = connection.current;
    if (current !== undefined) this.attach(current);
  }

  stopIntake(): void {
    this.intake = false;
    this.releaseWaiting();
  }

  /**
   * Ends the link and its session (whether or not it opened yet). The last dispositions and the
   * close leave on the next tick: a batch already handed to rhea this tick is written first, so it is
   * never merged with this one (see `settle`).
   */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.intake = false;
    this.offOpen();
    this.offLost();
    this.releaseWaiting();
    const receiver = this.receiver;
    this.receiver = undefined;
    process.nextTick(() => {
      this.flushDispositions();
      if (receiver !== undefined) closeLink(receiver);
    });
  }

  /** @internal */
  ack(delivery: LinkDelivery): void {
    if (this.disposed) return;
    this.outstanding -= 1;
    if (this.live(delivery)) {
      this.settle(delivery.transfer, 'accept');
      if (delivery.key !== undefined) this.settings.attempts.forget(this.target.address, delivery.key);
    }
    this.slotFreed();
  }

  /** @internal */
  nack(delivery: LinkDelivery, reason: Error): void {
    if (this.disposed) return;
    this.outstanding -= 1;
    if (this.live(delivery)) {
      const decision = redeliveryDecision({ attempt: delivery.attempt, maxDeliveries: this.target.maxDeliveries ?? this.settings.maxDeliveries, reason });
      const { key } = delivery;
      if (decision.action === 'deadLetter') this.reject(delivery.transfer, delivery.message.id, key, delivery.attempt, reason.message);
      else if (key === undefined || !this.settings.attempts.record(this.target.address, key, delivery.attempt)) {
        this.reject(delivery.transfer, delivery.message.id, key, delivery.attempt, `${reason.message} (not released: its attempts cannot be counted)`);
      } else this.settle(delivery.transfer, 'release');
    }
    this.slotFreed();
  }

  private live(delivery: LinkDelivery): boolean {
    return delivery.receiver === this.receiver && delivery.receiver.is_open();
  }

  private reject(transfer: AmqpDelivery, id: string, key: string | undefined, attempt: number, reason: string): void {
    if (key !== undefined) this.settings.attempts.forget(this.target.address, key);
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

  /** A delivery left the route: emit what waits, then top the credit up. */
  private slotFreed(): void {
    while (this.waiting.length > 0 && this.outstanding < this.settings.prefetch && this.intake) {
      const context = this.waiting.shift() as EventContext;
      if (context.receiver === this.receiver) this.deliver(context);
    }
    this.topUp();
  }

  /** Credit up to `prefetch` minus what the route holds, what waits here and the credit still open. */
  private topUp(): void {
    const receiver = this.receiver;
    if (!this.intake || receiver === undefined || !receiver.is_open()) return;
    const open = (receiver as Receiver & { readonly credit: number }).credit;
    const want = this.settings.prefetch - this.outstanding - this.waiting.length - open;
    if (want > 0) receiver.add_credit(want);
  }

  private releaseWaiting(): void {
    for (const context of this.waiting.splice(0)) if (context.delivery !== undefined) this.settle(context.delivery, 'release');
  }

  private attach(connection: Connection): void {
    if (this.disposed) return;
    // a session of its own: RabbitMQ 3.10 backs each session with a 0-9-1 channel and requeues the
    // unsettled messages only when that channel closes — detaching the link alone keeps them unacked
    const session = connection.create_session();
    guardSession(session);
    session.begin();
    const receiver: Receiver = session.open_receiver({
      source: { address: this.target.address, durable: terminusDurability(this.target.address) },
      autoaccept: false,
      autosettle: true,
      credit_window: 0,
    });
    this.receiver = receiver;
    receiver.once('receiver_open', () => {
      if (receiver === this.receiver) this.topUp();
    });
    const refused = (error: { condition?: unknown; description?: unknown } | undefined): void => {
      if (receiver !== this.receiver || this.disposed) return;
      this.receiver = undefined;
      this.waiting = [];
      closeLink(receiver, true);
      this.subscriber.error(new Amqp10LinkError(this.target.address, error?.condition === undefined ? undefined : String(error.condition), String(error?.description ?? 'detached')));
    };
    receiver.on('receiver_error', (context: EventContext) => refused(context.receiver?.error as { condition?: unknown } | undefined));
    session.on('session_error', (context: EventContext) => refused(context.session?.error as { condition?: unknown } | undefined));
    receiver.on('message', (context: EventContext) => this.receive(receiver, context));
  }

  private receive(receiver: Receiver, context: EventContext): void {
    const transfer = context.delivery;
    if (transfer === undefined) return;
    if (!this.intake || receiver !== this.receiver) {
      this.settle(transfer, 'release');
      return;
    }
    if (this.outstanding >= this.settings.prefetch) this.waiting.push(context);
    else this.deliver(context);
  }

  private deliver(context: EventContext): void {
    const transfer = context.delivery as AmqpDelivery;
    const receiver = context.receiver as Receiver;
    const raw = context.message;
    const format = (context as { format?: unknown }).format;
    const failure = raw === undefined ? undefined : decodeFailure(raw);
    if (raw === undefined || Buffer.isBuffer(raw) || (format !== undefined && format !== 0) || failure !== undefined) {
      const why = failure !== undefined ? `rhea cannot decode it (${failure.message})` : `message format ${String(format)} is not AMQP 1.0's (0)`;
      this.reject(transfer, '?', undefined, 1, new Amqp10DecodeError(`a message of '${this.target.address}': ${why}`).message);
      this.topUp();
      return;
    }
    const rawId = idText(raw.message_id);
    const key = rawId !== undefined ? `id:${rawId}` : digestKey(raw);
    const counted = typeof raw.delivery_count === 'number' && raw.delivery_count > 0 ? raw.delivery_count + 1 : 1;
    const floor = raw.first_acquirer === false ? 2 : 1;
    const seen = key === undefined ? undefined : this.settings.attempts.last(this.target.address, key);
    const attempt = Math.max(counted, floor, seen === undefined ? 1 : seen + 1);
    let message: Message;
    try {
      message = decodeMessage(raw, { address: this.target.address, attempt, maxBytes: this.settings.maxMessageBytes }, this.target.inbound);
    } catch (error) {
      this.reject(transfer, rawId ?? '?', key, attempt, toError(error).message);
      this.topUp();
      return;
    }
    this.outstanding += 1;
    this.subscriber.next(new LinkDelivery(message, transfer, receiver, attempt, key, this));
  }
}

function digestKey(raw: AmqpMessage): string | undefined {
  const digest = messageDigest(raw);
  return digest === undefined ? undefined : `sha256:${digest}`;
}
