import { InterchangeError, UnencodableMessageError } from '../../src/core/index.ts';

/** Transport options or an endpoint's address or options are invalid: raised at construction or first use, never retried. */
export class ZeroMqConfigurationError extends InterchangeError {
  override readonly name = 'ZeroMqConfigurationError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('ZEROMQ_CONFIGURATION', message, { ...options, permanent: true });
  }
}

/**
 * A message cannot be written as ZeroMQ frames (an id that is not a non-empty string of at most
 * `MAX_ID_BYTES`, a header value that is not a string, finite number or boolean, headers over
 * `MAX_ENVELOPE_BYTES`, a body JSON cannot serialise, frames over `maxMessageBytes`). Raised before
 * anything is sent: permanent, that message's alone; the other messages of the publish are still sent.
 */
export class ZeroMqUnencodableError extends UnencodableMessageError {
  override readonly name = 'ZeroMqUnencodableError';
  constructor(messageId: string, detail: string, options?: { cause?: unknown }) {
    super('ZEROMQ_UNENCODABLE', `message '${messageId.length > 64 ? `${messageId.slice(0, 64)}…` : messageId}' cannot be written as ZeroMQ frames: ${detail}`, options);
  }
}

/**
 * Inbound frames cannot be taken as a message (more frames than the pattern has, an envelope that is
 * not a JSON object or is over `MAX_ENVELOPE_BYTES`, a body that does not parse though its content type
 * says JSON). Handed to the route as the delivery's `intakeError`: permanent, dead-lettered by the
 * route's error handler, never run through its steps.
 */
export class ZeroMqDecodeError extends InterchangeError {
  override readonly name = 'ZeroMqDecodeError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('ZEROMQ_DECODE', message, { ...options, permanent: true });
  }
}

/**
 * A socket could not bind its address (in use, not an address of this host, no permission) within
 * `bindTimeoutMs`, retried with backoff meanwhile. The consume Observable (or the publish) fails with it.
 * Permanent for `EACCES` and `EADDRNOTAVAIL` (no permission, not an address of this host): retrying cannot help.
 */
export class ZeroMqBindError extends InterchangeError {
  override readonly name = 'ZeroMqBindError';
  constructor(
    readonly address: string,
    message: string,
    options?: { cause?: unknown; permanent?: boolean },
  ) {
    super('ZEROMQ_BIND', message, options);
  }
}
