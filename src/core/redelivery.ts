import { backoffDelay, type BackoffOptions } from './backoff.ts';
import { isPermanentFailure } from './errors.ts';

/** What a transport does with a nacked delivery: give it again (after `delayMs`), or dead-letter it. */
export type RedeliveryDecision = { readonly action: 'redeliver'; readonly delayMs: number } | { readonly action: 'deadLetter' };

export interface RedeliveryInput {
  /** Deliveries of the message so far, the one just nacked included (≥ 1). */
  readonly attempt: number;
  /** Deliveries made at once (no delay); what happens after them depends on `backoff`. */
  readonly maxDeliveries: number;
  /** Why it was nacked. */
  readonly reason: Error;
  /**
   * Without it (bounded redelivery: memory channels, AMQP queues), the delivery that reaches
   * `maxDeliveries` is dead-lettered. With it (never give up: MQTT sessions), every later one is
   * redelivered after `backoffDelay(attempt - maxDeliveries, backoff)`, for as long as it fails.
   */
  readonly backoff?: BackoffOptions;
  /**
   * A permanent reason (`isPermanentFailure`: retrying cannot help) is dead-lettered at the first nack
   * instead of being counted like any other (default false).
   */
  readonly permanentAtOnce?: boolean;
}

const AT_ONCE: RedeliveryDecision = Object.freeze({ action: 'redeliver', delayMs: 0 });
const DEAD_LETTER: RedeliveryDecision = Object.freeze({ action: 'deadLetter' });

/**
 * The one "nacked `maxDeliveries` times → dead letter" rule every transport applies to a nacked
 * delivery: attempts below `maxDeliveries` come back at once; then the delivery is dead-lettered, or,
 * with `backoff`, comes back later and later and is never given up. A permanent reason skips the
 * count when `permanentAtOnce`. Pure: the transport does the redelivering, dead-lettering and logging.
 * @example
 * redeliveryDecision({ attempt: 5, maxDeliveries: 5, reason }) // { action: 'deadLetter' }
 * redeliveryDecision({ attempt: 6, maxDeliveries: 5, reason, backoff: { initialMs: 1_000, maxMs: 30_000 } }) // { action: 'redeliver', delayMs: ≈ 2000 }
 */
export function redeliveryDecision({ attempt, maxDeliveries, reason, backoff, permanentAtOnce = false }: RedeliveryInput): RedeliveryDecision {
  if (permanentAtOnce && isPermanentFailure(reason)) return DEAD_LETTER;
  if (attempt < maxDeliveries) return AT_ONCE;
  if (backoff === undefined) return DEAD_LETTER;
  return { action: 'redeliver', delayMs: backoffDelay(attempt - maxDeliveries, backoff) };
}
