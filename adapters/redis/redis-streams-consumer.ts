import type { Redis } from 'ioredis';
import type { Subscriber } from 'rxjs';
import { backoffDelay, redeliveryDecision, Settlement, toError, type Delivery, type Logger, type Message } from '../../src/core/index.ts';
import { deadLetterFields, decodeEntry } from './redis-streams-codec.ts';
import type { RedisStreamTarget } from './redis-streams-endpoint.ts';
import { whileOnline } from './redis-streams-offline.ts';
import { autoclaimReply, claimReply, isNoGroup, pendingCounts, readReply, type RawEntry } from './redis-streams-replies.ts';
import { WakeUp } from './wake-up.ts';

/** The idle time (ms) a handed-back entry gets: past any `minIdleMs`, so the next claim round of any consumer takes it. */
export const HANDED_BACK_IDLE_MS = 100_000_000_000;

export interface GroupConsumerSettings {
  readonly prefetch: number;
  readonly maxDeliveries: number;
  readonly minIdleMs: number;
  readonly claimIntervalMs: number;
  readonly blockMs: number;
  readonly maxMessageBytes: number;
  readonly initialDelayMs: number;
  readonly maxDelayMs: number;
  readonly log: Logger;
}

/** One entry delivered to the route, and its settlement (one allocation per entry). */
class StreamDelivery extends Settlement {
  readonly deliveredAt = Date.now();
  constructor(
    message: Message,
    readonly entryId: string,
    readonly fields: Buffer[],
    readonly attempt: number,
    private readonly consumer: StreamGroupConsumer,
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
 * One `consume` subscription in a consumer group: a loop on a connection of its own (XREADGROUP
 * blocks it), acks, claims and dead letters on the transport's command connection.
 *
 * Contract:
 * - at most `prefetch` entries unsettled: the loop reads `COUNT` = the free slots, never more.
 * - ack → XACK (batched per tick). Settlement after `dispose` is ignored: the entry was handed back.
 * - nack → redelivered at once to this consumer (XCLAIM, delivery count + 1, `attempt` + 1) while
 *   `attempt < maxDeliveries`; at `maxDeliveries`, XADD to the dead-letter stream with the reason,
 *   then XACK, in one MULTI.
 * - on start and after each reconnect, the consumer's own pending list is read again (XREADGROUP
 *   from 0): entries a previous run of the same consumer name left unsettled (a crash), or whose
 *   reply a dropped connection lost, come back; those still held by the route are skipped.
 * - every `claimIntervalMs`: held entries older than `minIdleMs / 2` have their idle time reset (so
 *   no other consumer claims what this one still works on), then XAUTOCLAIM takes entries idle for
 *   `minIdleMs` — a crashed or stopped consumer's.
 * - a re-read or claimed entry delivered more than `maxDeliveries` times without being settled (a
 *   message that crashes its consumer) goes to the dead-letter stream without another delivery; an
 *   entry that cannot be decoded (`RedisStreamsDecodeError`) at once.
 * - `attempt` is Redis's delivery count (XPENDING) for re-read and claimed entries.
 * - `stopIntake` ends the loop (entries read after it are handed back unseen); `dispose` also hands
 *   back every entry still pending for this consumer (XCLAIM `IDLE` far past `minIdleMs`, JUSTID: not
 *   counted), so the next claim round of any consumer — or the next subscription under the same
 *   name — takes them at once. Only while Redis is reachable: when the command connection is not
 *   ready, or drops meanwhile, `dispose` neither waits for the last XACKs nor hands back (commands
 *   wait through an outage: a shutdown would wait for Redis to come back). The entries then stay
 *   pending for this consumer — none lost — and come back after `minIdleMs` (at once to the next
 *   consumer of the same name); XACKs still queued are sent after a reconnect, or dropped with the
 *   connection when the transport closes (those entries are delivered again).
 */
export class StreamGroupConsumer {
  private readonly held = new Map<string, StreamDelivery>();
  private intake = true;
  private disposed = false;
  private groupReady = false;
  private recoverOwn = true;
  private ownCursor = '0';
  private claimCursor = '0-0';
  private nextClaimAt = 0;
  /** Waits for a settlement (a free slot), `stopIntake`, or a delay. */
  private readonly pause = new WakeUp();
  private acks: string[] = [];
  private readonly background = new Set<Promise<unknown>>();
  private readonly group: string;

