import { InterchangeError, UnencodableMessageError } from '../../src/core/index.ts';

/** A mandatory publish the broker could not route to any queue (basic.return): never silently dropped. */
export class UnroutableError extends InterchangeError {
  override readonly name = 'UnroutableError';
  constructor(
    readonly exchange: string,
    readonly routingKey: string,
    readonly replyText: string,
  ) {
    super('UNROUTABLE', `message to exchange '${exchange || '(default)'}' with routing key '${routingKey}' was returned unroutable: ${replyText}`);
  }
}

/** The broker refused a publish (basic.nack: e.g. a full queue with `overflow: reject-publish`, or an internal error). */
export class PublishRejectedError extends InterchangeError {
  override readonly name = 'PublishRejectedError';
  constructor(
    readonly exchange: string,
    readonly routingKey: string,
  ) {
    super('PUBLISH_REJECTED', `the broker rejected (nacked) a message to exchange '${exchange || '(default)'}' with routing key '${routingKey}'`);
  }
}

/** Adapter options, topology or an endpoint's options are invalid; raised at construction or first use, never retried. */
export class AmqpConfigurationError extends InterchangeError {
  override readonly name = 'AmqpConfigurationError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('AMQP_CONFIGURATION', message, options);
  }
}

/** The longest message id, property or header name an error message quotes (longer ones are cut, with `…`). */
const QUOTE_LIMIT = 64;

function quote(text: string): string {
  return text.length > QUOTE_LIMIT ? `${text.slice(0, QUOTE_LIMIT)}…` : text;
}

/**
 * A message cannot be written as AMQP 0-9-1 (a property or header over its length limit, a number
 * amqplib or RabbitMQ cannot take, a body over `maxMessageBytes`…). Raised by `encodeMessage`
 * before anything is written, so it fails that message alone: permanent, never retried, the channel
 * and the other messages of the publish untouched.
 */
export class AmqpUnencodableError extends UnencodableMessageError {
  override readonly name = 'AmqpUnencodableError';
  constructor(
    /** The message's id, cut to 64 characters. */
    readonly messageId: string,
    /** The property (`correlationId`, `priority`, `body`…) or `header '<name>'` at fault. */
    readonly field: string,
    detail: string,
    options?: { cause?: unknown },
  ) {
    super('AMQP_UNENCODABLE', `message '${quote(messageId)}' cannot be encoded for AMQP: ${field} ${detail}`, options);
  }

  /** A quotable form of an untrusted name or id (cut to 64 characters). */
  static quote(text: string): string {
    return quote(text);
  }
}

/**
 * The broker refused the connection itself: ACCESS_REFUSED (403, wrong user name or password) or
 * NOT_ALLOWED (530, a virtual host that does not exist or the user may not use). Retrying cannot
 * help, so `connect()` rejects with it at once instead of retrying until `connectTimeoutMs`.
 * The message never contains the password.
 */
export class AmqpAccessRefusedError extends InterchangeError {
  override readonly name = 'AmqpAccessRefusedError';
  constructor(
    /** 403 (ACCESS_REFUSED) or 530 (NOT_ALLOWED). */
    readonly replyCode: 403 | 530,
    message: string,
  ) {
    super('AMQP_ACCESS_REFUSED', message, { permanent: true });
  }
}

export { redactText, redactUrl } from '../../src/core/redact.ts';
