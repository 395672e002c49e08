import { InterchangeError, UnencodableMessageError } from '../../src/core/index.ts';

/** Transport options or an endpoint's options are invalid: raised at construction or first use, never retried. */
export class StompConfigurationError extends InterchangeError {
  override readonly name = 'StompConfigurationError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('STOMP_CONFIGURATION', message, { ...options, permanent: true });
  }
}

/**
 * A message cannot be written as a STOMP SEND frame (a header name with `:`, `\`, a control character
 * or surrounding spaces; a header value that is not a string, finite number or boolean; a `priority`-like
 * broker header; a body JSON cannot serialise; a header over 8 KiB or the frame over `maxMessageBytes`).
 * Raised before anything is sent, so it fails that message alone: permanent, never retried, the other
 * messages of the publish still sent.
 */
export class StompUnencodableError extends UnencodableMessageError {
  override readonly name = 'StompUnencodableError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('STOMP_UNENCODABLE', message, options);
  }
}

/**
 * The broker sent an ERROR frame (STOMP closes the connection after it): `brokerMessage` is its
 * `message` header, `detail` its body (both clipped). On a SEND it names (by receipt) the publish
 * fails with it; every other receipt still awaited on that connection fails with `NotConnectedError`.
 */
export class StompBrokerError extends InterchangeError {
  override readonly name: string = 'StompBrokerError';
  constructor(
    readonly brokerMessage: string,
    readonly detail: string,
    options?: { cause?: unknown; code?: string },
  ) {
    super(options?.code ?? 'STOMP_BROKER_ERROR', `STOMP broker error: ${brokerMessage}${detail === '' ? '' : ` — ${detail}`}`, options);
  }
}

/**
 * The broker refused the CONNECT frame (wrong login or passcode, unknown virtual host): `connect()`
 * rejects with it at once — retrying cannot help until the configuration changes.
 */
export class StompConnectRefusedError extends StompBrokerError {
  override readonly name = 'StompConnectRefusedError';
  constructor(brokerMessage: string, detail: string) {
    super(brokerMessage, detail, { code: 'STOMP_CONNECT_REFUSED' });
  }
}

/**
 * An inbound MESSAGE the consumer will not take whole (over `maxMessageBytes`; a body that does not
 * parse though its content type says JSON). Handed to the route as the delivery's `intakeError`
 * (dead-lettered by its error handler, never run through its steps). Permanent.
 */
export class StompDecodeError extends InterchangeError {
  override readonly name = 'StompDecodeError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('STOMP_DECODE', message, { ...options, permanent: true });
  }
}
