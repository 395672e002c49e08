import { createHash } from 'node:crypto';
import type { StepError } from './errors.ts';
import { withHeaders, type HeaderValue, type Message } from './message.ts';
import { classifiedValuesOf, redactFailure, redactText } from '../security/redact-classified.ts';

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
  /** Set on a reduced dead letter: why the full one could not be sent. */
  deadLetterError: 'x-interchange-dead-letter-error',
  originalSize: 'x-interchange-original-size',
  sha256: 'x-interchange-sha256',
  truncated: 'x-interchange-truncated',
});

/** Error texts in dead-letter headers are cut here: a reason can quote input of any length. */
const MAX_ERROR_CHARS = 1_000;
/** A reduced dead letter's body is cut here when it is bytes or text. */
const MAX_REDUCED_BODY_BYTES = 64 * 1024;

/**
 * The failed message as it goes to a dead-letter channel: same id and body, the failure in headers.
 * When the message's contract (its `schema` header) has `personal` or `secret` fields, their values
 * are scrubbed from the error itself, in place (message and stack, causes included), from `reason`
 * and from the message's `x-interchange-*` text headers — before the runtime logs the failure or
 * tells its observers (traces, the console), which all read that error. The body is kept as it is:
 * a dead-letter destination is inside the trust zone (replay needs the original).
 */
export function deadLetterMessage<T>(message: Message<T>, error: StepError, attempts: number, reason?: string): Message<T> {
  const classified = classifiedValuesOf(message);
  if (classified.length > 0) return redactedDeadLetter(message, error, attempts, reason, classified);
  return withFailure(message, error, attempts, reason);
}

function withFailure<T>(message: Message<T>, error: StepError, attempts: number, reason: string | undefined): Message<T> {
  return withHeaders(message, {
    [DeadLetterHeaders.code]: error.code,
    [DeadLetterHeaders.error]: clipErrorText(error.original.message),
    [DeadLetterHeaders.route]: error.routeId,
    [DeadLetterHeaders.step]: error.stepId,
    [DeadLetterHeaders.declaredAt]: error.declaredAt,
    [DeadLetterHeaders.failedAt]: Date.now(),
    [DeadLetterHeaders.attempts]: attempts,
    ...(reason === undefined ? {} : { [DeadLetterHeaders.reason]: reason }),
  });
}

function redactedDeadLetter<T>(message: Message<T>, error: StepError, attempts: number, reason: string | undefined, values: readonly string[]): Message<T> {
  redactFailure(error, values);
  const scrubbed: Record<string, HeaderValue> = {};
  for (const name in message.headers) {
    const value = message.headers[name];
    if (typeof value === 'string' && name.startsWith('x-interchange-')) scrubbed[name] = redactText(value, values);
  }
  return withFailure(withHeaders(message, scrubbed), error, attempts, reason === undefined ? undefined : redactText(reason, values));
}

/**
 * The fallback when a dead letter itself cannot be sent for a permanent reason (a header the
 * destination cannot encode, a body over its size limit): the same id, only the `x-interchange-*`
 * headers (clipped) and the content type, the send error in `x-interchange-dead-letter-error`, and a
 * byte or text body over 64 KiB cut to 64 KiB with its size and sha256 — so that the evidence is
 * kept rather than the message rejected back to a source that would redeliver it forever.
 */
export function reducedDeadLetter(deadLetter: Message, sendError: Error): Message {
  const headers: Record<string, HeaderValue> = {};
  for (const name in deadLetter.headers) {
    const value = deadLetter.headers[name];
    if (value === undefined || !name.startsWith('x-interchange-')) continue;
    headers[name] = typeof value === 'string' ? clipErrorText(value) : value;
  }
  const contentType = deadLetter.headers.contentType;
  if (contentType !== undefined && Buffer.byteLength(contentType) <= 200) headers.contentType = contentType;
  headers[DeadLetterHeaders.deadLetterError] = clipErrorText(sendError.message);
  let body = deadLetter.body;
  const bytes = Buffer.isBuffer(body) ? body : typeof body === 'string' ? Buffer.from(body) : undefined;
  if (bytes !== undefined && bytes.length > MAX_REDUCED_BODY_BYTES) {
    headers[DeadLetterHeaders.originalSize] = bytes.length;
    headers[DeadLetterHeaders.sha256] = createHash('sha256').update(bytes).digest('hex');
    headers[DeadLetterHeaders.truncated] = true;
    body = bytes.subarray(0, MAX_REDUCED_BODY_BYTES);
  }
  // ids and content types are short strings in some protocols (AMQP: 255 bytes)
  return { id: Buffer.byteLength(deadLetter.id) <= 200 ? deadLetter.id : createHash('sha256').update(deadLetter.id).digest('hex'), headers, body };
}

/**
 * An error text as a dead-letter header carries it: cut to `max` characters (1,000 by default), control
 * characters as spaces — some destinations refuse them in headers (MQTT via Mosquitto).
 */
export function clipErrorText(text: string, max: number = MAX_ERROR_CHARS): string {
  // eslint-disable-next-line no-control-regex
  const plain = text.replace(/[\u0000-\u001f\u007f]/g, ' ');
  return plain.length <= max ? plain : `${plain.slice(0, max)}… (${plain.length} chars)`;
}
