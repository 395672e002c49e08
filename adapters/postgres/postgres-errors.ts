import { InterchangeError } from '../../src/core/index.ts';

/** Adapter options are invalid, or an operation needs something that is not configured (a schema registry for a contract). Never retried. */
export class PostgresConfigurationError extends InterchangeError {
  override readonly name = 'PostgresConfigurationError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('POSTGRES_CONFIGURATION', message, { ...options, permanent: true });
  }
}

/** The database could not be reached or a statement failed for a reason outside the message (connection lost, …): retried. */
export class DatabaseError extends InterchangeError {
  override readonly name = 'DatabaseError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('DATABASE', message, options);
  }
}

/** A message cannot be stored in the outbox (its body is neither JSON-serialisable nor bytes). Permanent. */
export class OutboxMessageError extends InterchangeError {
  override readonly name = 'OutboxMessageError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('OUTBOX_MESSAGE', message, { ...options, permanent: true });
  }
}
