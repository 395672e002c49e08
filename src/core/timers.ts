import type { SchedulerLike, Subscription } from 'rxjs';

/**
 * Runs `work` after `delay` on `scheduler`, keeping the pending timer in `timers` (so a step can cancel
 * all of them on unsubscribe) and removing it when it fires. Safe with synchronous schedulers, whose
 * work runs before `schedule` returns.
 */
export function scheduleTracked(scheduler: SchedulerLike, timers: Set<Subscription>, delay: number, work: () => void): void {
  let fired = false;
  let timer: Subscription | undefined = undefined;
  timer = scheduler.schedule(() => {
    fired = true;
    if (timer !== undefined) timers.delete(timer);
    work();
  }, delay);
  if (!fired) timers.add(timer);
}
