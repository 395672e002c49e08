import type { VirtualTimeScheduler } from 'rxjs';

const turns = async (count = 3): Promise<void> => {
  for (let turn = 0; turn < count; turn += 1) await new Promise<void>((resolve) => setImmediate(resolve));
};

/**
 * Runs virtual time one due instant at a time, letting promises run in between (so work continued
 * after a timer sees the clock of that timer), until `done` holds or nothing is scheduled any more.
 */
export async function runUntil(scheduler: VirtualTimeScheduler, done: () => boolean, maxSteps = 1_000): Promise<void> {
  for (let step = 0; step < maxSteps; step += 1) {
    await turns();
    if (done()) return;
    const next = scheduler.actions[0];
    if (next === undefined) {
      await turns(); // a last chance for promise chains that schedule nothing
      if (done() || scheduler.actions.length === 0) return;
      continue;
    }
    scheduler.maxFrames = next.delay;
    scheduler.flush();
  }
}

/** A promise resolved after `ms` of virtual time. */
export function virtualDelay(scheduler: VirtualTimeScheduler, ms: number): Promise<void> {
  return new Promise((resolve) => scheduler.schedule(() => resolve(), ms));
}
