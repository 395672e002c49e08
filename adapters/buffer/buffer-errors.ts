import { InterchangeError, UnencodableMessageError } from '../../src/core/index.ts';

/**
 * Another process (or another transport in this one) holds the buffer directory's lock: two writers
 * of one log would corrupt it. Permanent for this process: stop the other holder, or use another
 * `directory`. A lock left by a process that no longer runs is taken over, never reported.
 */
export class BufferLockedError extends InterchangeError {
  override readonly name = 'BufferLockedError';
  constructor(
    /** The buffer's directory. */
    readonly directory: string,
    /** The pid written in the lock file by its holder. */
    readonly holderPid: number,
  ) {
    super('BUFFER_LOCKED', `buffer directory '${directory}' is locked by process ${holderPid} (its lock file is '${directory}/lock'); a buffer is used by one process at a time`);
  }
}

/** A buffer already has a consumer: a buffer delivers in append order to one consumer at a time. */
export class BufferBusyError extends InterchangeError {
  override readonly name = 'BufferBusyError';
  constructor(readonly buffer: string) {
    super('BUFFER_BUSY', `buffer '${buffer}' already has a consumer: one consumer per buffer at a time (unsubscribe the first one before consuming again)`);
  }
}

/**
 * A message cannot be stored in a buffer (a header that is not a flat string, finite number or
 * boolean; a body JSON cannot represent; a record larger than the buffer's `maxBytes`). It fails
 * alone: permanent, the other messages of the publish are stored.
 */
export class BufferUnencodableError extends UnencodableMessageError {
  override readonly name = 'BufferUnencodableError';
  constructor(messageId: string, detail: string, options?: { cause?: unknown }) {
    super('BUFFER_UNENCODABLE', `message '${messageId.length > 64 ? `${messageId.slice(0, 64)}…` : messageId}' cannot be stored in a buffer: ${detail}`, options);
  }
}

/**
 * A stored record has a valid checksum but cannot be read back as a message (written by another
 * version?). Set as the delivery's `intakeError`: the route dead-letters it, the buffer goes on.
 */
export class BufferRecordError extends InterchangeError {
  override readonly name = 'BufferRecordError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('BUFFER_RECORD', message, { ...options, permanent: true });
  }
}

/** Writing or syncing a buffer's log failed (disk full, I/O error): the publish is not stored; retrying may help. */
export class BufferWriteError extends InterchangeError {
  override readonly name = 'BufferWriteError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('BUFFER_WRITE', message, options);
  }
}