  constructor(
    private readonly target: RedisStreamTarget,
    readonly name: string,
    private readonly subscriber: Subscriber<Delivery>,
    private readonly command: Redis,
    private readonly blocking: Redis,
    private readonly settings: GroupConsumerSettings,
  ) {
    this.group = target.group as string;
    let first = true;
    blocking.on('ready', () => {
      if (!first) this.recoverOwn = true;
      first = false;
    });
  }

  /** Starts the loop once `after` (a previous subscription's hand-back) has settled. */
  start(after: Promise<unknown>): void {
    void after.then(() => this.run());
  }

  /** Stops taking entries; deliveries already emitted can still be settled. */
  stopIntake(): void {
    this.intake = false;
    this.pause.wake();
  }

  /**
   * Stops for good: closes the loop's connection, then — while Redis is reachable — waits for the last
   * XACKs and hands back every entry still pending for this consumer. Never waits for Redis to come back.
   */
  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.stopIntake();
    this.disposed = true;
    this.blocking.disconnect();
    this.flushAcks();
    this.held.clear();
    try {
      const handedBack = await whileOnline(this.command, async () => {
        await Promise.allSettled([...this.background]);
        const pending = pendingCounts(await this.command.call('XPENDING', this.target.key, this.group, '-', '+', 10_000, this.name));
        await this.handBack([...pending.keys()]);
      });
      if (!handedBack) this.settings.log.warn('redis: unreachable; unsettled entries stay pending and are claimed after minIdleMs', { endpoint: this.target.uri, consumer: this.name });
    } catch (error) {
      this.settings.log.warn('redis: cannot hand back pending entries; they are claimed after minIdleMs', { endpoint: this.target.uri, error: toError(error).message });
    }
  }

  /** @internal */
  ack(delivery: StreamDelivery): void {
    if (this.disposed || this.held.get(delivery.entryId) !== delivery) return;
    this.held.delete(delivery.entryId);
    this.acks.push(delivery.entryId);
    if (this.acks.length === 1) setImmediate(() => this.flushAcks());
    this.pause.wake();
  }

  /** @internal */
  nack(delivery: StreamDelivery, reason: Error): void {
    if (this.disposed || this.held.get(delivery.entryId) !== delivery) return;
    const decision = redeliveryDecision({ attempt: delivery.attempt, maxDeliveries: this.target.maxDeliveries ?? this.settings.maxDeliveries, reason });
    if (decision.action === 'deadLetter') {
      this.held.delete(delivery.entryId);
      this.deadLetter(delivery.entryId, delivery.fields, delivery.attempt, reason.message);
      this.pause.wake();
      return;
    }
    this.track(this.redeliver(delivery));
  }

  /** XCLAIM to this consumer (count + 1) and delivered again, in the same prefetch slot. */
  private async redeliver(delivery: StreamDelivery): Promise<void> {
    const id = delivery.entryId;
    try {
      const [entry] = claimReply(await this.command.callBuffer('XCLAIM', this.target.key, this.group, this.name, 0, id));
      if (this.disposed || this.held.get(id) !== delivery) return;
      if (entry === undefined || entry.fields === null) {
        this.held.delete(id); // deleted or trimmed meanwhile: nothing to redeliver
      } else if (!this.intake) {
        this.held.delete(id);
        await this.handBack([id]);
      } else {
        this.emit(id, entry.fields, delivery.attempt + 1);
        return;
      }
    } catch (error) {
      this.settings.log.warn('redis: cannot redeliver a nacked entry; it is claimed after minIdleMs', { endpoint: this.target.uri, entry: id, error: toError(error).message });
      if (this.held.get(id) === delivery) this.held.delete(id);
    }
    this.pause.wake();
  }

