import { withHeaders, type Message } from '../../src/core/index.ts';

/** A consumer attached to a queue: takes messages while it has room under its prefetch. */
export interface QueueConsumer {
  readonly hasRoom: boolean;
  take(message: Message): void;
}

/**
 * A bounded FIFO of messages with competing consumers (Spring Integration's QueueChannel).
 *
 * Contract:
 * - `offer` resolves once every message is in the queue; while the queue is full the producer waits
 *   (admission control: no unbounded buffer). Producers are served in arrival order.
 * - Messages go to consumers round-robin, each up to its prefetch; `requeue` puts returned messages
 *   back at the head (redelivery keeps order), even past capacity — they were already admitted.
 */
export class MemoryQueue {
  private items: Message[] = [];
  private head = 0;
  private readonly consumers: QueueConsumer[] = [];
  private nextConsumer = 0;
  private readonly waiting: (() => void)[] = [];
  private dispatching = false;

  constructor(
    readonly name: string,
    readonly capacity: number,
  ) {}

  get depth(): number {
    return this.items.length - this.head;
  }

  async offer(messages: readonly Message[]): Promise<void> {
    let index = 0;
    while (index < messages.length) {
      if (this.waiting.length > 0 || this.depth >= this.capacity) {
        await new Promise<void>((resolve) => this.waiting.push(resolve));
        if (this.depth >= this.capacity) continue;
      }
      while (index < messages.length && this.depth < this.capacity) this.items.push(messages[index++] as Message);
      this.dispatch();
      this.wakeProducer();
    }
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

  /** Hands queued messages to consumers with room. Re-entrant calls (an ack inside `take`) fold into the loop. */
  dispatch(): void {
    if (this.dispatching) return;
    this.dispatching = true;
    try {
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
    } finally {
      this.dispatching = false;
    }
    this.wakeProducer();
  }

  private wakeProducer(): void {
    if (this.depth < this.capacity) this.waiting.shift()?.();
  }
}

/** The message as redelivered: `attempt` incremented. */
export function redelivered(message: Message): Message {
  return withHeaders(message, { attempt: (message.headers.attempt ?? 1) + 1 });
}
