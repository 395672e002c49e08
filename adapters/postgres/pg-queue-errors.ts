import { InterchangeError, NotConnectedError, UnencodableMessageError } from '../../src/core/index.ts';
import { DatabaseError } from './postgres-errors.ts';

/**
 * A message cannot be stored in a `pgqueue:` queue (a body that is neither JSON-serialisable nor
 * bytes, a header that is not a finite scalar, over `maxMessageBytes`): it fails alone, permanently,
 * the other messages of the `publish` call are stored (`PartialPublishError` names it by index).
 */
export class PgQueueUnencodableError extends UnencodableMessageError {
  override readonly name = 'PgQueueUnencodableError';
  constructor(id: string, detail: string, options?: { cause?: unknown }) {
    super('PGQUEUE_UNENCODABLE', `message ${id} cannot be stored in a pgqueue: ${detail}`, options);
  }
}

/** A row a consumer claimed cannot be taken as a message (over the size limit, a foreign row without an id): it is dead-lettered at once with this reason. */
export class PgQueueUndecodableError extends UnencodableMessageError {
  override readonly name = 'PgQueueUndecodableError';
  constructor(detail: string) {
    super('PGQUEUE_UNDECODABLE', detail);
  }
}

/**
 * Whether a database error is about the link or the server's state, not the statement (retry it):
 * a socket error without an SQLSTATE, connection exceptions (class 08), operator intervention
 * (57P01 admin shutdown, 57P02, 57P03 cannot connect now), too many connections (53300),
 * serialization failures and deadlocks (40001, 40P01). Of Interchange's own errors, `DatabaseError`
 * (`openDatabase` could not reach the server) and `NotConnectedError` are transient, no other.
 */
export function isTransientDatabaseError(error: unknown): boolean {
  if (error instanceof InterchangeError) return error instanceof DatabaseError || error instanceof NotConnectedError;
  const code = (error as { code?: unknown } | undefined)?.code;
  if (typeof code !== 'string' || !/^[0-9A-Z]{5}$/.test(code)) return true;
  return code.startsWith('08') || code.startsWith('57P') || code === '53300' || code === '40001' || code === '40P01';
}
