export * from './redis-idempotency-store.ts';
