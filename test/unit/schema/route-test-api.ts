// The public API the route tests use, plus two helpers.
import { retryAfter, validate } from '../../../facade/index.ts';

export * from '../../../facade/index.ts';
export const onErrorRetryAll = (): ReturnType<typeof retryAfter> => retryAfter(1);
export const validateStep = validate;
