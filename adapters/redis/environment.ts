import type { AdapterEnvironment } from '../../src/core/adapter-environment.ts';

/**
 * The Redis adapter's declaration for `interchange run`: it binds nothing by itself (a route file
 * creates its Redis client), but `REDIS_URL` is where route files conventionally take it from, so the
 * CLI checks it before anything starts. Imports nothing of the adapter.
 */
export const environment: AdapterEnvironment = { name: 'redis', variables: ['REDIS_URL'] };
