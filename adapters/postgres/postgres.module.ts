import { ContainerModule } from 'inversify';
import { Lifecycle, Logger } from '../../src/core/index.ts';
import { TransportRegistry } from '../../src/runtime/transport-registry.ts';
import { SchemaRegistry } from '../../src/schema/index.ts';
import { Database } from './database.ts';
import { Outbox } from './outbox.ts';
import { OutboxRelay } from './outbox-relay.ts';
import { validatePostgresOptions, type PostgresJsonOptions } from './postgres-options.ts';

export interface PostgresModuleOptions extends PostgresJsonOptions {
  /** An open database (`await openDatabase()`: PostgreSQL at `DATABASE_URL`, else an embedded PGlite). */
  readonly database: Database;
}

/**
 * Binds the `Database`, the `Outbox` (validating with the container's `SchemaRegistry` when one is
 * bound) and, unless `relay: false`, an `OutboxRelay` publishing through the integration's transports,
 * as a `Lifecycle`: the integration starts it once its transports are connected and stops it (its
 * batches in flight confirmed) before it closes them. The `inbox(…)` step finds the `Database` here.
 * Throws `PostgresConfigurationError` for invalid options.
 * @example
 * const database = await openDatabase();
 * export const modules = [amqpModule(), schemaModule(), postgresModule({ database, schema: 'orders' })];
 */
export function postgresModule({ database, relay = {}, ...names }: PostgresModuleOptions): ContainerModule {
  validatePostgresOptions({ relay, ...names });
  return new ContainerModule(({ bind }) => {
    bind<Database>(Database).toConstantValue(database);
    bind(Outbox)
      .toDynamicValue((context) => new Outbox({ ...names, registry: context.get<SchemaRegistry>(SchemaRegistry, { optional: true }) }))
      .inSingletonScope();
    if (relay !== false) {
      bind(OutboxRelay)
        .toDynamicValue((context) => new OutboxRelay(database, context.get(TransportRegistry), { ...relay, ...names, log: context.get<Logger>(Logger) }))
        .inSingletonScope();
      bind<Lifecycle>(Lifecycle).toService(OutboxRelay);
    }
  });
}
