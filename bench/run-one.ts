// Runs one benchmark variant in this process and prints its result as JSON (peak RSS is per process).
import { forLoop, interchangeRoute, plainRx, readings, type RunResult } from './core-route.ts';

const [variant = '', countText = '1000000', repeatText = '3'] = process.argv.slice(2);
const bodies = readings(Number(countText));
const runs: RunResult[] = [];
for (let i = 0; i < Number(repeatText); i += 1) {
  if (variant === 'for-loop') runs.push(forLoop(bodies));
  else if (variant === 'rxjs') runs.push(plainRx(bodies));
  else if (variant === 'interchange') runs.push(await interchangeRoute(bodies));
  else if (variant === 'interchange-validate') runs.push(await interchangeRoute(bodies, { validate: true }));
  else if (variant === 'interchange-with-creation') runs.push(await interchangeRoute(bodies, { createMessages: 'timed' }));
  else throw new Error(`unknown variant '${variant}'`);
}
const best = runs.reduce((a, b) => (b.perSecond > a.perSecond ? b : a));
process.stdout.write(`${JSON.stringify({ ...best, runs: runs.map((r) => Math.round(r.perSecond)), peakRssMb: Math.round(process.resourceUsage().maxRSS / 1024) })}\n`);
