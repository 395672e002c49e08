import { ContainerModule } from 'inversify';
import { Logger, Transport } from '../../src/core/index.ts';
import { Database } from './database.ts';
import { validatePgQueueOptions, type PgQueueTransportOptions } from './pg-queue-options.ts';
import { PgQueueTransport } from './pg-queue-transport.ts';

/**
 * Binds the PostgreSQL queue transport (`pgqueue:`) into the `Transport` multi-binding, logging
 * through the container's `Logger`. Its database: `options.database`, else the container's `Database`
 * (bound by `postgresModule`: outbox, stores and queues share one pool), else one it opens at `url` /
 * `DATABASE_URL`, else an embedded PGlite in memory. Throws `PostgresConfigurationError` for invalid options.
 * @example createIntegration({ routes, modules: [pgQueueModule({ url: process.env.DATABASE_URL, schema: 'jobs' })] })
 */
export function pgQueueModule(options: PgQueueTransportOptions = {}): ContainerModule {
  validatePgQueueOptions(options);
  return new ContainerModule(({ bind }) => {
    bind(PgQueueTransport)
      .toDynamicValue((context) => {
        const database = options.database ?? context.get<Database>(Database, { optional: true });
        return new PgQueueTransport({ ...options, ...(database === undefined ? {} : { database }), log: options.log ?? context.get<Logger>(Logger) });
      })
      .inSingletonScope();
    bind<Transport>(Transport).toService(PgQueueTransport);
  });
}
