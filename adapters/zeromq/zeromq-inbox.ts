import type { Subscriber } from 'rxjs';
import { redeliveryDecision, Settlement, toError, type Delivery, type Logger, type Message } from '../../src/core/index.ts';
import { decodeFrames, undecodedMessage, type InboundFrames } from './zeromq-codec.ts';

/** The receiving half of a ZeroMQ socket the inbox reads: a PULL or a SUB. */
export interface FrameSource {
  receive(): Promise<Buffer[]>;
}

export interface InboxSettings extends InboundFrames {
  /** Deliveries of a nacked message before it is dropped (`redeliveryDecision`). */
  readonly maxDeliveries: number;
  /** The endpoint, for logs. */
  readonly label: string;
  readonly log: Logger;
}

interface Pending {
  readonly message: Message;
  readonly intakeError: Error | undefined;
}

/**
 * What a consumer reads from one receiving ZeroMQ socket (PULL or SUB), and the in-process half of
 * settlement ZeroMQ lacks (no acks, no redelivery on the wire).
 *
 * Contract:
 * - The socket is read only while some attached consumer has a free prefetch slot: beyond that,
 *   messages wait in the socket's own queue up to its high-water mark, and then a PUSH peer blocks,
 *   a PUB peer drops (ZeroMQ's rule per pattern).
 * - Deliveries go round-robin to the consumers with a free slot (competing consumers of one socket).
 * - `ack` frees the slot. `nack` frees it and gives the message again (`attempt` + 1, ahead of the
 *   socket) until `maxDeliveries`, then drops it with a warning (a permanent reason: at once). It never
 *   goes back to a peer: redelivery lives in this process, lost with it.
 * - `detach` (a consumer unsubscribed) hands its unsettled deliveries back to the inbox (`attempt` + 1)
 *   for the next consumer; settling them afterwards does nothing. A message read while no consumer
 *   can take it waits here too. All of this is lost when the process dies, like the socket's queue.
 * - Emits on a fresh microtask after a settlement, never inside the settling `ack`/`nack`.
 */
export class ZeroMqInbox {
  private readonly waiting: Pending[] = [];
  private readonly consumers: InboxConsumer[] = [];
  private turn = 0;
  private reading = false;
  private scheduled = false;
  private closed = false;
  /** Messages dropped after `maxDeliveries` (or a permanent nack). */
  dropped = 0;

  /**
   * @param ready settles once the socket is bound or connected (zeromq refuses a read while a bind is
   * under way); the inbox reads only after it resolves, and never when it rejects (the owner fails
   * the consumers then).
   */
  constructor(
    private readonly socket: FrameSource,
    private readonly ready: Promise<void>,
    readonly settings: InboxSettings,
  ) {}

  /** A consumer starts taking deliveries: at most `prefetch` unsettled. */
  attach(subscriber: Subscriber<Delivery>, prefetch: number): InboxConsumer {
    const consumer = new InboxConsumer(this, subscriber, prefetch);
    this.consumers.push(consumer);
    this.schedule();
    return consumer;
  }

  /** The consumer unsubscribed: its unsettled deliveries come back, ahead of anything else, for the next consumer. */
  detach(consumer: InboxConsumer): void {
    const at = this.consumers.indexOf(consumer);
    if (at >= 0) this.consumers.splice(at, 1);
    consumer.intake = false;
    const handedBack = consumer.handBack();
    this.waiting.unshift(...handedBack.map((message) => ({ message: nextAttempt(message), intakeError: undefined })));
    this.schedule();
  }

  /** No more reads; what waits here is dropped. The socket is the owner's to close. */
  close(): void {
    this.closed = true;
    this.waiting.length = 0;
    for (const consumer of this.consumers) consumer.intake = false;
  }

  get consumerCount(): number {
    return this.consumers.length;
  }

  /** Runs `pump` on a fresh microtask (at most one scheduled at a time). */
  schedule(): void {
    if (this.scheduled || this.closed) return;
    this.scheduled = true;
    queueMicrotask(() => {
      this.scheduled = false;
      this.pump();
    });
  }

