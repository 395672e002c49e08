import { VirtualTimeScheduler } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { RateLimitedLog } from '../../src/core/rate-limited-log.ts';
import type { Logger } from '../../facade/index.ts';

type Line = [message: string, fields: Readonly<Record<string, unknown>> | undefined];

function recordingLogger(): Logger & { readonly lines: Line[] } {
  const lines: Line[] = [];
  const record = (message: string, fields?: Readonly<Record<string, unknown>>): void => void lines.push([message, fields]);
  return { lines, info: record, warn: record, error: record };
}

/** A limiter on virtual time: 3 lines per key per 60 s. */
function limiter(): { log: ReturnType<typeof recordingLogger>; warnings: RateLimitedLog; scheduler: VirtualTimeScheduler } {
  const log = recordingLogger();
  const scheduler = new VirtualTimeScheduler();
  return { log, scheduler, warnings: new RateLimitedLog(log, { limit: 3, windowMs: 60_000, scheduler }) };
}

describe('RateLimitedLog', () => {
  it('writes the first lines of a key, then one summary with the count of the rest at the end of the window', () => {
    const { log, warnings, scheduler } = limiter();
    for (let n = 1; n <= 8; n += 1) warnings.warn('r:BOOM', 'message dead-lettered', { route: 'r', code: 'BOOM', messageId: `m${n}` }, { route: 'r', code: 'BOOM' });
    expect(log.lines.map(([, fields]) => fields?.messageId)).toEqual(['m1', 'm2', 'm3']);
    scheduler.flush(); // the window's end
    expect(log.lines).toHaveLength(4);
    expect(log.lines[3]).toEqual(['message dead-lettered: 5 more not logged (at most 3 per 60 s)', { route: 'r', code: 'BOOM', suppressed: 5 }]);
  });

  it('limits each key on its own', () => {
    const { log, warnings } = limiter();
    for (let n = 0; n < 5; n += 1) {
      warnings.warn('a', 'a failed', { n });
      warnings.warn('b', 'b failed', { n });
    }
    expect(log.lines.filter(([message]) => message === 'a failed')).toHaveLength(3);
    expect(log.lines.filter(([message]) => message === 'b failed')).toHaveLength(3);
  });

  it('starts a new window once the previous one has ended', () => {
    const { log, warnings, scheduler } = limiter();
    for (let n = 0; n < 4; n += 1) warnings.warn('k', 'failed', { n });
    scheduler.schedule(() => {
      warnings.warn('k', 'failed', { n: 'later' });
    }, 61_000);
    scheduler.flush();
    expect(log.lines.map(([message, fields]) => `${message} ${JSON.stringify(fields)}`)).toEqual([
      'failed {"n":0}',
      'failed {"n":1}',
      'failed {"n":2}',
      'failed: 1 more not logged (at most 3 per 60 s) {"n":3,"suppressed":1}',
      'failed {"n":"later"}',
    ]);
  });

  it('holds no timer while nothing is suppressed, and flush writes pending summaries at once', () => {
    const { log, warnings, scheduler } = limiter();
    warnings.warn('k', 'failed', {});
    expect(scheduler.actions).toHaveLength(0);
    for (let n = 0; n < 3; n += 1) warnings.warn('k', 'failed', {});
    expect(scheduler.actions).toHaveLength(1);
    warnings.flush();
    expect(log.lines.at(-1)?.[0]).toBe('failed: 1 more not logged (at most 3 per 60 s)');
    scheduler.flush();
    expect(log.lines).toHaveLength(4); // the cancelled timer wrote nothing more
  });
});
