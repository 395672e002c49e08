import type { Message } from './message.ts';

/** What a transport (or a pattern) does when a delivery is settled. Called at most once, in total. */
export interface Settle {
  ack(): void;
  nack(reason: Error): void;
}

/**
 * A message travelling through a route, carrying its settlement: the obligation to acknowledge or
 * reject it to whoever delivered it.
 *
 * Contract:
 * - A delivery is settled exactly once: the first `ack`/`nack` wins, later calls are ignored.
 * - `with` passes the same obligation on with a new message (translators); `fork` splits it into
 *   parts whose parent settles once every part has settled — acked if all were acked, else rejected
 *   with the first part's reason; `joinDeliveries` (aggregators) settles all inputs together.
 */
export interface Delivery<T = unknown> {
  readonly message: Message<T>;
  readonly settled: boolean;
  ack(): void;
  nack(reason: Error): void;
  /** The same settlement with another message. */
  with<U>(message: Message<U>): Delivery<U>;
  /** One child delivery per message; this delivery settles when all of them have. */
  fork<U>(messages: readonly Message<U>[]): Delivery<U>[];
}

/**
 * The settle-once state shared by a delivery and every delivery passed on with `with`.
 * Transports and the runtime may extend it (one allocation per message instead of two).
 */
export abstract class Settlement implements Settle {
  settled = false;

  ack(): void {
    if (this.settled) return;
    this.settled = true;
    this.onAck();
  }

  nack(reason: Error): void {
    if (this.settled) return;
    this.settled = true;
    this.onNack(reason);
  }

  protected abstract onAck(): void;
  protected abstract onNack(reason: Error): void;
}

class Forwarding extends Settlement {
  constructor(private readonly target: Settle) {
    super();
  }

  protected onAck(): void {
    this.target.ack();
  }

  protected onNack(reason: Error): void {
    this.target.nack(reason);
  }
}

class DeliveryImpl<T> implements Delivery<T> {
  constructor(
    readonly message: Message<T>,
    private readonly settlement: Settlement,
  ) {}

  get settled(): boolean {
    return this.settlement.settled;
  }

  ack(): void {
    this.settlement.ack();
  }

  nack(reason: Error): void {
    this.settlement.nack(reason);
  }

  with<U>(message: Message<U>): Delivery<U> {
    return new DeliveryImpl(message, this.settlement);
  }

  fork<U>(messages: readonly Message<U>[]): Delivery<U>[] {
    if (messages.length === 0) {
      this.ack();
      return [];
    }
    const group = new ForkGroup(messages.length, this.settlement);
    return messages.map((message) => new DeliveryImpl(message, new Forwarding(group)));
  }
}

/** Counts down the parts of a fork; settles the parent once, after the last part. */
class ForkGroup implements Settle {
  private firstError: Error | undefined;
  constructor(
    private remaining: number,
    private readonly parent: Settlement,
  ) {}

  ack(): void {
    this.partSettled();
  }

  nack(reason: Error): void {
    this.firstError ??= reason;
    this.partSettled();
  }

  private partSettled(): void {
    this.remaining -= 1;
    if (this.remaining > 0) return;
    if (this.firstError === undefined) this.parent.ack();
    else this.parent.nack(this.firstError);
  }
}

/**
 * A delivery whose settlement is `settle`: how transports hand messages to routes. Pass a
 * `Settlement` subclass to save an allocation per message; any other `Settle` is wrapped so it is
 * called at most once.
 * @example createDelivery(message, { ack: () => channel.ack(raw), nack: (e) => channel.nack(raw, false, false) })
 */
export function createDelivery<T>(message: Message<T>, settle: Settle | Settlement): Delivery<T> {
  return new DeliveryImpl(message, settle instanceof Settlement ? settle : new Forwarding(settle));
}

/**
 * One delivery standing for many (aggregators): acking it acks every input, rejecting it rejects
 * every input with the same reason.
 */
export function joinDeliveries<T>(inputs: readonly Delivery<unknown>[], message: Message<T>): Delivery<T> {
  return createDelivery(message, {
    ack: () => {
      for (const input of inputs) input.ack();
    },
    nack: (reason) => {
      for (const input of inputs) input.nack(reason);
    },
  });
}
