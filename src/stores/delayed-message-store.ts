/**
 * Where a durable delayer keeps the messages it holds (Spring Integration's delayer with a
 * `MessageGroupStore`, Camel's delayer made persistent): written before the source is acked, so the
 * store owns a delayed message until it has been passed on and settled downstream.
 *
 * The model:
 * - A stored message belongs to a delayer `key` (its route and step), is named by its message id
 *   (unique within the key: storing the same id again — a redelivered source — changes nothing) and
 *   carries its due time and the whole message as JSON.
 * - It is **available** from its due time. Claiming it (`claimDue`) counts an attempt and holds it for
 *   the claimer for `leaseMs`: meanwhile nobody else claims it; once the lease ends (the claimer
 *   crashed), it is available again. `remove` ends it (passed on and settled); `release` gives the claim
 *   up early, making it available again at a given time (a retry with backoff).
 * - Times are epoch milliseconds of the callers' clocks (instances need synchronised clocks); among
 *   equal times the order is unspecified.
 *
 * Messages are stored as JSON: bodies and headers must survive `JSON.parse(JSON.stringify(…))`.
 *
 * Implementations: `InMemoryDelayedMessageStore` (here; the reference semantics, for tests and a
 * single process), `PostgresDelayedMessageStore` (`interchange-eip/adapters/postgres`),
 * `RedisDelayedMessageStore` (`interchange-eip/adapters/redis`). All pass the same contract test.
 */

import type { Message } from '../core/message.ts';

/** A message to hold until `dueAt`. */
export interface DelayedMessage<T = unknown> {
  /** The delayer it belongs to (default `<routeId>/<stepId>`); stores keep each key's messages apart. */
  readonly key: string;
  /** Its id names it in the store. */
  readonly message: Message<T>;
  /** When it is due (epoch ms). */
  readonly dueAt: number;
}

/** A stored message as a claim returns it. */
export interface ClaimedDelayedMessage<T = unknown> extends DelayedMessage<T> {
  /** How many times it has been claimed, this claim included (1 on the first); `release` names the claim by it. */
  readonly attempts: number;
}

/**
 * The store SPI of a durable delayer. Every method is atomic on its own; none holds a lock between
 * calls. Errors are the store's own (connection lost…): the delayer treats them as transient.
 */
export interface DelayedMessageStore {
  /** Stores a message; `false` (and nothing changed) when the key already holds one of that id. */
  put(entry: DelayedMessage): Promise<boolean>;
  /**
   * Claims up to `limit` messages of `key` available at `now` (due, not under a live claim), earliest
   * first: each one's `attempts` is incremented and it is held for the caller until `now + leaseMs`.
   * Two callers never claim the same message at once.
   */
  claimDue(key: string, now: number, leaseMs: number, limit: number): Promise<ClaimedDelayedMessage[]>;
  /** When the earliest message of `key` becomes available (its due time or the end of its claim), or undefined when the key holds none. */
  nextAt(key: string): Promise<number | undefined>;
  /** The message was passed on and settled: forget it. Idempotent. */
  remove(key: string, id: string): Promise<void>;
  /** Gives up the claim numbered `attempts` at once: the message is available again at `at`. A message claimed since (another `attempts`) or gone is left as it is. */
  release(key: string, id: string, attempts: number, at: number): Promise<void>;
  /** How many messages `key` holds, claimed or not (metrics, tests). */
  count(key: string): Promise<number>;
  /** Releases the store's connections, if it owns them. Idempotent. */
  close?(): Promise<void>;
}

interface Entry {
  readonly json: string;
  readonly dueAt: number;
  availableAt: number;
  attempts: number;
}

/**
 * The reference implementation, in process memory: the semantics every durable store must match (the
 * contract test runs against it too). Survives nothing; messages are copied through JSON so that one
 * that would not survive a real store fails here as well.
 * @example delay((m) => Number(m.headers.delayMs), { store: new InMemoryDelayedMessageStore() })
 */
export class InMemoryDelayedMessageStore implements DelayedMessageStore {
  private readonly keys = new Map<string, Map<string, Entry>>();

  put({ key, message, dueAt }: DelayedMessage): Promise<boolean> {
    let entries = this.keys.get(key);
    if (entries === undefined) this.keys.set(key, (entries = new Map()));
    if (entries.has(message.id)) return Promise.resolve(false);
    entries.set(message.id, { json: JSON.stringify(message), dueAt, availableAt: dueAt, attempts: 0 });
    return Promise.resolve(true);
  }

  claimDue(key: string, now: number, leaseMs: number, limit: number): Promise<ClaimedDelayedMessage[]> {
    const entries = [...(this.keys.get(key)?.values() ?? [])].filter((entry) => entry.availableAt <= now).sort((a, b) => a.availableAt - b.availableAt);
    return Promise.resolve(
      entries.slice(0, Math.max(0, limit)).map((entry) => {
        entry.attempts += 1;
        entry.availableAt = now + leaseMs;
        return { key, message: JSON.parse(entry.json) as Message, dueAt: entry.dueAt, attempts: entry.attempts };
      }),
    );
  }

  nextAt(key: string): Promise<number | undefined> {
    let next: number | undefined;
    for (const entry of this.keys.get(key)?.values() ?? []) if (next === undefined || entry.availableAt < next) next = entry.availableAt;
    return Promise.resolve(next);
  }

  remove(key: string, id: string): Promise<void> {
    const entries = this.keys.get(key);
    entries?.delete(id);
    if (entries?.size === 0) this.keys.delete(key);
    return Promise.resolve();
  }

  release(key: string, id: string, attempts: number, at: number): Promise<void> {
    const entry = this.keys.get(key)?.get(id);
    if (entry !== undefined && entry.attempts === attempts) entry.availableAt = at;
    return Promise.resolve();
  }

  count(key: string): Promise<number> {
    return Promise.resolve(this.keys.get(key)?.size ?? 0);
  }
}
