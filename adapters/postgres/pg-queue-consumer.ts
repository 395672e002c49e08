import type { Subscriber } from 'rxjs';
import { backoffDelay, isPermanentFailure, Settlement, toError, type Delivery, type Logger, type Message } from '../../src/core/index.ts';
import { decodePgQueueRow, type PgQueueClaimedRow } from './pg-queue-codec.ts';
import type { PgQueueTarget } from './pg-queue-endpoint.ts';
import type { PgQueueClaim, PgQueueStore } from './pg-queue-store.ts';

/** One claimed row handed to a route, and its settlement (one allocation per message). */
class PgQueueDelivery extends Settlement implements PgQueueClaim {
  constructor(
    message: Message,
    readonly rowId: string,
    readonly deliveries: number,
    private readonly consumer: PgQueueConsumer,
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

export interface PgQueueConsumerSettings {
  readonly prefetch: number;
  readonly maxDeliveries: number;
  readonly visibilityTimeoutMs: number;
  readonly pollIntervalMs: number;
  readonly claimBatch: number;
  readonly redelivery: { readonly initialMs: number; readonly maxMs: number };
  readonly maxMessageBytes: number;
  readonly channel: string;
  readonly log: Logger;
  /** Keeps a settlement statement in sight of the transport's `close` (which waits for it). */
  readonly track: (work: Promise<unknown>) => void;
  /** Whether the transport is closed: settlement statements are no longer retried. */
  readonly closed: () => boolean;
  /** Told whether the last statement reached the database (the transport's status). */
  readonly reachable: (ok: boolean, error?: Error) => void;
}

/**
 * One `consume` subscription of a `pgqueue:` queue: a claim loop and the settlement of what it claimed.
 *
 * Contract:
 * - at most `prefetch` deliveries unsettled; claims (`claimBatch` rows at most) run one at a time,
 *   at once while they come back full, on a `NOTIFY` of the queue's channel, after a settlement freed
 *   room, when a nacked message's backoff ends, and every `pollIntervalMs` otherwise; a failed claim
 *   is retried with backoff (the link is down: nothing is lost, the rows stay in the table).
 * - ack: the row is deleted (acks of one tick go in one statement: the next claim's when the consumer
 *   claims right after them, else their own); nack: it is visible again after
 *   `backoffDelay(deliveries - 1, redelivery)` with `last_error`, or, once delivered `maxDeliveries`
 *   times or for a permanent reason, moved to the dead-letter table with the reason. A row claimed
 *   for the `maxDeliveries + 1`-th time (its leases ran out: a consumer died holding it, each time) is
 *   dead-lettered without being delivered, as is a row that cannot be decoded.
 * - leases of held deliveries are extended every third of the visibility timeout, so only a dead
 *   consumer's (or a cut link's) messages come back, after the timeout.
 * - every statement is bounded by the store (`statementTimeoutMs`): one that gets no answer (a silent
 *   link) fails like a lost link, so a hung claim or ack flush never stops the loop or later acks.
 * - `stopIntake`: no more claims (rows claimed meanwhile are handed back, uncounted); emitted
 *   deliveries can still be settled. `dispose`: hands every unsettled delivery back at once
 *   (visible again, its delivery counted: `attempt` + 1 next time); settling one later is ignored.
 */
export class PgQueueConsumer {
  private readonly unsettled = new Set<PgQueueDelivery>();
  private intake = true;
  private disposed = false;
  private woken = false;
  private wake: (() => void) | undefined;
  private pendingAcks: PgQueueDelivery[] = [];
  private flushing = false;
  private leaseTimer: NodeJS.Timeout | undefined;
  private readonly timers = new Set<NodeJS.Timeout>();
  /** The lease of a claim: the endpoint's visibility timeout, else the transport's. */
  private readonly visibilityMs: number;

  constructor(
    private readonly target: PgQueueTarget,
    private readonly subscriber: Subscriber<Delivery>,
    private readonly store: PgQueueStore,
    private readonly settings: PgQueueConsumerSettings,
  ) {
    this.visibilityMs = target.visibilityTimeoutMs ?? settings.visibilityTimeoutMs;
  }

  /** Starts claiming (and extending leases). */
  start(): void {
    this.leaseTimer = setInterval(() => this.extendLeases(), Math.max(50, Math.floor(this.visibilityMs / 3)));
    this.leaseTimer.unref();
    void this.loop();
  }

  /** Something may be waiting: claim now (a `NOTIFY`, a backoff that ended). */
  notify(): void {
    this.woken = true;
    this.wake?.();
  }

  /** Stops claiming; emitted deliveries can still be settled. */
  stopIntake(): void {
    this.intake = false;
    this.wake?.();
  }

  /** Stops for good and hands every unsettled delivery back (see the class contract). */
  dispose(): void {
    if (this.disposed) return;
    this.stopIntake();
    this.disposed = true;
    if (this.leaseTimer !== undefined) clearInterval(this.leaseTimer);
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    const held = [...this.unsettled];
    this.unsettled.clear();
    if (held.length > 0) this.settle('hand back', () => this.store.release(this.target.queue, held, this.settings.channel));
    this.flushAcks();
  }

  /** @internal */
  ack(delivery: PgQueueDelivery): void {
    if (!this.unsettled.delete(delivery)) return; // handed back already
    this.pendingAcks.push(delivery);
    if (this.pendingAcks.length === 1) setImmediate(() => this.flushAcks());
    this.notify();
  }

  /** @internal */
  nack(delivery: PgQueueDelivery, reason: Error): void {
    if (!this.unsettled.delete(delivery)) return;
    const { maxDeliveries, redelivery, channel, log } = this.settings;
    const max = this.target.maxDeliveries ?? maxDeliveries;
    if (isPermanentFailure(reason) || delivery.deliveries >= max) {
      const why = `${isPermanentFailure(reason) ? 'permanent failure' : `nacked on delivery ${delivery.deliveries} of ${max}`}: ${describe(reason)}`;
      log.warn('pgqueue: message moved to the dead-letter table', { endpoint: this.target.uri, id: delivery.message.id, attempt: delivery.deliveries, reason: reason.message });
      this.settle('dead-letter', () => this.store.deadLetter(this.target.queue, delivery, why));
    } else {
      const delayMs = backoffDelay(delivery.deliveries - 1, redelivery);
      this.settle('nack', () => this.store.release(this.target.queue, [delivery], channel, { delayMs, error: describe(reason) }));
      if (!this.disposed) {
        const timer = setTimeout(() => {
          this.timers.delete(timer);
          this.notify();
        }, delayMs + 5);
        timer.unref();
        this.timers.add(timer);
      }
    }
    this.notify();
  }

  private async loop(): Promise<void> {
    const { prefetch, claimBatch, pollIntervalMs, maxMessageBytes, log } = this.settings;
    let failures = 0;
    while (this.intake) {
      const room = prefetch - this.unsettled.size;
      if (room <= 0) {
        this.woken = false; // a settlement wakes it
        await this.sleep(pollIntervalMs);
        continue;
      }
      this.woken = false;
      const limit = Math.min(room, claimBatch);
      // the acks waiting for their flush go with the claim (one statement per batch when busy)
      const acks = this.pendingAcks.splice(0);
      let rows: PgQueueClaimedRow[];
      try {
        rows = await this.store.claim(this.target.queue, limit, this.visibilityMs, maxMessageBytes, acks);
        failures = 0;
        this.settings.reachable(true);
      } catch (thrown) {
        if (acks.length > 0) {
          this.pendingAcks.unshift(...acks);
          this.flushAcks();
        }
        if (!this.intake) break; // stopped (or the transport closed) while claiming: nothing to retry
        const error = toError(thrown);
        this.settings.reachable(false, error);
        const delay = backoffDelay(failures++, { initialMs: 100, maxMs: 5_000 });
        log.warn('pgqueue: claim failed, retrying', { endpoint: this.target.uri, retryInMs: delay, error: error.message });
        await this.sleep(delay);
        continue;
      }
      this.emit(rows);
      if (rows.length >= limit || this.woken) continue;
      await this.sleep(pollIntervalMs);
    }
  }

  /** Hands claimed rows to the subscriber in id order (dead-lettering what cannot be delivered); gives back what intake stopped for. */
  private emit(rows: readonly PgQueueClaimedRow[]): void {
    const max = this.target.maxDeliveries ?? this.settings.maxDeliveries;
    for (const [index, row] of rows.entries()) {
      if (!this.intake) {
        const rest = rows.slice(index).map((left) => ({ rowId: left.id, deliveries: left.deliveries }));
        this.settle('hand back', () => this.store.release(this.target.queue, rest, this.settings.channel, { undo: true }));
        return;
      }
      const claim = { rowId: row.id, deliveries: row.deliveries };
      if (row.deliveries > max) {
        this.settings.log.warn('pgqueue: message delivered too often without being settled (its consumers died or lost their link): moved to the dead-letter table', { endpoint: this.target.uri, row: row.id, deliveries: row.deliveries - 1 });
        this.settle('dead-letter', () => this.store.deadLetter(this.target.queue, claim, `delivered ${row.deliveries - 1} times, never settled (the lease ran out each time)`));
        continue;
      }
      let message: Message;
      try {
        message = decodePgQueueRow(row, this.settings.maxMessageBytes);
      } catch (error) {
        this.settings.log.error('pgqueue: undecodable message moved to the dead-letter table', { endpoint: this.target.uri, error: toError(error).message });
        this.settle('dead-letter', () => this.store.deadLetter(this.target.queue, claim, `undecodable: ${toError(error).message}`));
        continue;
      }
      const delivery = new PgQueueDelivery(message, row.id, row.deliveries, this);
      this.unsettled.add(delivery);
      this.subscriber.next(delivery);
    }
  }

  /** Deletes the acks of the last tick in one statement; one flush at a time, retried while the lease may still hold. */
  private flushAcks(): void {
    if (this.flushing || this.pendingAcks.length === 0) return;
    this.flushing = true;
    const work = (async () => {
      while (this.pendingAcks.length > 0) {
        const batch = this.pendingAcks;
        this.pendingAcks = [];
        await this.withRetry('ack', () => this.store.ack(this.target.queue, batch));
      }
      this.flushing = false;
    })();
    this.settings.track(work);
  }

  private extendLeases(): void {
    if (this.disposed || this.unsettled.size === 0) return;
    this.settle('lease extension', () => this.store.extend(this.target.queue, [...this.unsettled], this.visibilityMs));
  }

  /** Runs a settlement statement, tracked by the transport, retried across a short outage. */
  private settle(what: string, statement: () => Promise<unknown>): void {
    this.settings.track(this.withRetry(what, statement));
  }

  /**
   * Retries a statement with backoff for up to the visibility timeout: after it, the lease has run out
   * and the message comes back anyway (a duplicate, never a loss). Never rejects.
   */
  private async withRetry(what: string, statement: () => Promise<unknown>): Promise<void> {
    const deadline = Date.now() + this.visibilityMs;
    for (let attempt = 0; ; attempt += 1) {
      try {
        await statement();
        this.settings.reachable(true);
        return;
      } catch (thrown) {
        const error = toError(thrown);
        this.settings.reachable(false, error);
        const delay = backoffDelay(attempt, { initialMs: 50, maxMs: 2_000 });
        if (Date.now() + delay > deadline || this.settings.closed()) {
          this.settings.log.warn(`pgqueue: ${what} failed; the message comes back when its lease runs out`, { endpoint: this.target.uri, error: error.message });
          return;
        }
        await new Promise((resolve) => setTimeout(resolve, delay).unref());
      }
    }
  }

  /** Waits `ms`, or less when woken; returns at once if woken meanwhile. */
  private sleep(ms: number): Promise<void> {
    if (!this.intake || this.woken) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(() => this.wake?.(), ms);
      this.wake = () => {
        clearTimeout(timer);
        this.wake = undefined;
        resolve();
      };
    });
  }
}

function describe(error: Error): string {
  const code = (error as { code?: unknown }).code;
  return `${typeof code === 'string' ? `${code}: ` : ''}${error.message}`.slice(0, 4000);
}
