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

/**
 * The URL with its password (and any `password=`-like query value) replaced by `***`: safe for logs
 * and error messages.
 * @example redactUrl('amqp://app:s3cret@rabbit:5672/prod') // 'amqp://app:***@rabbit:5672/prod'
 */
export function redactUrl(url: string): string {
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/[^:/@?#]*:)[^@/?#]*@/i, '$1***@').replace(/((?:password|pass|secret)=)[^&]*/gi, '$1***');
}

/** Removes every occurrence of `secrets` from a text (error messages of the client library can echo a URL). */
export function redactText(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const secret of secrets) if (secret.length >= 3) out = out.split(secret).join('***');
  return out;
}
