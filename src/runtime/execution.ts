import { Settlement, settlementOf, type Delivery, type GaveUpOutcome, type Message } from '../core/index.ts';
import type { ReceiptRequest } from './receipts.ts';
import type { ExecutionOutcome } from './route-observer.ts';

/** What an execution reports its end to: the route that admitted it. */
export interface ExecutionOwner {
  settledOne(run: Run, execution: InFlight, outcome: ExecutionOutcome, error: Error | undefined): void;
}

/**
 * One run of a route, from `start` to `stop`: the deliveries it took and has not settled. A stop whose
 * deadline passes ends the run — its unsettled deliveries go back to the source and leave the count —;
 * a delivery of an ended run settling late changes nothing (neither the source nor a later run's count).
 */
export class Run {
  inFlight = 0;
  ended = false;

  /** Ends the run; returns how many of its deliveries were still unsettled (handed back). */
  end(): number {
    this.ended = true;
    const unsettled = this.inFlight;
    this.inFlight = 0;
    return unsettled;
  }
}

/**
 * Tracks one admitted delivery (a class, not closures: it is allocated per message). With observers,
 * it is also the execution they follow: their states, its start, how it ended.
 */
export class InFlight extends Settlement {
  /** How it ended, where a step said so (filtered, dead-lettered, discarded); an ack without one completed. */
  outcome: ExecutionOutcome | undefined = undefined;
  /** `performance.now()` when the delivery entered its current step (followed executions only). */
  stepStartedAt = 0;
  /** Whether the probes follow this execution step by step (`RouteProbe.followSteps`). */
  followed = false;
  /** Told how the execution ended, before its source is settled (replays). */
  onEnd: ((outcome: ExecutionOutcome) => void) | undefined = undefined;
  /** The sender's receipt request, on a route that opted in to receipts: sent before the source is settled. */
  receipt: ReceiptRequest | undefined = undefined;
  /** Why a step gave up on it (dead-lettered, discarded), for its receipt. */
  reason: string | undefined = undefined;

  constructor(
    private readonly route: ExecutionOwner,
    private readonly run: Run,
    private readonly source: Delivery,
    message: Message,
    /** The execution probes' states: the one state with one probe, else one per probe (see `ProbeSet`). */
    readonly states: unknown,
    /** `performance.now()` at admission when a probe times executions, else 0. */
    readonly startedAt: number,
  ) {
    super(message);
  }

  override get origin(): Message {
    return this.source.origin;
  }

  override noteOutcome(outcome: GaveUpOutcome, reason?: string): void {
    this.outcome = outcome;
    if (this.receipt !== undefined) this.reason = reason;
  }

  protected onAck(): void {
    if (this.run.ended) return; // handed back when its run ended: the source redelivers it
    const outcome = this.outcome ?? 'completed';
    if (this.receipt === undefined) return this.acked(outcome);
    void this.receipt.send(outcome, this.reason).then(() => this.acked(outcome)); // `send` never rejects
  }

  protected onNack(reason: Error): void {
    if (this.run.ended) return;
    if (this.receipt === undefined) return this.nacked(reason);
    void this.receipt.send('rejected', reason.message).then(() => this.nacked(reason));
  }

  private acked(outcome: ExecutionOutcome): void {
    if (this.run.ended) return; // the run ended while the receipt was sent: handed back
    this.route.settledOne(this.run, this, outcome, undefined);
    this.source.ack();
  }

  private nacked(reason: Error): void {
    if (this.run.ended) return;
    this.route.settledOne(this.run, this, 'rejected', reason);
    this.source.nack(reason);
  }
}

/** The execution a delivery belongs to, if it is still the admitted one's own way (not a part of a split). */
export function executionOf(delivery: Delivery): InFlight | undefined {
  const settlement = settlementOf(delivery);
  return settlement instanceof InFlight ? settlement : undefined;
}

/**
 * The execution a delivery belongs to when the probes follow it, else undefined: the boundaries' fast
 * path (two property reads; most deliveries are not followed).
 */
export function followedExecutionOf(delivery: Delivery): InFlight | undefined {
  const root = (delivery as { readonly root?: { readonly followed?: boolean } }).root;
  return root !== undefined && root.followed === true ? (root as InFlight) : undefined;
}

/**
 * Records how the admitted delivery's execution ends, where a step decides it (observers, replays
 * and receipts read it), and why, when its receipt may say so.
 */
export function markOutcome(delivery: Delivery, outcome: GaveUpOutcome, reason?: string): void {
  settlementOf(delivery)?.noteOutcome(outcome, reason);
}
