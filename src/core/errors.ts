/**
 * Every error Interchange raises is an `InterchangeError` with a stable `code` (for dead-letter
 * headers, metrics and `switch`es) and the original `cause`. Subclasses exist where the class
 * drives behaviour.
 */
export class InterchangeError extends Error {
  override readonly name: string = 'InterchangeError';
  /**
   * The message itself is at fault (invalid, unparseable…): it fails the same way on every attempt,
   * so the runtime never retries it, whatever the error handler asks.
   */
  readonly permanent: boolean;

  constructor(
    readonly code: string,
    message: string,
    options?: { cause?: unknown; permanent?: boolean },
  ) {
    super(message, options);
    this.permanent = options?.permanent ?? false;
  }
}

/** Whether retrying cannot help: an `InterchangeError` marked `permanent`. */
export function isPermanentFailure(error: unknown): boolean {
  return error instanceof InterchangeError && error.permanent;
}

/** A route definition is wrong; raised when routes are built or validated, never at run time. */
export class RouteDefinitionError extends InterchangeError {
  override readonly name = 'RouteDefinitionError';
  constructor(
    message: string,
    readonly routeId?: string,
    readonly stepId?: string,
    readonly declaredAt?: string,
  ) {
    super('ROUTE_DEFINITION', [message, routeId && `route '${routeId}'`, stepId && `step '${stepId}'`, declaredAt && `at ${declaredAt}`].filter(Boolean).join(' — '));
  }
}

/** A transport is not connected (yet, or any more): the caller may retry once it reconnects. */
export class NotConnectedError extends InterchangeError {
  override readonly name = 'NotConnectedError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('NOT_CONNECTED', message, options);
  }
}

/** An endpoint URI cannot be parsed, or names a scheme no transport serves. */
export class EndpointError extends InterchangeError {
  override readonly name = 'EndpointError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('ENDPOINT', message, options);
  }
}

/** A step failed on one message. Names where: route, step and the DSL line that declared the step. */
export class StepError extends InterchangeError {
  override readonly name = 'StepError';
  constructor(
    readonly routeId: string,
    readonly stepId: string,
    readonly declaredAt: string,
    cause: unknown,
  ) {
    const inner = toError(cause);
    super(inner instanceof InterchangeError ? inner.code : 'STEP_FAILED', `${inner.message} (route '${routeId}', step '${stepId}' declared at ${declaredAt})`, {
      cause: inner,
      permanent: isPermanentFailure(inner),
    });
  }

  /** The error the step itself raised. */
  get original(): Error {
    return this.cause as Error;
  }
}

/** An operation did not complete in time (drain deadline, request-reply, publish confirm). */
export class TimeoutError extends InterchangeError {
  override readonly name = 'TimeoutError';
  constructor(message: string) {
    super('TIMEOUT', message);
  }
}

/** A message was refused because its channel or store is full and the caller chose not to wait. */
export class CapacityError extends InterchangeError {
  override readonly name = 'CapacityError';
  constructor(message: string) {
    super('CAPACITY', message);
  }
}

/** Normalises anything thrown into an Error. */
export function toError(thrown: unknown): Error {
  if (thrown instanceof Error) return thrown;
  return new InterchangeError('NON_ERROR_THROWN', typeof thrown === 'string' ? thrown : `non-error thrown: ${String(thrown)}`);
}

/** The stable code of any error: its `code` when it is an InterchangeError, else a generic one. */
export function errorCode(error: unknown): string {
  return error instanceof InterchangeError ? error.code : 'STEP_FAILED';
}

/**
 * A message cannot be written in a destination's wire format (a property over its length limit, a
 * number out of range, a size over the destination's maximum): the message itself is at fault, so
 * the failure is permanent and concerns that message alone — the connection stays healthy.
 */
export class UnencodableMessageError extends InterchangeError {
  override readonly name: string = 'UnencodableMessageError';
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(code, message, { ...options, permanent: true });
  }
}

/**
 * Some messages of one `publish` call failed on their own (e.g. `UnencodableMessageError`) while
 * every other message of the call was confirmed. `failures` maps the index of each failed message
 * in the call's `messages` to its error; callers settle each message by its own outcome.
 */
export class PartialPublishError extends InterchangeError {
  override readonly name = 'PartialPublishError';
  constructor(
    readonly failures: ReadonlyMap<number, Error>,
    total: number,
  ) {
    const first = failures.values().next().value as Error | undefined;
    super('PUBLISH_PARTIAL', `${failures.size} of ${total} message(s) not published${first === undefined ? '' : `: ${first.message}`}`, { cause: first });
  }
}

/**
 * Something was asked of an integration that has not started (publishing before `start()`): start
 * it first. Unlike `NotConnectedError`, waiting does not help.
 */
export class NotStartedError extends InterchangeError {
  override readonly name = 'NotStartedError';
  constructor(message: string) {
    super('NOT_STARTED', message);
  }
}
