import type { AdapterEnvironment } from '../../src/core/adapter-environment.ts';
import { redactUrl } from '../../src/core/redact.ts';

/**
 * The PostgreSQL adapter's declaration for `interchange run`. `openDatabase()` reads `DATABASE_URL`,
 * which the CLI checks before anything starts; the outbox, inbox and stores are bound by the route file
 * (`postgresModule({ database })`). A route using `pgqueue:` gets the PostgreSQL queue transport
 * (unless the route file binds a `PgQueueTransport` itself): at `DATABASE_URL`, else on an embedded
 * PGlite in memory (lost on exit), so a first run needs nothing installed.
 *
 * Cheap to import: the transport (and pg with it) is imported by `bind`, and only when a route uses
 * `pgqueue:`, so `bind` resolves asynchronously; it never connects.
 */
export const environment: AdapterEnvironment = {
  name: 'postgres',
  variables: ['DATABASE_URL'],
  bind: async ({ env, schemes, isBound }) => {
    if (!schemes.has('pgqueue')) return undefined;
    const [{ PgQueueTransport }, { pgQueueModule }] = await Promise.all([import('./pg-queue-transport.ts'), import('./pg-queue-module.ts')]);
    if (isBound(PgQueueTransport)) return undefined;
    const url = env.DATABASE_URL === '' ? undefined : env.DATABASE_URL;
    return url === undefined
      ? { module: pgQueueModule(), announcement: 'no DATABASE_URL: pgqueue: endpoints use an embedded PGlite database in memory (lost on exit; set DATABASE_URL to use PostgreSQL)' }
      : { module: pgQueueModule({ url }), announcement: `DATABASE_URL is set: pgqueue: endpoints use PostgreSQL at ${redactUrl(url)}` };
  },
};
