import { Settlement, settlementOf, type Delivery, type Message } from '../core/index.ts';
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

  protected onAck(): void {
    if (this.run.ended) return; // handed back when its run ended: the source redelivers it
    this.route.settledOne(this.run, this, this.outcome ?? 'completed', undefined);
    this.source.ack();
  }

  protected onNack(reason: Error): void {
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

/** Records how the admitted delivery's execution ends, where a step decides it (observers and replays read it). */
export function markOutcome(delivery: Delivery, outcome: ExecutionOutcome): void {
  const execution = executionOf(delivery);
  if (execution !== undefined) execution.outcome = outcome;
}
