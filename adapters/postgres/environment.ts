import type { AdapterEnvironment } from '../../src/core/adapter-environment.ts';

/**
 * The PostgreSQL adapter's declaration for `interchange run`: it binds nothing by itself (a route file
 * opens the database and passes `postgresModule({ database })`), but `openDatabase()` reads
 * `DATABASE_URL`, which the CLI checks before anything starts. Imports nothing of the adapter (not pg).
 */
export const environment: AdapterEnvironment = { name: 'postgres', variables: ['DATABASE_URL'] };
