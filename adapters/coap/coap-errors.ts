import { InterchangeError, UnencodableMessageError } from '../../src/core/index.ts';

/** Transport options or an endpoint's options are invalid: raised at construction or first use, never retried. */
export class CoapConfigurationError extends InterchangeError {
  override readonly name = 'CoapConfigurationError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('COAP_CONFIGURATION', message, { ...options, permanent: true });
  }
}

/**
 * A message cannot be sent as one CoAP request (an id or header that is not a string/number/boolean,
 * a body JSON cannot serialise, the request over one datagram: `publish` does no block-wise transfer).
 * Raised before anything is sent: permanent, that message alone.
 */
export class CoapUnencodableError extends UnencodableMessageError {
  override readonly name = 'CoapUnencodableError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('COAP_UNENCODABLE', message, options);
  }
}

/**
 * A device's request cannot be taken as a message (its Content-Format says JSON and the payload does
 * not parse): handed to the route as the delivery's `intakeError` — permanent, so it is dead-lettered
 * (or rejected) and the device is answered 4.00 Bad Request with this text.
 */
export class CoapDecodeError extends InterchangeError {
  override readonly name = 'CoapDecodeError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('COAP_DECODE', message, { ...options, permanent: true });
  }
}

/**
 * A CoAP server answered a `publish` (or an observe registration) with an error response. A 4.xx
 * answer is permanent (the request itself is refused: retrying the same message cannot help), a 5.xx
 * one transient; `maxAgeSeconds` is the server's Max-Age (for 5.03, when to retry).
 */
export class CoapResponseError extends InterchangeError {
  override readonly name = 'CoapResponseError';
  constructor(
    /** The response code, `4.00`…`5.05`. */
    readonly responseCode: string,
    message: string,
    readonly maxAgeSeconds?: number,
  ) {
    super('COAP_RESPONSE', message, { permanent: responseCode.startsWith('4.') });
  }
}

/** The embedded server cannot listen (port in use, address not local): `connect` rejects with it. */
export class CoapListenError extends InterchangeError {
  override readonly name = 'CoapListenError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('COAP_LISTEN', message, options);
  }
}
