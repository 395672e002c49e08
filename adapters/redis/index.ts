export * from './redis-idempotency-store.ts';
export * from './redis-aggregation-repository.ts';
export { environment } from './environment.ts';
