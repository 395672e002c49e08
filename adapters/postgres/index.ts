export * from './database.ts';
export * from './migrations.ts';
export * from './outbox.ts';
export * from './outbox-relay.ts';
export * from './inbox.ts';
export * from './postgres-options.ts';
export * from './postgres.module.ts';
export * from './postgres-errors.ts';
export { IdempotencyStore, MemoryIdempotencyStore, type ClaimResult } from '../../src/stores/idempotency-store.ts';
