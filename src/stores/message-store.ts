import type { Message } from '../core/message.ts';

/** DI token of the integration's debugging message store (shares its name with the interface). */
export const MessageStore: unique symbol = Symbol.for('interchange.MessageStore');

/** A message as a `storeMessage` step saw it pass. */
export interface StoredMessage {
  readonly message: Message;
  readonly routeId: string;
  readonly stepId: string;
  /** When it passed (epoch ms, the step's scheduler). */
  readonly storedAt: number;
}

/** What `list` returns: the newest first, of one route if named, at most `limit` (default 100). */
export interface MessageStoreQuery {
  readonly routeId?: string;
  readonly limit?: number;
}

/**
 * The EIP book's message store, for debugging: copies of the messages that passed a `storeMessage`
 * step, keyed by message id (a message stored again replaces its entry). Outside every message's
 * guarantee: the step never waits for `add` and a failing `add` is logged, never fails the message.
 * Implementations bound their size themselves.
 */
export interface MessageStore {
  add(entry: StoredMessage): void | Promise<void>;
  get(id: string): StoredMessage | undefined | Promise<StoredMessage | undefined>;
  list(query?: MessageStoreQuery): readonly StoredMessage[] | Promise<readonly StoredMessage[]>;
}

export interface MemoryMessageStoreOptions {
  /** Messages kept (default 1,000); beyond, the oldest stored are forgotten first (a ring). */
  readonly capacity?: number;
}

/**
 * In-process message store: a bounded ring of the last `capacity` messages stored, by id. Messages are
 * immutable, so the entries share them with the route (no copy of the body is made).
 * @example
 * const debug = new MemoryMessageStore({ capacity: 200 });
 * from('amqp:queue/orders').storeMessage({ store: debug }).to('amqp:queue/billing');
 * debug.list({ routeId: 'amqp:queue/orders', limit: 10 });
 */
export class MemoryMessageStore implements MessageStore {
  private readonly entries = new Map<string, StoredMessage>();
  private readonly capacity: number;

  constructor({ capacity = 1_000 }: MemoryMessageStoreOptions = {}) {
    this.capacity = Math.max(1, capacity);
  }

  get size(): number {
    return this.entries.size;
  }

  add(entry: StoredMessage): void {
    this.entries.delete(entry.message.id); // re-inserted last: Map order is storing order
    this.entries.set(entry.message.id, entry);
    if (this.entries.size > this.capacity) {
      const oldest = this.entries.keys().next().value as string;
      this.entries.delete(oldest);
    }
  }

  get(id: string): StoredMessage | undefined {
    return this.entries.get(id);
  }

  list({ routeId, limit = 100 }: MessageStoreQuery = {}): readonly StoredMessage[] {
    const found: StoredMessage[] = [];
    const newestFirst = [...this.entries.values()].reverse();
    for (const entry of newestFirst) {
      if (found.length >= limit) break;
      if (routeId === undefined || entry.routeId === routeId) found.push(entry);
    }
    return found;
  }

  clear(): void {
    this.entries.clear();
  }
}
