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

/** What an access refusal concerns: the connection (credentials, virtual host) or one queue or exchange. */
export interface AmqpRefusedResource {
  readonly kind: 'queue' | 'exchange';
  readonly name: string;
  readonly vhost: string;
}

/**
 * The broker refused access, for good — retrying the same configuration cannot help:
 * - connection level: ACCESS_REFUSED (403, wrong user name or password) or NOT_ALLOWED (530, a
 *   virtual host that does not exist or the user may not use): `connect()` rejects with it at once
 *   instead of retrying until `connectTimeoutMs`;
 * - channel level (403, `resource` set): the user may not configure (declare), write (publish to) or
 *   read (consume from, bind from) that queue or exchange — `permission` says which, from the AMQP
 *   method refused. A consumer's stream errors with it (no resubscribe loop), a publish rejects with it.
 * The message names the user, the vhost and the resource, never the password.
 */
export class AmqpAccessRefusedError extends InterchangeError {
  override readonly name = 'AmqpAccessRefusedError';
  constructor(
    /** 403 (ACCESS_REFUSED) or 530 (NOT_ALLOWED). */
    readonly replyCode: 403 | 530,
    message: string,
    /** The queue or exchange refused (channel level); undefined for the connection. */
    readonly resource?: AmqpRefusedResource,
    /** The permission the refused method needs (channel level), when the method says it. */
    readonly permission?: 'configure' | 'write' | 'read',
  ) {
    super('AMQP_ACCESS_REFUSED', message, { permanent: true });
  }
}

/** AMQP class/method ids (amqplib's error `classId`, `methodId`) → the RabbitMQ permission they need. */
const PERMISSION_OF: Readonly<Record<string, 'configure' | 'write' | 'read'>> = {
  '40:10': 'configure', // exchange.declare
  '40:20': 'configure', // exchange.delete
  '50:10': 'configure', // queue.declare
  '50:40': 'configure', // queue.delete
  '50:30': 'read', // queue.purge
  '60:20': 'read', // basic.consume
  '60:70': 'read', // basic.get
  '60:40': 'write', // basic.publish
};

/**
 * The typed refusal a channel error is (amqplib's error with `code` 403 and RabbitMQ's
 * "ACCESS_REFUSED - access to queue 'q' in vhost '/' refused for user 'u'"), else undefined.
 * `redact` cuts secrets out of the broker's text.
 */
export function channelRefusalOf(error: unknown, redact: (text: string) => string): AmqpAccessRefusedError | undefined {
  if (!(error instanceof Error)) return undefined;
  const { code, classId, methodId } = error as { code?: unknown; classId?: unknown; methodId?: unknown };
  if (code !== 403 && !/\b403 \(ACCESS[-_]REFUSED\)/.test(error.message)) return undefined;
  const found = /(?:(configure|write|read) )?access to (queue|exchange) '((?:[^'\\]|\\.)*)' in vhost '((?:[^'\\]|\\.)*)' refused for user '((?:[^'\\]|\\.)*)'/.exec(error.message);
  let permission = PERMISSION_OF[`${String(classId)}:${String(methodId)}`];
  if (found === null) return new AmqpAccessRefusedError(403, `the broker refused access (ACCESS_REFUSED): ${redact(error.message)}`, undefined, permission);
  const [, named, kind, name, vhost, user] = found as unknown as [string, 'configure' | 'write' | 'read' | undefined, 'queue' | 'exchange', string, string, string];
  permission = named ?? permission; // RabbitMQ 3.11+ names it
  const what = permission === undefined ? 'access' : `${permission} permission`;
  return new AmqpAccessRefusedError(
    403,
    `user '${redact(user)}' has no ${what} on ${kind} '${AmqpUnencodableError.quote(name)}' in vhost '${vhost}' (ACCESS_REFUSED) — grant it with rabbitmqctl set_permissions, or use another ${kind}`,
    { kind, name, vhost },
    permission,
  );
}

export { redactText, redactUrl } from '../../src/core/redact.ts';
