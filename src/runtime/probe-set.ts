import type { Message, StepDefinition } from '../core/index.ts';
import type { ExecutionOutcome, RouteProbe } from './route-observer.ts';

/**
 * The probes of one run, sorted by what they observe, so that a run pays only for the hooks its probes
 * have: executions (`begin`/`carry`/`end`, states kept per execution), steps (only of the executions
 * some probe follows), publishes, give-ups. With one execution probe its state is kept as it is, with
 * several in an array (one allocation per message).
 */
export class ProbeSet {
  readonly execution: readonly RouteProbe[];
  readonly publishing: readonly RouteProbe[];
  /** Some probe has `end`: the runtime tells it when each execution ended. */
  readonly timed: boolean;
  /** Some probe has step hooks: the runtime tells them of the steps of the executions they follow. */
  readonly followsSteps: boolean;
  /** What the last `begin` made of its message: the message to carry on, and whether it is followed (no allocation per message). */
  carried: Message | undefined = undefined;
  followed = false;

  constructor(readonly all: readonly RouteProbe[]) {
    this.execution = all.filter((probe) => probe.begin !== undefined || probe.carry !== undefined || probe.end !== undefined || probe.enterStep !== undefined || probe.leaveStep !== undefined);
    this.publishing = all.filter((probe) => probe.publish !== undefined);
    this.timed = this.execution.some((probe) => probe.end !== undefined);
    this.followsSteps = this.execution.some((probe) => probe.enterStep !== undefined || probe.leaveStep !== undefined);
  }

  /** Begins an execution: returns the probes' states; `carried` and `followed` say the rest. */
  begin(received: Message): unknown {
    const probes = this.execution;
    let message = received;
    let followed = false;
    let states: unknown;
    if (probes.length === 1) {
      const probe = probes[0] as RouteProbe;
      states = probe.begin?.(message);
      if (probe.carry !== undefined) message = probe.carry(states, message);
      followed = followsWith(probe, states);
    } else {
      const each: unknown[] = [];
      for (const probe of probes) {
        const state = probe.begin?.(message);
        each.push(state);
        if (probe.carry !== undefined) message = probe.carry(state, message);
        followed ||= followsWith(probe, state);
      }
      states = each;
    }
    this.carried = message;
    this.followed = followed;
    return states;
  }

  enterStep(states: unknown, step: StepDefinition): void {
    const probes = this.execution;
    if (probes.length === 1) probes[0]?.enterStep?.(states, step);
    else for (let index = 0; index < probes.length; index += 1) probes[index]?.enterStep?.((states as unknown[])[index], step);
  }

  leaveStep(states: unknown, step: StepDefinition, durationMs: number | undefined): void {
    const probes = this.execution;
    if (probes.length === 1) probes[0]?.leaveStep?.(states, step, durationMs);
    else for (let index = 0; index < probes.length; index += 1) probes[index]?.leaveStep?.((states as unknown[])[index], step, durationMs);
  }

  end(states: unknown, outcome: ExecutionOutcome, durationMs: number | undefined, error: Error | undefined): void {
    const probes = this.execution;
    if (probes.length === 1) probes[0]?.end?.(states, outcome, durationMs, error);
    else for (let index = 0; index < probes.length; index += 1) probes[index]?.end?.((states as unknown[])[index], outcome, durationMs, error);
  }
}

/** Whether a probe follows (times, and tells of the steps of) an execution it began with `state`. */
function followsWith(probe: RouteProbe, state: unknown): boolean {
  if (probe.enterStep === undefined && probe.leaveStep === undefined && probe.end === undefined) return false;
  return probe.followSteps?.(state) ?? true;
}

/** The probes of a run without observers. */
export const NO_PROBES = new ProbeSet([]);
