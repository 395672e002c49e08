import { ContainerModule } from 'inversify';
import { JsonSchemaRegistry, SchemaRegistry, type SchemaRegistryOptions } from './registry.ts';

export interface SchemaModuleOptions extends SchemaRegistryOptions {
  /** The contracts folder (default `schemas`, relative to the working directory). */
  readonly directory?: string;
  /** A registry built elsewhere (tests): bound as it is, `directory` ignored. */
  readonly registry?: SchemaRegistry;
}

/**
 * Binds `SchemaRegistry`, loaded and compiled now (a bad contract throws `SchemaDefinitionError`
 * here, before any route starts). `.validate()`, `from(uri, { contract })`, `.to(uri, { contract })`
 * and `.upcast()` resolve it through `context.service(SchemaRegistry)`.
 * @example createIntegration({ routes, modules: [schemaModule({ directory: 'schemas' })] })
 */
export function schemaModule({ directory = 'schemas', registry, ...options }: SchemaModuleOptions = {}): ContainerModule {
  const instance = registry ?? JsonSchemaRegistry.fromDirectory(directory, options);
  return new ContainerModule(({ bind }) => {
    bind<SchemaRegistry>(SchemaRegistry).toConstantValue(instance);
  });
}
