import { InterchangeError, UnencodableMessageError } from '../../src/core/index.ts';

/** Transport options or an endpoint's options are invalid: raised at construction or first use, never retried. */
export class RedisStreamsConfigurationError extends InterchangeError {
  override readonly name = 'RedisStreamsConfigurationError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('REDIS_STREAMS_CONFIGURATION', message, options);
  }
}

/**
 * A message cannot be written as a stream entry (an id or a header that is not a string, a header
 * value that is not a string, finite number or boolean, headers or a body over their size limit, a
 * body JSON cannot serialise). Raised before anything is sent, so it fails that message alone:
 * permanent, never retried, the other messages of the publish still sent.
 */
export class RedisStreamsUnencodableError extends UnencodableMessageError {
  override readonly name = 'RedisStreamsUnencodableError';
  constructor(
    /** The message's id, cut to 64 characters. */
    readonly messageId: string,
    detail: string,
    options?: { cause?: unknown },
  ) {
    super('REDIS_STREAMS_UNENCODABLE', `message '${messageId.length > 64 ? `${messageId.slice(0, 64)}…` : messageId}' cannot be written as a stream entry: ${detail}`, options);
  }
}

/**
 * A stream entry cannot be taken as a message (headers that are not a JSON object of scalars, a JSON
 * body that does not parse, an entry over `maxMessageBytes`): the consumer moves it to the
 * dead-letter stream at once, with this error's text as the reason — permanent, so never redelivered.
 */
export class RedisStreamsDecodeError extends InterchangeError {
  override readonly name = 'RedisStreamsDecodeError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('REDIS_STREAMS_DECODE', message, { ...options, permanent: true });
  }
}
