import { InterchangeError, UnencodableMessageError } from '../../src/core/index.ts';

/**
 * One message cannot be a valid NATS message: a subject that is empty, has a wildcard, whitespace or an
 * empty token; a header name that is not printable ASCII without `:`; a body that cannot be serialized;
 * headers and payload over the server's `max_payload`. Permanent, and that message's alone:
 * `NatsTransport.publish` sends the others of the call and rejects with `PartialPublishError` naming it.
 */
export class NatsUnencodableError extends UnencodableMessageError {
  override readonly name = 'NatsUnencodableError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('NATS_UNENCODABLE', message, options);
  }
}

/**
 * JetStream did not take a message: no stream captures its subject, the stream refused it (a limit with
 * `discard: new`, a wrong expected stream), or no publish acknowledgement came in time. Not permanent:
 * the caller (a route) keeps its source message and retries.
 */
export class NatsPublishError extends InterchangeError {
  override readonly name = 'NatsPublishError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('NATS_PUBLISH', message, options);
  }
}

/**
 * A JetStream stream or consumer cannot be found or created as the endpoint asks (it is absent and
 * `provision=false`, or the server refused the configuration). Permanent for that endpoint.
 */
export class NatsTopologyError extends InterchangeError {
  override readonly name = 'NatsTopologyError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('NATS_TOPOLOGY', message, { ...options, permanent: true });
  }
}

/**
 * An inbound message the consumer will not take whole: over `maxMessageBytes`. Handed to the route as
 * the delivery's `intakeError` (dead-lettered by its error handler, never run through its steps).
 */
export class NatsMessageTooLargeError extends InterchangeError {
  override readonly name = 'NatsMessageTooLargeError';
  constructor(message: string) {
    super('NATS_MESSAGE_TOO_LARGE', message, { permanent: true });
  }
}
