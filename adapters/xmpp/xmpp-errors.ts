import { InterchangeError, UnencodableMessageError } from '../../src/core/index.ts';

/** Transport or endpoint options are invalid (unknown option — with a "did you mean" —, bad JID, no password for a consumed account): raised at construction or first use, permanent. */
export class XmppConfigurationError extends InterchangeError {
  override readonly name = 'XmppConfigurationError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('XMPP_CONFIGURATION', message, { ...options, permanent: true });
  }
}

/**
 * The server refused the account's credentials (SASL `not-authorized`, …): raised at once by `connect`
 * or a consumer's start, never retried (a wrong password stays wrong). The password is never in it.
 */
export class XmppAuthenticationError extends InterchangeError {
  override readonly name = 'XmppAuthenticationError';
  constructor(
    message: string,
    /** The SASL condition (`not-authorized`, `account-disabled`, …). */
    readonly condition: string,
    options?: { cause?: unknown },
  ) {
    super('XMPP_AUTHENTICATION', message, { ...options, permanent: true });
  }
}

/**
 * The server did not confirm a published message: no XEP-0198 ack within `publishTimeoutMs`, the
 * stream broke and could not be resumed (the stanza may or may not have been handled), or the server
 * answered with an error. Not permanent: a route keeps its source message and retries (a duplicate is
 * possible when the server had handled it).
 */
export class XmppPublishError extends InterchangeError {
  override readonly name = 'XmppPublishError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('XMPP_PUBLISH', message, options);
  }
}

/**
 * The server answered a published message with a `type="error"` message (XMPP has no negative ack):
 * the recipient does not exist (Prosody: `service-unavailable`), its offline store refused it, a
 * session died with it unacknowledged (`recipient-unavailable`)… `publish` rejects with it (in a
 * `PartialPublishError`, that message alone) when the bounce comes before the server's ack — always
 * so for a local recipient, as the server answers in order. Permanent unless the error's type is
 * `wait` (RFC 6120 §8.3.2: retry after waiting).
 */
export class XmppBouncedError extends InterchangeError {
  override readonly name = 'XmppBouncedError';
  constructor(
    message: string,
    /** The stanza error condition (`service-unavailable`, `recipient-unavailable`, …). */
    readonly condition: string,
    /** The stanza error type: `cancel`, `wait`, `modify`, `auth`. */
    readonly type: string,
  ) {
    super('XMPP_BOUNCED', message, { permanent: type !== 'wait' });
  }
}

/**
 * One message cannot be a stanza: text XML 1.0 cannot carry (control characters, U+FFFE/U+FFFF, lone
 * surrogates), a body JSON cannot serialize, a stanza over `maxStanzaBytes`. Permanent and that
 * message's alone: `publish` sends the others and rejects with `PartialPublishError` naming it.
 */
export class XmppUnencodableError extends UnencodableMessageError {
  override readonly name = 'XmppUnencodableError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('XMPP_UNENCODABLE', message, options);
  }
}

/**
 * An inbound stanza the consumer will not take whole: over `maxMessageBytes`, or a trusted sender's
 * Interchange envelope that is malformed. Handed to the route as the delivery's `intakeError`
 * (dead-lettered by its error handler, never run through its steps): permanent.
 */
export class XmppDecodeError extends InterchangeError {
  override readonly name = 'XmppDecodeError';
  constructor(message: string) {
    super('XMPP_DECODE', message, { permanent: true });
  }
}
