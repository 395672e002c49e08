import type { ValidationIssue } from './errors.ts';

/**
 * The header a message failing validation carries to the dead-letter channel: a JSON array of
 * `{ pointer, keyword, message }` (at most `MAX_REPORTED_ISSUES`), next to the core's
 * `x-interchange-error-code` (`SCHEMA_INVALID`) and `x-interchange-error` (the same, as one line).
 * Steps attach it with `failWithEvidence` (step-support.ts), never by hand.
 */
export const ValidationErrorsHeader = 'x-interchange-validation-errors';

export const MAX_REPORTED_ISSUES = 20;

export function validationErrorsHeaderValue(issues: readonly ValidationIssue[]): string {
  return JSON.stringify(issues.slice(0, MAX_REPORTED_ISSUES));
}
