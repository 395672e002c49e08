// CPU time of a process, read from /proc the way the bench-peers harness's cpu-rounds.sh reads it.
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

const TICKS_PER_SECOND = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;

/** The fields of /proc/<pid>/stat after the command name (the first is the state, field 3); undefined once the process is gone. */
function statFields(pid: number): string[] | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(') ') + 2).split(' ');
  } catch {
    return undefined;
  }
}

/** A child of `parent` (the first found in /proc), or undefined. */
export function childOf(parent: number): number | undefined {
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    if (statFields(Number(entry))?.[1] === String(parent)) return Number(entry);
  }
  return undefined;
}

/** utime + stime of `pid` (all its threads), in seconds; undefined once it is gone. */
export function cpuSeconds(pid: number): number | undefined {
  const fields = statFields(pid);
  if (fields === undefined) return undefined;
  return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
}

/**
 * Follows the first child of `parent` (bridge-load's bridge) every `intervalMs` and keeps its last CPU
 * reading: the one taken just before it exits (the bridge is idle then: bridge-load sends SIGTERM once
 * the load is done). `stop()` ends the sampling and returns that reading in seconds (NaN if no child was
 * seen); `kill()` sends the child SIGKILL (for a run that timed out: the bridge would outlive its parent).
 */
export function sampleChildCpu(parent: number, intervalMs = 50): { stop(): number; kill(): void } {
  let child: number | undefined;
  let last = Number.NaN;
  const sample = (): void => {
    child ??= childOf(parent);
    if (child === undefined) return;
    const seconds = cpuSeconds(child);
    if (seconds !== undefined) last = seconds;
  };
  const timer = setInterval(sample, intervalMs);
  return {
    stop: () => {
      clearInterval(timer);
      return last;
    },
    kill: () => {
      if (child === undefined) return;
      try {
        process.kill(child, 'SIGKILL');
      } catch {
        // already gone
      }
    },
  };
}
