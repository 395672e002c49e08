import type { Options } from 'amqplib';
import type { QueueSpec } from './amqp-topology.ts';

/** A message as the in-memory broker keeps it: encoded, as it would travel to RabbitMQ. */
export interface StoredMessage {
  readonly exchange: string;
  readonly routingKey: string;
  readonly content: Buffer;
  readonly properties: Options.Publish;
}

/** A message in a queue: its place (`seq`), the delivery its next one is (`attempt`), when it expires (epoch ms). */
export interface QueueEntry {
  readonly message: StoredMessage;
  readonly seq: number;
  readonly attempt: number;
  readonly expiresAt: number | undefined;
}

/** A consumer attached to a queue: takes messages while it has room under its prefetch. */
export interface BrokerConsumer {
  readonly hasRoom: boolean;
  take(entry: QueueEntry): void;
}

/** Why a message leaves a queue undelivered (RabbitMQ's dead-letter reasons). */
export type DeathReason = 'rejected' | 'expired' | 'maxlen';

/** Where messages leaving a queue undelivered go: its dead-letter exchange, or nowhere. */
export type DiscardHandler = (queue: BrokerQueue, entry: QueueEntry, reason: DeathReason) => void;

/**
 * One queue of the in-memory broker: a FIFO of ready messages with competing consumers.
 *
 * Contract:
 * - Bounded as RabbitMQ bounds a queue: at most `maxLength` ready messages (and `spec.maxLengthBytes`
 *   of bodies, when set; unacknowledged ones do not count). Full, it does what `spec.overflow` says:
 *   `drop-head` (the default) takes the new message and discards the oldest; `reject-publish` refuses
 *   the new one (`offer` returns false); `reject-publish-dlx` refuses it and dead-letters it.
 * - Messages go to attached consumers round-robin, each up to its prefetch.
 * - `requeue` puts messages back at their original place among the ready ones (RabbitMQ's
 *   requeue-at-position), `attempt` incremented, even past the bound: they were admitted already.
 * - Expiry (`spec.messageTtlMs`, a message's `expiration`) is checked at the head only, as RabbitMQ
 *   does for per-message TTLs: an expired message leaves when it reaches the head, dead-lettered.
 * - A deleted queue takes nothing more: offers, requeues and settlements are ignored.
 */
export class BrokerQueue {
  /** Ready messages from `head` on, in `seq` order. */
  private items: QueueEntry[] = [];
  private head = 0;
  private nextSeq = 0;
  private bytes = 0;
  private readonly consumers: BrokerConsumer[] = [];
  private nextConsumer = 0;
  private dispatching = false;
  private everConsumed = false;
  /** Deliveries handed out and not yet settled. */
  unacknowledged = 0;
  /** Messages discarded with nowhere to go (full, rejected or expired without a dead-letter exchange, or unroutable there). */
  dropped = 0;
  /** Messages moved to the dead-letter exchange. */
  deadLettered = 0;
  deleted = false;

  constructor(
    readonly spec: QueueSpec,
    readonly maxLength: number,
    private readonly discard: DiscardHandler,
  ) {}

  get name(): string {
    return this.spec.name;
  }

  /** Ready messages (not counting unacknowledged ones). */
  get depth(): number {
    return this.items.length - this.head;
  }

  get consumerCount(): number {
    return this.consumers.length;
  }

  /** Whether an auto-delete queue has lost its last consumer (RabbitMQ then deletes it). */
  get abandoned(): boolean {
    return this.spec.autoDelete === true && this.everConsumed && this.consumers.length === 0;
  }

  /** The ready messages, oldest first (a snapshot; nothing is taken). */
  peek(): readonly QueueEntry[] {
    return this.items.slice(this.head);
  }

  /** Admits a message; false when the queue refuses it (full, with a `reject-publish*` overflow). */
  offer(message: StoredMessage, now = Date.now()): boolean {
    if (this.deleted) return true;
    this.expire(now);
    const entry: QueueEntry = { message, seq: this.nextSeq++, attempt: 1, expiresAt: this.expiryOf(message, now) };
    const overflow = this.spec.overflow ?? 'drop-head';
    if (overflow !== 'drop-head' && (this.depth >= this.maxLength || this.overBytes(message.content.length))) {
      if (overflow === 'reject-publish-dlx') this.discard(this, entry, 'maxlen');
      return false;
    }
    this.items.push(entry);
    this.bytes += message.content.length;
    while (this.depth > this.maxLength || (this.depth > 0 && this.overBytes(0))) this.discard(this, this.shift(), 'maxlen');
    this.dispatch();
    return true;
  }