  private async run(): Promise<void> {
    let failures = 0;
    while (this.intake) {
      try {
        if (!this.groupReady) await this.createGroup();
        const free = this.settings.prefetch - this.held.size;
        if (free <= 0) {
          // full: keep what is held from being claimed by others, and wait for a settlement
          if (Date.now() >= this.nextClaimAt) {
            await this.refreshHeld();
            this.nextClaimAt = Date.now() + this.settings.claimIntervalMs;
          } else await this.pause.sleep(this.nextClaimAt - Date.now());
        } else if (this.recoverOwn) await this.readOwn(free);
        else if (Date.now() >= this.nextClaimAt) await this.claimIdle(free);
        else await this.readNew(free, Math.max(1, Math.min(this.settings.blockMs, this.nextClaimAt - Date.now())));
        failures = 0;
      } catch (error) {
        if (!this.intake) break;
        if (isNoGroup(error)) this.groupReady = false;
        this.settings.log.warn('redis: stream consumer failed; retrying', { endpoint: this.target.uri, error: toError(error).message });
        await this.pause.sleep(backoffDelay(failures++, { initialMs: this.settings.initialDelayMs, maxMs: this.settings.maxDelayMs }));
      }
    }
    if (!this.disposed) this.blocking.disconnect();
  }

  private async createGroup(): Promise<void> {
    try {
      await this.blocking.call('XGROUP', 'CREATE', this.target.key, this.group, this.target.start, 'MKSTREAM');
    } catch (error) {
      if (!(error instanceof Error && error.message.startsWith('BUSYGROUP'))) throw error;
    }
    this.groupReady = true;
  }

  /** One page of this consumer's own pending list; done (and the cursor back at 0) once a page comes back empty. */
  private async readOwn(free: number): Promise<void> {
    const page = readReply(await this.blocking.callBuffer('XREADGROUP', 'GROUP', this.group, this.name, 'COUNT', free, 'STREAMS', this.target.key, this.ownCursor));
    if (page.length === 0) {
      this.recoverOwn = false;
      this.ownCursor = '0';
      return;
    }
    this.ownCursor = (page[page.length - 1] as RawEntry).id;
    await this.deliverCounted(page.filter((entry) => !this.held.has(entry.id)));
  }

  /** Resets the idle time of long-held entries, then claims entries idle past `minIdleMs` (one page per call). */
  private async claimIdle(free: number): Promise<void> {
    const minIdleMs = this.target.minIdleMs ?? this.settings.minIdleMs;
    if (this.claimCursor === '0-0') await this.refreshHeld();
    const { cursor, claimed } = autoclaimReply(await this.blocking.callBuffer('XAUTOCLAIM', this.target.key, this.group, this.name, minIdleMs, this.claimCursor, 'COUNT', free));
    this.claimCursor = cursor;
    if (cursor === '0-0') this.nextClaimAt = Date.now() + this.settings.claimIntervalMs;
    await this.deliverCounted(claimed.filter((entry) => !this.held.has(entry.id)));
  }

  /** Resets the idle time of entries the route has held for over `minIdleMs / 2` (XCLAIM JUSTID: not counted as a delivery). */
  private async refreshHeld(): Promise<void> {
    const old = Date.now() - (this.target.minIdleMs ?? this.settings.minIdleMs) / 2;
    const refresh: string[] = [];
    for (const delivery of this.held.values()) if (delivery.deliveredAt < old) refresh.push(delivery.entryId);
    if (refresh.length > 0) await this.command.call('XCLAIM', this.target.key, this.group, this.name, 0, ...refresh, 'JUSTID');
  }

  private async readNew(free: number, blockMs: number): Promise<void> {
    const entries = readReply(await this.blocking.callBuffer('XREADGROUP', 'GROUP', this.group, this.name, 'COUNT', free, 'BLOCK', blockMs, 'STREAMS', this.target.key, '>'));
    if (!this.intake) {
      await this.handBack(entries.map((entry) => entry.id));
      return;
    }
    for (const entry of entries) if (entry.fields !== null) this.emit(entry.id, entry.fields, 1);
  }

