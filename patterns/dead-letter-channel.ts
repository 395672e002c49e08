import { deadLetter, discard, retryAfter, type ErrorHandler, type StepError } from '../src/core/index.ts';
import type { RetryPolicy } from './retry.ts';

export interface DeadLetterChannelOptions {
  /** Retry in process first (default: no retry). */
  readonly retry?: RetryPolicy;
  /** Failures to drop (acked, counted as discarded) instead of dead-lettering. */
  readonly discardWhen?: (error: StepError) => boolean;
  /** Counts confirmed dead letters under this name in the route's metrics and live line. */
  readonly label?: string;
}

/**
 * Dead letter channel: a message a step failed on is retried per `retry`, then sent to `uri` — same
 * id and body, with `x-interchange-error-code`, `x-interchange-error`, `x-interchange-route`,
 * `x-interchange-step`, `x-interchange-declared-at` and `x-interchange-attempts` headers — and the
 * source is acked once the dead-letter endpoint confirmed. If the dead-letter send fails, the source
 * is rejected: nothing is lost.
 * @example from('memory:in').deadLetterChannel('memory:dlq', { retry: retry({ maxAttempts: 3 }) })
 */
export function deadLetterChannel(uri: string, { retry, discardWhen, label }: DeadLetterChannelOptions = {}): ErrorHandler {
  return {
    deadLetterUri: uri,
    ...(label === undefined ? {} : { deadLetterLabel: label }),
    maxAttempts: retry?.maxAttempts ?? 1,
    decide({ error, attempt }) {
      if (discardWhen?.(error) === true) return discard(error.original.message);
      const delay = retry?.delayAfter(attempt, error);
      if (delay !== undefined) return retryAfter(delay);
      const exhausted = retry !== undefined && attempt >= retry.maxAttempts;
      return deadLetter(exhausted ? `gave up after ${attempt} attempts` : undefined);
    },
  };
}