  /** Hands delivered messages back, each at its original place and with `attempt + 1`. */
  requeue(entries: readonly QueueEntry[]): void {
    if (this.deleted || entries.length === 0) return;
    this.unacknowledged -= entries.length;
    for (const entry of entries) this.insert({ ...entry, attempt: entry.attempt + 1 });
    this.dispatch();
  }

  /** A delivery was acknowledged: its consumer has room again. */
  acked(): void {
    if (this.deleted) return;
    this.unacknowledged -= 1;
    this.dispatch();
  }

  /** A delivery was rejected for good (`reason`: why): it is dead-lettered, or dropped. */
  rejected(entry: QueueEntry, reason: DeathReason = 'rejected'): void {
    if (this.deleted) return;
    this.unacknowledged -= 1;
    this.discard(this, entry, reason);
    this.dispatch();
  }

  attach(consumer: BrokerConsumer): void {
    this.consumers.push(consumer);
    this.everConsumed = true;
    this.dispatch();
  }

  detach(consumer: BrokerConsumer): void {
    const index = this.consumers.indexOf(consumer);
    if (index >= 0) this.consumers.splice(index, 1);
  }

  /** Deletes the queue: its messages are gone (not dead-lettered, as with RabbitMQ's queue.delete). */
  delete(): void {
    this.deleted = true;
    this.items = [];
    this.head = 0;
    this.bytes = 0;
    this.consumers.splice(0);
  }

  /** Hands ready messages to consumers with room. Re-entrant calls (an ack inside `take`) fold into the loop. */
  dispatch(): void {
    if (this.dispatching || this.deleted) return;
    this.dispatching = true;
    try {
      let idle = 0;
      const now = Date.now();
      while (this.consumers.length > 0 && idle < this.consumers.length) {
        this.expire(now);
        if (this.depth === 0) break;
        this.nextConsumer %= this.consumers.length;
        const consumer = this.consumers[this.nextConsumer] as BrokerConsumer;
        this.nextConsumer += 1;
        if (!consumer.hasRoom) {
          idle += 1;
          continue;
        }
        idle = 0;
        this.unacknowledged += 1;
        consumer.take(this.shift());
      }
    } finally {
      this.dispatching = false;
    }
  }

  private overBytes(extra: number): boolean {
    return this.spec.maxLengthBytes !== undefined && this.bytes + extra > this.spec.maxLengthBytes;
  }

  private expiryOf(message: StoredMessage, now: number): number | undefined {
    const own = message.properties.expiration === undefined ? undefined : Number(message.properties.expiration);
    const ttl = own === undefined || Number.isNaN(own) ? this.spec.messageTtlMs : Math.min(own, this.spec.messageTtlMs ?? own);
    return ttl === undefined ? undefined : now + ttl;
  }

  /** Dead-letters expired messages at the head. */
  private expire(now: number): void {
    for (let first = this.items[this.head]; first?.expiresAt !== undefined && first.expiresAt < now; first = this.items[this.head]) this.discard(this, this.shift(), 'expired');
  }

  private shift(): QueueEntry {
    const entry = this.items[this.head] as QueueEntry;
    this.items[this.head] = undefined as never;
    this.head += 1;
    this.bytes -= entry.message.content.length;
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return entry;
  }

  /** Inserts at the place `seq` orders it among the ready messages (usually the front: reuses the slot before `head`). */
  private insert(entry: QueueEntry): void {
    this.bytes += entry.message.content.length;
    const first = this.items[this.head];
    if (first === undefined || entry.seq < first.seq) {
      if (this.head > 0) this.items[--this.head] = entry;
      else this.items.unshift(entry);
      return;
    }
    let low = this.head;
    let high = this.items.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if ((this.items[middle] as QueueEntry).seq < entry.seq) low = middle + 1;
      else high = middle;
    }
    this.items.splice(low, 0, entry);
  }
}
