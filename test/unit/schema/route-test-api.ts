// The public API the route tests use, plus two helpers.
import { retryAfter, validate } from '../../../src/index.ts';

export * from '../../../src/index.ts';
export const onErrorRetryAll = (): ReturnType<typeof retryAfter> => retryAfter(1);
export const validateStep = validate;
