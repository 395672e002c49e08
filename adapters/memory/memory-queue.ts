import { withHeaders, type Message } from '../../src/core/index.ts';

/** A consumer attached to a queue: takes messages while it has room under its prefetch. */
export interface QueueConsumer {
  readonly hasRoom: boolean;
  take(message: Message): void;
}

interface Producer {
  readonly messages: readonly Message[];
  /** The next message to admit. */
  index: number;
  readonly resolve: () => void;
}

/**
 * A bounded FIFO of messages with competing consumers (Spring Integration's QueueChannel).
 *
 * Contract:
 * - `offer` resolves once every message is in the queue; while the queue is full the producer waits
 *   (admission control: no unbounded buffer). Producers are served in arrival order: all of one
 *   producer's messages are admitted before the next producer's.
 * - Messages go to consumers round-robin, each up to its prefetch; `requeue` puts returned messages
 *   back at the head (redelivery keeps order), even past capacity — they were already admitted.
 */
export class MemoryQueue {
  private items: Message[] = [];
  private head = 0;
  private readonly consumers: QueueConsumer[] = [];
  private nextConsumer = 0;
  /** Offers not yet fully admitted, in arrival order; messages are admitted from the first one only. */
  private readonly producers: Producer[] = [];
  private dispatching = false;

  constructor(
    readonly name: string,
    readonly capacity: number,
  ) {}

  get depth(): number {
    return this.items.length - this.head;
  }

  offer(messages: readonly Message[]): Promise<void> {
    if (messages.length === 0) return Promise.resolve();
    return new Promise<void>((resolve) => {
      this.producers.push({ messages, index: 0, resolve });
      this.dispatch();
    });
  }

  requeue(messages: readonly Message[]): void {
    if (messages.length === 0) return;
    this.items = [...messages, ...this.items.slice(this.head)];
    this.head = 0;
    this.dispatch();
  }

  attach(consumer: QueueConsumer): void {
    this.consumers.push(consumer);
    this.dispatch();
  }

  detach(consumer: QueueConsumer): void {
    const index = this.consumers.indexOf(consumer);
    if (index >= 0) this.consumers.splice(index, 1);
  }

  /**
   * The queue is abandoned (a pub-sub subscriber left): its messages are dropped and producers
   * waiting for room are released, since what they offer here now goes nowhere.
   */
  discard(): void {
    this.items = [];
    this.head = 0;
    for (const producer of this.producers.splice(0)) producer.resolve();
  }

  /**
   * Hands queued messages to consumers with room and admits waiting producers' messages as room
   * appears. Re-entrant calls (an ack or an offer inside `take`) fold into the loop.
   */
  dispatch(): void {
    if (this.dispatching) return;
    this.dispatching = true;
    try {
      do this.handOut();
      while (this.admit());
    } finally {
      this.dispatching = false;
    }
  }

  private handOut(): void {
    let idle = 0;
    while (this.depth > 0 && this.consumers.length > 0 && idle < this.consumers.length) {
      this.nextConsumer %= this.consumers.length;
      const consumer = this.consumers[this.nextConsumer] as QueueConsumer;
      this.nextConsumer += 1;
      if (!consumer.hasRoom) {
        idle += 1;
        continue;
      }
      idle = 0;
      const message = this.items[this.head] as Message;
      this.items[this.head] = undefined as never;
      this.head += 1;
      if (this.head > 1024 && this.head * 2 > this.items.length) {
        this.items = this.items.slice(this.head);
        this.head = 0;
      }
      consumer.take(message);
    }
  }

  /** Moves waiting producers' messages in while there is room, the first producer's all before the next's. */
  private admit(): boolean {
    let admitted = false;
    while (this.depth < this.capacity) {
      const producer = this.producers[0];
      if (producer === undefined) break;
      this.items.push(producer.messages[producer.index] as Message);
      producer.index += 1;
      admitted = true;
      if (producer.index === producer.messages.length) {
        this.producers.shift();
        producer.resolve();
      }
    }
    return admitted;
  }
}

/** The message as redelivered: `attempt` incremented. */
export function redelivered(message: Message): Message {
  return withHeaders(message, { attempt: (message.headers.attempt ?? 1) + 1 });
}