  redeliver(message: Message, reason: Error): void {
    const attempt = typeof message.headers.attempt === 'number' ? message.headers.attempt : 1;
    const decision = redeliveryDecision({ attempt, maxDeliveries: this.settings.maxDeliveries, reason, permanentAtOnce: true });
    if (decision.action === 'redeliver') this.waiting.unshift({ message: nextAttempt(message), intakeError: undefined });
    else {
      this.dropped += 1;
      this.settings.log.warn('zeromq: nacked message dropped (ZeroMQ keeps nothing to redeliver or dead-letter)', { endpoint: this.settings.label, id: message.id.slice(0, 200), attempt, reason: reason.message });
    }
    this.schedule();
  }

  private pump(): void {
    for (;;) {
      if (this.closed) return;
      const consumer = this.nextFree();
      if (consumer === undefined) return;
      const next = this.waiting.shift();
      if (next === undefined) {
        this.read();
        return;
      }
      consumer.emit(next.message, next.intakeError);
    }
  }

  private nextFree(): InboxConsumer | undefined {
    const count = this.consumers.length;
    for (let step = 0; step < count; step += 1) {
      const index = (this.turn + step) % count;
      const consumer = this.consumers[index] as InboxConsumer;
      if (consumer.free) {
        this.turn = (index + 1) % count;
        return consumer;
      }
    }
    return undefined;
  }

  private read(): void {
    if (this.reading) return;
    this.reading = true;
    this.ready.then(
      () => this.receive(),
      () => {
        this.reading = false;
      },
    );
  }

  private receive(): void {
    if (this.closed) return;
    let received: Promise<Buffer[]>;
    try {
      received = this.socket.receive();
    } catch (error) {
      received = Promise.reject(toError(error));
    }
    received.then(
      (frames) => {
        this.reading = false;
        if (this.closed) return;
        this.waiting.push(this.decode(frames));
        this.pump();
      },
      (error: unknown) => {
        this.reading = false;
        if (this.closed) return;
        const failure = toError(error);
        this.settings.log.error('zeromq: receive failed', { endpoint: this.settings.label, error: failure.message });
        for (const consumer of [...this.consumers]) consumer.fail(failure);
      },
    );
  }

  private decode(frames: Buffer[]): Pending {
    try {
      return { message: decodeFrames(frames, this.settings), intakeError: undefined };
    } catch (error) {
      return { message: undecodedMessage(frames, this.settings.pattern), intakeError: toError(error) };
    }
  }
}

function nextAttempt(message: Message): Message {
  const attempt = typeof message.headers.attempt === 'number' ? message.headers.attempt : 1;
  return { ...message, headers: { ...message.headers, attempt: attempt + 1 } };
}

/** One subscriber of an inbox: its prefetch window and unsettled deliveries. */
export class InboxConsumer {
  intake = true;
  private readonly unsettled = new Set<InboxDelivery>();

  constructor(
    private readonly inbox: ZeroMqInbox,
    private readonly subscriber: Subscriber<Delivery>,
    private readonly prefetch: number,
  ) {}

  get free(): boolean {
    return this.intake && this.unsettled.size < this.prefetch;
  }

  emit(message: Message, intakeError: Error | undefined): void {
    const delivery = new InboxDelivery(message, this, intakeError);
    this.unsettled.add(delivery);
    this.subscriber.next(delivery);
  }

  /** Empties the window: the messages of the deliveries still unsettled, in delivery order. */
  handBack(): Message[] {
    const messages = [...this.unsettled].map((delivery) => delivery.message);
    this.unsettled.clear();
    return messages;
  }

  settled(delivery: InboxDelivery, reason?: Error): void {
    if (!this.unsettled.delete(delivery)) return; // handed back already
    if (reason === undefined) this.inbox.schedule();
    else this.inbox.redeliver(delivery.message, reason);
  }

  fail(error: Error): void {
    this.intake = false;
    this.subscriber.error(error);
  }
}

class InboxDelivery extends Settlement {
  constructor(
    message: Message,
    private readonly owner: InboxConsumer,
    readonly intakeError: Error | undefined,
  ) {
    super(message);
  }

  protected onAck(): void {
    this.owner.settled(this);
  }

  protected onNack(reason: Error): void {
    this.owner.settled(this, reason);
  }
}
