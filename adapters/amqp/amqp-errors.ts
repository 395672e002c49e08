import { InterchangeError } from '../../src/core/index.ts';

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

export { redactText, redactUrl } from '../../src/core/redact.ts';