  /** Re-read or claimed entries: their delivery counts from XPENDING, then delivered or dead-lettered. */
  private async deliverCounted(entries: readonly RawEntry[]): Promise<void> {
    if (entries.length === 0) return;
    const gone = entries.filter((entry) => entry.fields === null).map((entry) => entry.id);
    if (gone.length > 0) this.track(this.command.call('XACK', this.target.key, this.group, ...gone)); // deleted since: nothing to deliver
    const live = entries.filter((entry) => entry.fields !== null);
    if (live.length === 0) return;
    const counts = pendingCounts(await this.command.call('XPENDING', this.target.key, this.group, (live[0] as RawEntry).id, (live[live.length - 1] as RawEntry).id, live.length + this.held.size, this.name));
    if (!this.intake) {
      await this.handBack(live.map((entry) => entry.id));
      return;
    }
    const maxDeliveries = this.target.maxDeliveries ?? this.settings.maxDeliveries;
    for (const entry of live) {
      const attempt = counts.get(entry.id) ?? 1;
      if (attempt > maxDeliveries) this.deadLetter(entry.id, entry.fields as Buffer[], attempt - 1, `delivered ${attempt - 1} time(s) without being settled (its consumer crashed or stopped each time); maxDeliveries is ${maxDeliveries}`);
      else this.emit(entry.id, entry.fields as Buffer[], attempt);
    }
  }

  private emit(entryId: string, fields: Buffer[], attempt: number): void {
    let message: Message;
    try {
      message = decodeEntry(fields, { key: this.target.key, entryId, attempt }, this.target.inbound, this.settings.maxMessageBytes);
    } catch (error) {
      this.held.delete(entryId);
      this.settings.log.error('redis: undecodable entry moved to the dead-letter stream', { endpoint: this.target.uri, entry: entryId, error: toError(error).message });
      this.deadLetter(entryId, fields, attempt, toError(error).message);
      return;
    }
    const delivery = new StreamDelivery(message, entryId, fields, attempt, this);
    this.held.set(entryId, delivery);
    this.subscriber.next(delivery);
  }

  /** XADD to the dead-letter stream and XACK, in one MULTI. On failure the entry stays pending: claimed again later. */
  private deadLetter(entryId: string, fields: readonly Buffer[], attempt: number, reason: string): void {
    this.settings.log.warn('redis: entry moved to the dead-letter stream', { endpoint: this.target.uri, entry: entryId, deadLetter: this.target.deadLetterKey, attempt, reason });
    const moved = this.command
      .multi()
      .call('XADD', this.target.deadLetterKey, '*', ...deadLetterFields(fields, { key: this.target.key, entryId, attempt }, reason))
      .call('XACK', this.target.key, this.group, entryId)
      .exec()
      .then((results) => {
        const failed = results?.find(([error]) => error !== null)?.[0];
        if (failed !== undefined && failed !== null) throw failed;
      });
    this.track(
      moved.catch((error: unknown) => this.settings.log.error('redis: cannot dead-letter an entry; it stays pending and is claimed again', { endpoint: this.target.uri, entry: entryId, error: toError(error).message })),
    );
  }

  private flushAcks(): void {
    if (this.acks.length === 0) return;
    const ids = this.acks;
    this.acks = [];
    this.track(
      this.command.call('XACK', this.target.key, this.group, ...ids).catch((error: unknown) => {
        this.settings.log.warn('redis: XACK failed; the entries are delivered again after minIdleMs', { endpoint: this.target.uri, count: ids.length, error: toError(error).message });
      }),
    );
  }

  /** Makes pending entries claimable at once by anyone (idle far past `minIdleMs`), without counting a delivery. */
  private async handBack(ids: readonly string[]): Promise<void> {
    for (let from = 0; from < ids.length; from += 1_000) {
      await this.command.call('XCLAIM', this.target.key, this.group, this.name, 0, ...ids.slice(from, from + 1_000), 'IDLE', HANDED_BACK_IDLE_MS, 'JUSTID');
    }
  }

  private track(work: Promise<unknown>): void {
    this.background.add(work);
    void work.finally(() => this.background.delete(work));
  }
}
