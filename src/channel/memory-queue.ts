import { withHeaders, type Message } from '../core/index.ts';

/** A consumer attached to a queue: takes messages while it has room under its prefetch. */
export interface QueueConsumer {
  readonly hasRoom: boolean;
  /** `seq` is the message's place in the queue: hand it back with the message to `requeue`. */
  take(message: Message, seq: number): void;
}

/** A message handed back to its queue, with the place it was given when first admitted. */
export interface Returned {
  readonly message: Message;
  readonly seq: number;
}

interface Producer {
  readonly messages: readonly Message[];
  /** The next message to admit. */
  index: number;
  readonly resolve: () => void;
}

/** A message's priority in a memory queue: its `priority` header when a finite number, else 0. */
function priorityOf(message: Message): number {
  const priority = message.headers.priority;
  return typeof priority === 'number' && Number.isFinite(priority) ? priority : 0;
}

/** Whether (priority `pa`, sequence `sa`) goes out before (`pb`, `sb`): higher priority first, then admission order. */
function before(pa: number, sa: number, pb: number, sb: number): boolean {
  return pa > pb || (pa === pb && sa < sb);
}

/**
 * A bounded priority FIFO of messages with competing consumers (Spring Integration's QueueChannel;
 * its PriorityChannel when messages carry a `priority` header).
 *
 * Contract:
 * - `offer` resolves once every message is in the queue; while the queue is full the producer waits
 *   (admission control: no unbounded buffer). Producers are served in arrival order: all of one
 *   producer's messages are admitted before the next producer's.
 * - Priority: a message with a higher `priority` header (a number; none = 0) goes out before every
 *   queued message of a lower one, in admission order within a priority (RabbitMQ's `x-max-priority`
 *   queues, without their 255 bound). Without priorities the queue is a plain FIFO.
 * - Messages go to consumers round-robin, each up to its prefetch.
 * - Redelivery keeps order: each admitted message gets a sequence number, and `requeue` puts a
 *   returned message back at its original place among the queued ones (RabbitMQ's requeue-at-position):
 *   after the queued messages of a higher priority, before those of its own priority admitted later —
 *   even past capacity — they were already admitted. Returns in any order restore publish order.
 * - The first time the queue is full with producers waiting and no consumer attached, `onStalled`
 *   is called (once per queue): nothing will ever make room unless someone consumes.
 */
export class MemoryQueue {
  /** Queued messages from `head` on, in delivery order (priority, then sequence); `seqs` and `priorities` run parallel to it. */
  private items: Message[] = [];
  private seqs: number[] = [];
  private priorities: number[] = [];
  private head = 0;
  private nextSeq = 0;
  private stalledReported = false;
  private readonly consumers: QueueConsumer[] = [];
  private nextConsumer = 0;
  /** Offers not yet fully admitted, in arrival order; messages are admitted from the first one only. */
  private readonly producers: Producer[] = [];
  private dispatching = false;

  constructor(
    readonly name: string,
    readonly capacity: number,
    private readonly onStalled?: (queue: MemoryQueue) => void,
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

  /** Puts returned messages back, each at its original place among the queued ones, and dispatches. */
  requeue(returned: readonly Returned[]): void {
    if (returned.length === 0) return;
    for (const { message, seq } of returned) this.insert(message, seq);
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
    this.seqs = [];
    this.priorities = [];
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
      const seq = this.seqs[this.head] as number;
      this.items[this.head] = undefined as never;
      this.head += 1;
      if (this.head > 1024 && this.head * 2 > this.items.length) {
        this.items = this.items.slice(this.head);
        this.seqs = this.seqs.slice(this.head);
        this.priorities = this.priorities.slice(this.head);
        this.head = 0;
      }
      consumer.take(message, seq);
    }
  }

  /** Moves waiting producers' messages in while there is room, the first producer's all before the next's. */
  private admit(): boolean {
    let admitted = false;
    while (this.depth < this.capacity) {
      const producer = this.producers[0];
      if (producer === undefined) break;
      const message = producer.messages[producer.index] as Message;
      const priority = priorityOf(message);
      // the usual case (no priority, or not above the last one's): appended, no search
      if (this.depth === 0 || priority <= (this.priorities[this.priorities.length - 1] as number)) {
        this.items.push(message);
        this.seqs.push(this.nextSeq);
        this.priorities.push(priority);
      } else this.insert(message, this.nextSeq);
      this.nextSeq += 1;
      producer.index += 1;
      admitted = true;
      if (producer.index === producer.messages.length) {
        this.producers.shift();
        producer.resolve();
      }
    }
    if (this.producers.length > 0 && this.consumers.length === 0 && !this.stalledReported) {
      this.stalledReported = true;
      this.onStalled?.(this);
    }
    return admitted;
  }

  /**
   * Inserts at the place its priority and `seq` order it among the queued messages. A returned
   * message usually precedes everything queued: that case reuses the slot before `head`, without copying.
   */
  private insert(message: Message, seq: number): void {
    const priority = priorityOf(message);
    if (this.depth === 0 || before(priority, seq, this.priorities[this.head] as number, this.seqs[this.head] as number)) {
      if (this.head > 0) {
        this.head -= 1;
        this.items[this.head] = message;
        this.seqs[this.head] = seq;
        this.priorities[this.head] = priority;
      } else {
        this.items.unshift(message);
        this.seqs.unshift(seq);
        this.priorities.unshift(priority);
      }
      return;
    }
    let low = this.head;
    let high = this.items.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (before(this.priorities[middle] as number, this.seqs[middle] as number, priority, seq)) low = middle + 1;
      else high = middle;
    }
    this.items.splice(low, 0, message);
    this.seqs.splice(low, 0, seq);
    this.priorities.splice(low, 0, priority);
  }
}

/** The message as redelivered: `attempt` incremented. */
export function redelivered(message: Message): Message {
  return withHeaders(message, { attempt: (message.headers.attempt ?? 1) + 1 });
}
