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
 * `message` header, `detail` its body (both clipped). The SEND it names (by `receipt-id`) fails with
 * it, every other one awaited on that connection with `NotConnectedError`; an ERROR naming no receipt
 * (RabbitMQ's for a header it refuses or a missing exchange) fails every SEND awaited with it.
 * `permanent` when the broker's verdict cannot change by retrying (`isPermanentBrokerMessage`) and the
 * failed SENDs can only be the culprits (see `StompLink`).
 */
export class StompBrokerError extends InterchangeError {
  override readonly name: string = 'StompBrokerError';
  constructor(
    readonly brokerMessage: string,
    readonly detail: string,
    options?: { cause?: unknown; code?: string; permanent?: boolean },
  ) {
    super(options?.code ?? 'STOMP_BROKER_ERROR', `STOMP broker error: ${brokerMessage}${detail === '' ? '' : ` — ${detail}`}`, options);
  }
}

/**
 * Whether an ERROR frame's `message` header is a verdict retrying cannot change: RabbitMQ's
 * `precondition_failed`, `not_found`, `access_refused`; ActiveMQ's "not authorized".
 */
export function isPermanentBrokerMessage(message: string): boolean {
  return /^(precondition_failed|not_found|access_refused)$/i.test(message.trim()) || /not authori[sz]ed/i.test(message);
}

/**
 * The broker refused a subscription with a permanent verdict (`isPermanentBrokerMessage`: a missing
 * exchange, an inequivalent queue argument, no read permission) before any message came: the consume
 * Observable fails with it instead of resubscribing forever. Permanent.
 */
export class StompSubscribeRefusedError extends StompBrokerError {
  override readonly name = 'StompSubscribeRefusedError';
  constructor(brokerMessage: string, detail: string) {
    super(brokerMessage, detail, { code: 'STOMP_SUBSCRIBE_REFUSED', permanent: true });
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
  /** Over `maxMessageBytes`: the consumer does not keep its body. */
  readonly oversized: boolean;
  constructor(message: string, options?: { cause?: unknown; oversized?: boolean }) {
    super('STOMP_DECODE', message, { ...options, permanent: true });
    this.oversized = options?.oversized ?? false;
  }
}
