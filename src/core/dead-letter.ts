import type { StepError } from './errors.ts';
import { withHeaders, type Message } from './message.ts';

/** Header names Interchange writes on dead-lettered messages: stable, documented, transport-neutral. */
export const DeadLetterHeaders = Object.freeze({
  code: 'x-interchange-error-code',
  error: 'x-interchange-error',
  route: 'x-interchange-route',
  step: 'x-interchange-step',
  declaredAt: 'x-interchange-declared-at',
  failedAt: 'x-interchange-failed-at',
  attempts: 'x-interchange-attempts',
  reason: 'x-interchange-reason',
});

/** The failed message as it goes to a dead-letter channel: same id and body, the failure in headers. */
export function deadLetterMessage<T>(message: Message<T>, error: StepError, attempts: number, reason?: string): Message<T> {
  return withHeaders(message, {
    [DeadLetterHeaders.code]: error.code,
    [DeadLetterHeaders.error]: error.original.message,
    [DeadLetterHeaders.route]: error.routeId,
    [DeadLetterHeaders.step]: error.stepId,
    [DeadLetterHeaders.declaredAt]: error.declaredAt,
    [DeadLetterHeaders.failedAt]: Date.now(),
    [DeadLetterHeaders.attempts]: attempts,
    ...(reason === undefined ? {} : { [DeadLetterHeaders.reason]: reason }),
  });
}
