import type { ErrorObject } from 'ajv';
import { InterchangeError } from '../core/errors.ts';

/**
 * Base of every schema error. `permanent`: the same message fails the same way every time, so the
 * runtime never retries it (it is dead-lettered, or rejected without a dead-letter channel).
 */
export class SchemaError extends InterchangeError {
  override readonly name: string = 'SchemaError';
  override readonly permanent = true;
}

/** One validation error, as dead-letter headers carry it. */
export interface ValidationIssue {
  /** JSON pointer into the body (`''` is the body itself). */
  readonly pointer: string;
  readonly keyword: string;
  readonly message: string;
}

/** Ajv's errors, reduced to pointer, keyword and message. */
export function validationIssues(errors: readonly ErrorObject[]): ValidationIssue[] {
  return errors.map((error) => ({
    pointer: error.keyword === 'required' || error.keyword === 'dependentRequired'
      ? `${error.instancePath}/${String((error.params as { missingProperty?: string }).missingProperty ?? '')}`
      : error.instancePath,
    keyword: error.keyword,
    message: error.message ?? error.keyword,
  }));
}

/**
 * A body does not satisfy its contract (`code` 'SCHEMA_INVALID'), inbound or outbound. Carries
 * ajv's errors; the message lists them compactly (`/temperature type: must be number; …`) so that
 * dead-letter headers show them.
 */
export class SchemaValidationError extends SchemaError {
  override readonly name = 'SchemaValidationError';
  readonly issues: readonly ValidationIssue[];
  constructor(
    readonly contract: string,
    readonly errors: readonly ErrorObject[],
    readonly direction: 'inbound' | 'outbound' = 'inbound',
  ) {
    const issues = validationIssues(errors);
    const list = issues.map((issue) => `${issue.pointer || '/'} ${issue.keyword}: ${issue.message}`).join('; ');
    super('SCHEMA_INVALID', `${direction === 'outbound' ? 'outbound message refused: ' : ''}body does not match ${contract}: ${list}`);
    this.issues = issues;
  }
}

/** A message or route names a subject or version the registry does not have (`SCHEMA_UNKNOWN`). */
export class UnknownContractError extends SchemaError {
  override readonly name = 'UnknownContractError';
  constructor(readonly contract: string, known: readonly string[]) {
    const shape = /^[^@]+@[1-9]\d*$/.test(contract) ? '' : ' — contracts are named subject@version';
    super('SCHEMA_UNKNOWN', `unknown contract '${contract}'${shape} (registry has: ${known.join(', ') || 'none'})`);
  }
}

/** A message declares (in its `schema` header) a contract other than the one the step expects. */
export class ContractMismatchError extends SchemaError {
  override readonly name = 'ContractMismatchError';
  constructor(readonly declared: string, readonly expected: string) {
    super('SCHEMA_MISMATCH', `message declares ${declared} but the step expects ${expected}${subjectOf(declared) === subjectOf(expected) ? ' (upcast it first with .upcast())' : ''}`);
  }
}

/** A step has no contract to check a message against: no `schema` header, none named (`SCHEMA_MISSING`). */
export class MissingContractError extends SchemaError {
  override readonly name = 'MissingContractError';
  constructor() {
    super('SCHEMA_MISSING', 'the message has no schema header and the step names no contract');
  }
}

/** A payload is larger than the configured maximum, checked before parsing (`PAYLOAD_TOO_LARGE`). */
export class PayloadTooLargeError extends SchemaError {
  override readonly name = 'PayloadTooLargeError';
  constructor(readonly size: number, readonly limit: number) {
    super('PAYLOAD_TOO_LARGE', `payload of ${size} bytes exceeds the limit of ${limit} bytes`);
  }
}

/** A payload nests objects/arrays deeper than the configured maximum (`PAYLOAD_TOO_DEEP`). */
export class PayloadTooDeepError extends SchemaError {
  override readonly name = 'PayloadTooDeepError';
  constructor(readonly limit: number) {
    super('PAYLOAD_TOO_DEEP', `payload nests deeper than ${limit} levels`);
  }
}

/** A payload is not JSON, or carries a forbidden key (`PAYLOAD_UNPARSEABLE`). */
export class PayloadParseError extends SchemaError {
  override readonly name = 'PayloadParseError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('PAYLOAD_UNPARSEABLE', message, options);
  }
}

/**
 * A contract is unusable (`SCHEMA_DEFINITION`): not JSON, no `$id`, a remote `$ref`, a reference
 * cycle that reaches no property or item, an unsafe or unsupported pattern, not valid draft 2020-12
 * — raised when the registry loads or compiles — or its compiled validator threw while validating
 * a body. Permanent: the same body fails the same way on every attempt, so a route dead-letters it
 * instead of retrying. The message starts with where: `file: …`, or `file:line:column: …` (as
 * compilers print it, so editors link it) when `line` and `column` are known — a JSON syntax error.
 */
export class SchemaDefinitionError extends InterchangeError {
  override readonly name = 'SchemaDefinitionError';
  /** 1-based line and column in `file` (a JSON syntax error), when known. */
  readonly line?: number;
  readonly column?: number;
  constructor(message: string, readonly file?: string, options?: { cause?: unknown; line?: number; column?: number }) {
    const at = options?.line === undefined ? '' : `:${options.line}:${options.column ?? 1}`;
    super('SCHEMA_DEFINITION', file === undefined ? message : `${file}${at}: ${message}`, { ...(options !== undefined && 'cause' in options ? { cause: options.cause } : {}), permanent: true });
    if (options?.line !== undefined) {
      this.line = options.line;
      this.column = options.column ?? 1;
    }
  }
}

function subjectOf(contract: string): string {
  return contract.split('@')[0] ?? contract;
}
