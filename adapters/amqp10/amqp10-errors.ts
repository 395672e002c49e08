import { InterchangeError, UnencodableMessageError } from '../../src/core/index.ts';

/** Transport options or an endpoint's options are invalid: raised at construction or first use, never retried. */
export class Amqp10ConfigurationError extends InterchangeError {
  override readonly name = 'Amqp10ConfigurationError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('AMQP10_CONFIGURATION', message, { ...options, permanent: true });
  }
}

/**
 * The broker refused the credentials (SASL outcome `auth`, or `amqp:unauthorized-access` on open):
 * `connect` rejects at once, without retrying — waiting does not fix a wrong password.
 */
export class Amqp10AuthenticationError extends InterchangeError {
  override readonly name = 'Amqp10AuthenticationError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('AMQP10_AUTHENTICATION', message, { ...options, permanent: true });
  }
}

/**
 * The broker refused to attach a link to an address (no such exchange or queue, access refused,
 * an address form the broker does not know). Raised by `publish` and as the `consume` Observable's
 * error: the endpoint is wrong, retrying cannot help.
 */
export class Amqp10LinkError extends InterchangeError {
  override readonly name = 'Amqp10LinkError';
  constructor(
    readonly address: string,
    readonly condition: string | undefined,
    detail: string,
  ) {
    super('AMQP10_LINK', `amqp10: the broker refused a link to '${address}'${condition === undefined ? '' : ` (${condition})`}: ${detail}`, { permanent: true });
  }
}

/**
 * The broker settled a published message with `rejected` (it will not take it: a queue at its
 * `x-max-length` with `reject-publish`, a message over its size limit…). Fails that message alone;
 * permanent only when the broker's condition says the message itself is at fault.
 */
export class Amqp10RejectedError extends InterchangeError {
  override readonly name = 'Amqp10RejectedError';
  constructor(
    readonly messageId: string,
    readonly condition: string | undefined,
    description: string | undefined,
  ) {
    super('AMQP10_REJECTED', `amqp10: the broker rejected message '${messageId.slice(0, 64)}'${condition === undefined ? '' : ` (${condition})`}${description === undefined ? '' : `: ${description}`}`, {
      permanent: condition === 'amqp:decode-error' || condition === 'amqp:link:message-size-exceeded',
    });
  }
}

/** The broker settled a published message with `released` or `modified`: it did not take it this time; publishing again may succeed. */
export class Amqp10ReleasedError extends InterchangeError {
  override readonly name = 'Amqp10ReleasedError';
  constructor(
    readonly messageId: string,
    outcome: 'released' | 'modified',
  ) {
    super('AMQP10_RELEASED', `amqp10: the broker ${outcome} message '${messageId.slice(0, 64)}' instead of accepting it`);
  }
}

/**
 * A message cannot be written as an AMQP 1.0 message (an id that is not a string or is too long, a
 * header value that is not a string, finite number or boolean, too many or too large application
 * properties, a body JSON cannot serialise, a size over `maxMessageBytes`). Raised before anything
 * is sent: permanent, that message alone.
 */
export class Amqp10UnencodableError extends UnencodableMessageError {
  override readonly name = 'Amqp10UnencodableError';
  constructor(
    readonly messageId: string,
    detail: string,
    options?: { cause?: unknown },
  ) {
    super('AMQP10_UNENCODABLE', `message '${messageId.length > 64 ? `${messageId.slice(0, 64)}…` : messageId}' cannot be written as an AMQP 1.0 message: ${detail}`, options);
  }
}

/**
 * A received message cannot be taken (a body over `maxMessageBytes`, a JSON body that does not parse
 * though its content type says JSON): the consumer rejects it at once (the queue's dead-letter
 * exchange, if any) — permanent, never redelivered.
 */
export class Amqp10DecodeError extends InterchangeError {
  override readonly name = 'Amqp10DecodeError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('AMQP10_DECODE', message, { ...options, permanent: true });
  }
}
