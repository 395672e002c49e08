import type { StepError } from './errors.ts';
import type { Message } from './message.ts';

/**
 * What to do with one message a step failed on. Exhaustive: the runtime `switch`es over `action`
 * with a `never` check, so adding a policy without handling it does not compile.
 */
export type FailurePolicy =
  /** Run the failed step again on this message after `delayMs` (bounded by the handler's maxAttempts). */
  | { readonly action: 'retry'; readonly delayMs: number }
  /** Send the message to the route's dead-letter channel with the error in headers, then ack the source. */
  | { readonly action: 'deadLetter'; readonly reason?: string }
  /** Ack and count it: the message is intentionally dropped. */
  | { readonly action: 'discard'; readonly reason?: string }
  /** Reject to the source (AMQP nack → the queue's dead-letter exchange; memory → redelivered, bounded). */
  | { readonly action: 'reject' };

export interface StepFailure {
  readonly error: StepError;
  readonly message: Message;
  /** How many times the step has run on this message, including the one that just failed (≥ 1). */
  readonly attempt: number;
}

/**
 * A route's error handler (Camel's errorHandler, MassTransit's retry + error queue).
 * `maxAttempts` bounds in-process retries whatever `decide` says: once reached, a `retry` becomes
 * `deadLetter` (or `reject` without a dead-letter channel), so no message is retried forever.
 */
export interface ErrorHandler {
  decide(failure: StepFailure): FailurePolicy;
  readonly maxAttempts: number;
  readonly deadLetterUri?: string;
  /** Counts confirmed dead letters under this name in the route's `sent` metrics (the live line shows it, e.g. `invalid 12`). */
  readonly deadLetterLabel?: string;
  /**
   * What goes to the dead-letter channel (Camel's `onPrepareFailure` with `useOriginalMessage`):
   * given the message as it failed and as the source delivered it (`Delivery.origin`), returns the
   * message to dead-letter; the failure headers (`x-interchange-error`, …) are added to its result.
   * Default: the failed message.
   * @example prepareDeadLetter: (failed, original) => withHeaders(original, { 'x-topic': String(original.headers.mqttTopic) })
   */
  readonly prepareDeadLetter?: (failed: Message, original: Message) => Message;
}

/** @example onError(() => retryAfter(500)) */
export const retryAfter = (delayMs: number): FailurePolicy => ({ action: 'retry', delayMs });
/** @example onError(() => deadLetter('unparseable')) */
export const deadLetter = (reason?: string): FailurePolicy => ({ action: 'deadLetter', reason });
/** @example onError((f) => f.error.code === 'DUPLICATE' ? discard('already seen') : reject()) */
export const discard = (reason?: string): FailurePolicy => ({ action: 'discard', reason });
export const reject = (): FailurePolicy => ({ action: 'reject' });

/** The default: no retry, reject to the source, which owns redelivery and its dead-lettering. */
export const rejectToSource: ErrorHandler = Object.freeze({ decide: reject, maxAttempts: 1 });

/** Thrown from `assertNever` when a value the compiler proved impossible shows up at run time. */
export function assertNever(value: never): never {
  throw new Error(`unhandled case: ${JSON.stringify(value)}`);
}
