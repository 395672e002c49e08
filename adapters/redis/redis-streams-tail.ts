import type { Redis } from 'ioredis';
import type { Subscriber } from 'rxjs';
import { backoffDelay, Settlement, toError, type Delivery, type Logger, type Message } from '../../src/core/index.ts';
import { decodeEntry } from './redis-streams-codec.ts';
import type { RedisStreamTarget } from './redis-streams-endpoint.ts';
import { readReply } from './redis-streams-replies.ts';
import { WakeUp } from './wake-up.ts';

export interface StreamTailSettings {
  readonly prefetch: number;
  readonly blockMs: number;
  readonly maxMessageBytes: number;
  readonly initialDelayMs: number;
  readonly maxDelayMs: number;
  readonly log: Logger;
}

/** An entry read without a group: settling it only frees its prefetch slot. */
class TailDelivery extends Settlement {
  constructor(
    message: Message,
    private readonly tail: StreamTail,
  ) {
    super(message);
  }

  protected onAck(): void {
    this.tail.settled();
  }

  protected onNack(reason: Error): void {
    this.tail.settled(this.message, reason);
  }
}

/**
 * One `consume` subscription without a group (`redis:stream/<key>`): publish-subscribe, at most once.
 * XREAD on a connection of its own from the stream's last entry at subscription (`start=$`, the
 * default) or its first (`start=0`), then from the last entry read.
 *
 * Contract: every subscriber reads every entry added after it subscribed (while the stream still
 * holds it: trimming can outrun a slow subscriber). At most `prefetch` deliveries unsettled: the
 * stream itself is the buffer, so a slow route loses nothing while it stays subscribed. Redis keeps
 * no record of a reader without a group, so settling does nothing but free the slot: a nack is
 * logged and the entry is not delivered again; a new subscription (a restart) starts from `$` again,
 * and whatever was added in between is not read. An entry that cannot be decoded is logged and skipped.
 */
export class StreamTail {
  private unsettled = 0;
  private intake = true;
  /** Waits for a settlement (a free slot), `stopIntake`, or a delay. */
  private readonly pause = new WakeUp();

  constructor(
    private readonly target: RedisStreamTarget,
    private readonly subscriber: Subscriber<Delivery>,
    private readonly blocking: Redis,
    private readonly settings: StreamTailSettings,
  ) {}

  start(): void {
    void this.run();
  }

  stopIntake(): void {
    this.intake = false;
    this.pause.wake();
  }

  dispose(): void {
    this.stopIntake();
    this.blocking.disconnect();
  }

  /** @internal */
  settled(message?: Message, reason?: Error): void {
    this.unsettled -= 1;
    if (reason !== undefined) this.settings.log.warn('redis: delivery nacked on a stream read without a group: not delivered again (at most once)', { endpoint: this.target.uri, id: message?.id, reason: reason.message });
    this.pause.wake();
  }

  private async run(): Promise<void> {
    let failures = 0;
    let last: string | undefined;
    while (this.intake) {
      try {
        last ??= this.target.start === '0' ? '0-0' : await this.lastEntryId();
        const free = this.settings.prefetch - this.unsettled;
        if (free <= 0) {
          await this.pause.sleep();
          continue;
        }
        const entries = readReply(await this.blocking.callBuffer('XREAD', 'COUNT', free, 'BLOCK', this.settings.blockMs, 'STREAMS', this.target.key, last));
        failures = 0;
        for (const entry of entries) {
          last = entry.id;
          if (!this.intake || entry.fields === null) continue;
          let message: Message;
          try {
            message = decodeEntry(entry.fields, { key: this.target.key, entryId: entry.id, attempt: 1 }, this.target.inbound, this.settings.maxMessageBytes);
          } catch (error) {
            this.settings.log.error('redis: undecodable entry skipped', { endpoint: this.target.uri, entry: entry.id, error: toError(error).message });
            continue;
          }
          this.unsettled += 1;
          this.subscriber.next(new TailDelivery(message, this));
        }
      } catch (error) {
        if (!this.intake) break;
        this.settings.log.warn('redis: stream reader failed; retrying', { endpoint: this.target.uri, error: toError(error).message });
        await this.pause.sleep(backoffDelay(failures++, { initialMs: this.settings.initialDelayMs, maxMs: this.settings.maxDelayMs }));
      }
    }
  }

  /** The id of the stream's last entry now (`0-0` for an empty or absent stream): `$` made concrete, so nothing added between two reads is missed. */
  private async lastEntryId(): Promise<string> {
    const [entry] = (await this.blocking.call('XREVRANGE', this.target.key, '+', '-', 'COUNT', 1)) as [string, unknown][];
    return entry === undefined ? '0-0' : entry[0];
  }
}
