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
  /**
   * Set by a transport on a message it could not take whole (over its size limit, undecodable): the
   * route runs no step on it and hands it, with this error, to its error handler at the pseudo-step
   * `intake` (a permanent error is dead-lettered; a route without a dead-letter channel rejects it).
   */
  readonly intakeError?: Error | undefined;
  /**
   * The message as the route's source delivered it, before any step changed it (Camel's original
   * message): what an error handler with `prepareDeadLetter` can dead-letter instead of the failed one.
   */
  readonly origin: Message;
  ack(): void;
  nack(reason: Error): void;
  /** The same settlement with another message. */
  with<U>(message: Message<U>): Delivery<U>;
  /** One child delivery per message; this delivery settles when all of them have. */
  fork<U>(messages: readonly Message<U>[]): Delivery<U>[];
}

/**
 * A delivery that carries its own settle-once state: the root of every chain of `with`/`fork`.
 * Transports and the runtime extend it (one allocation per message: the delivery is its settlement).
 */
/** How a step let a message go without passing it on (see `Settlement.noteOutcome`). */
export type GaveUpOutcome = 'filtered' | 'dead-lettered' | 'discarded';

export abstract class Settlement<T = unknown> implements Delivery<T> {
  settled = false;

  constructor(readonly message: Message<T>) {}

  get origin(): Message {
    return this.message;
  }

  /** The settlement this delivery passes on: itself (see `settlementOf`). */
  get root(): Settlement<unknown> {
    return this;
  }

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

  with<U>(message: Message<U>): Delivery<U> {
    return new Derived(message, this);
  }

  fork<U>(messages: readonly Message<U>[]): Delivery<U>[] {
    return forkOf(this, messages);
  }

  /**
   * Told, just before it is acked, why a step let the message go without passing it on (`filtered`,
   * `dead-lettered`, `discarded`) — an ack alone cannot say. The route's execution records it for its
   * observers and receipts; a pattern's own settlement (a circuit breaker's call) may count it as a
   * failure and tell its source. Default: nothing.
   */
  noteOutcome(_outcome: GaveUpOutcome, _reason?: string): void {
    // a plain settlement has no use for it
  }

  protected abstract onAck(): void;
  protected abstract onNack(reason: Error): void;
}

/** A delivery passed on with `with`: another message, the root's settlement. */
class Derived<T> implements Delivery<T> {
  constructor(
    readonly message: Message<T>,
    readonly root: Settlement<unknown>,
  ) {}

  get settled(): boolean {
    return this.root.settled;
  }

  get origin(): Message {
    return this.root.origin;
  }

  ack(): void {
    this.root.ack();
  }

  nack(reason: Error): void {
    this.root.nack(reason);
  }

  with<U>(message: Message<U>): Delivery<U> {
    return new Derived(message, this.root);
  }

  fork<U>(messages: readonly Message<U>[]): Delivery<U>[] {
    return forkOf(this.root, messages);
  }
}

/**
 * The settlement a delivery passes on (`with` keeps it; `fork` makes one per part): the identity of
 * one message's way through a route, for observers (metrics, traces) that follow it step by step.
 * Undefined for a delivery of another implementation.
 */
export function settlementOf(delivery: Delivery): Settlement | undefined {
  return delivery instanceof Settlement || delivery instanceof Derived ? delivery.root : undefined;
}

/** Settles through a plain `Settle` target. */
class Forwarding<T> extends Settlement<T> {
  constructor(
    message: Message<T>,
    private readonly target: Settle,
    private readonly originMessage: Message = message,
  ) {
    super(message);
  }

  override get origin(): Message {
    return this.originMessage;
  }

  protected onAck(): void {
    this.target.ack();
  }

  protected onNack(reason: Error): void {
    this.target.nack(reason);
  }
}

function forkOf<U>(parent: Settlement<unknown>, messages: readonly Message<U>[]): Delivery<U>[] {
  if (messages.length === 0) {
    parent.ack();
    return [];
  }
  const group = new ForkGroup(messages.length, parent);
  const origin = parent.origin;
  return messages.map((message) => new Forwarding(message, group, origin));
}

/** Counts down the parts of a fork; settles the parent once, after the last part. */
class ForkGroup implements Settle {
  private firstError: Error | undefined;
  constructor(
    private remaining: number,
    private readonly parent: Settlement<unknown>,
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
 * A delivery whose settlement is `settle` (called at most once): how transports hand messages to
 * routes. On a hot path, extend `Settlement` instead and emit the instance itself. A pattern that
 * wraps a delivery's settlement passes on its `origin` (the message as the source delivered it).
 * @example createDelivery(message, { ack: () => channel.ack(raw), nack: (e) => channel.nack(raw, false, false) })
 */
export function createDelivery<T>(message: Message<T>, settle: Settle, origin: Message = message): Delivery<T> {
  return new Forwarding(message, settle, origin);
}

/**
 * A delivery of `message` that settles `source` and then runs `after` — for a pattern that must know
 * when what it passed on settled (a stage freeing a slot, a claim check removing its claim) — and
 * tells `source`'s settlement why a later step let the message go (`noteOutcome`), so the route's
 * execution, receipts and replays still see it. Keeps `source`'s `origin`.
 * @example emit(relayDelivery(delivery, restored, { ack: () => removeClaim(id) }))
 */
export function relayDelivery<T>(source: Delivery, message: Message<T>, after: { readonly ack?: () => void; readonly nack?: (reason: Error) => void } = {}): Delivery<T> {
  return new Relayed(source, message, after);
}

class Relayed<T> extends Settlement<T> {
  constructor(
    private readonly source: Delivery,
    message: Message<T>,
    private readonly after: { readonly ack?: () => void; readonly nack?: (reason: Error) => void },
  ) {
    super(message);
  }

  override get origin(): Message {
    return this.source.origin;
  }

  override noteOutcome(outcome: GaveUpOutcome, reason?: string): void {
    settlementOf(this.source)?.noteOutcome(outcome, reason);
  }

  protected onAck(): void {
    this.source.ack();
    this.after.ack?.();
  }

  protected onNack(reason: Error): void {
    this.source.nack(reason);
    this.after.nack?.(reason);
  }
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
