export * from './redis-idempotency-store.ts';
export { environment } from './redis-environment.ts';
