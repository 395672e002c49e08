import type { Subscriber } from 'rxjs';
import { toError, UnsettledList, UnsettledNode, type Delivery, type Logger, type Message } from '../../src/spi.ts';
import { decodeMessage } from './amqp-codec.ts';
import type { BrokerConsumer, BrokerQueue, QueueEntry } from './memory-broker-queue.ts';

/** One delivery of the in-memory broker: its settlement goes back to the consumer it came through. */
class BrokerDelivery extends UnsettledNode {
  constructor(
    message: Message,
    readonly entry: QueueEntry,
    private readonly consumer: MemoryBrokerConsumer,
  ) {
    super(message, entry.seq);
  }

  protected onAck(): void {
    this.consumer.ack(this);
  }

  protected onNack(reason: Error): void {
    this.consumer.nack(this, reason);
  }
}

export interface MemoryConsumerSettings {
  readonly uri: string;
  readonly prefetch: number;
  /** Deliveries of a nacked message before it is rejected for good (the real consumer's `maxDeliveries`). */
  readonly maxDeliveries: number;
  readonly log: Logger;
}

/**
 * One `consume` subscription on a queue of the in-memory broker — what `AmqpConsumer` is on RabbitMQ.
 *
 * Contract: at most `prefetch` deliveries unsettled; `attempt` is the message's delivery count. A
 * nack requeues at the message's original place while `attempt < maxDeliveries` (and, on a quorum
 * queue with `deliveryLimit`, while `attempt ≤ deliveryLimit`), else rejects it for good: the queue's
 * dead-letter exchange takes it, or it is dropped. A body that cannot be decoded is rejected at once.
 * `stopIntake` detaches from the queue (emitted deliveries can still be settled); `dispose` also hands
 * every unsettled delivery back (redelivered with `attempt + 1`; a later settlement of it is ignored).
 */
export class MemoryBrokerConsumer implements BrokerConsumer {
  private readonly unsettled = new UnsettledList();
  private attached = false;

  constructor(
    readonly queue: BrokerQueue,
    private readonly subscriber: Subscriber<Delivery>,
    private readonly settings: MemoryConsumerSettings,
  ) {}

  get hasRoom(): boolean {
    return this.unsettled.size < this.settings.prefetch;
  }

  start(): void {
    this.attached = true;
    this.queue.attach(this);
  }

  take(entry: QueueEntry): void {
    let message: Message;
    try {
      message = decodeMessage(entry.message, entry.attempt, `${this.queue.name}:${entry.seq}`);
    } catch (error) {
      this.settings.log.error('amqp (memory): undecodable message rejected to the dead-letter exchange', { endpoint: this.settings.uri, error: toError(error).message });
      this.queue.rejected(entry);
      return;
    }
    const delivery = new BrokerDelivery(message, entry, this);
    this.unsettled.add(delivery);
    this.subscriber.next(delivery);
  }

  /** @internal */
  ack(delivery: BrokerDelivery): void {
    if (this.unsettled.remove(delivery)) this.queue.acked();
  }

  /** @internal */
  nack(delivery: BrokerDelivery, reason: Error): void {
    if (!this.unsettled.remove(delivery)) return;
    const { attempt } = delivery.entry;
    const limit = this.queue.spec.type === 'quorum' ? this.queue.spec.deliveryLimit : undefined;
    if (attempt < this.settings.maxDeliveries && (limit === undefined || attempt <= limit)) {
      this.queue.requeue([delivery.entry]);
      return;
    }
    this.settings.log.warn('amqp (memory): delivery rejected to the dead-letter exchange', { endpoint: this.settings.uri, id: delivery.message.id, attempt, reason: reason.message });
    this.queue.rejected(delivery.entry);
  }

  stopIntake(): void {
    if (!this.attached) return;
    this.attached = false;
    this.queue.detach(this);
  }

  dispose(): void {
    this.stopIntake();
    this.queue.requeue(this.unsettled.drain().map((node) => (node as BrokerDelivery).entry));
  }
}
