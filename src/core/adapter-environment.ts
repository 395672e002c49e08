import type { ContainerModule, ServiceIdentifier } from 'inversify';

/** What an adapter's `bind` is told about the run it may join. */
export interface AdapterEnvironmentContext {
  /** The process environment (`process.env` under `interchange run`). */
  readonly env: Readonly<Record<string, string | undefined>>;
  /** The schemes the routes consume from or send to (statically known destinations). */
  readonly schemes: ReadonlySet<string>;
  /** Whether the container already binds `id`: the route file configured the adapter itself, and that wins. */
  isBound(id: ServiceIdentifier): boolean;
}

/** A module the environment asks for, and the line announcing it. */
export interface AdapterBinding {
  readonly module: ContainerModule;
  /** One line for the console, secrets redacted. */
  readonly announcement: string;
}

/**
 * What an adapter declares for `interchange run`, exported as `environment` from the adapter's entry
 * point (Interchange's own, or any package named in `INTERCHANGE_ADAPTERS`): the CLI discovers
 * adapters by this declaration, never by naming them.
 *
 * Contract: `variables` are the environment variables holding URLs with credentials that the adapter
 * reads; the CLI checks each one that is set (`checkUrlCredentials`) before binding anything. `bind`
 * returns the module the environment and the routes ask for, or undefined — it must return undefined
 * when `isBound` says the route file bound the adapter already. It never connects (the integration
 * connects transports when it starts) and does no I/O beyond importing code: it may resolve
 * asynchronously, so that an adapter imports its transport and client library only when it binds.
 * @example
 * export const environment: AdapterEnvironment = {
 *   name: 'nats',
 *   variables: ['NATS_URL'],
 *   bind: ({ env, isBound }) => (env.NATS_URL && !isBound(NatsTransport) ? { module: natsModule({ url: env.NATS_URL }), announcement: `NATS_URL is set: nats: endpoints use ${redactUrl(env.NATS_URL)}` } : undefined),
 * };
 */
export interface AdapterEnvironment {
  /** The adapter's name, in messages (`amqp`, `postgres`). */
  readonly name: string;
  readonly variables: readonly string[];
  bind?(context: AdapterEnvironmentContext): AdapterBinding | undefined | Promise<AdapterBinding | undefined>;
}

/** Whether a module's `environment` export is an `AdapterEnvironment`. */
export function isAdapterEnvironment(value: unknown): value is AdapterEnvironment {
  if (typeof value !== 'object' || value === null) return false;
  const candidate = value as Partial<Record<keyof AdapterEnvironment, unknown>>;
  return (
    typeof candidate.name === 'string' &&
    Array.isArray(candidate.variables) &&
    candidate.variables.every((variable) => typeof variable === 'string') &&
    (candidate.bind === undefined || typeof candidate.bind === 'function')
  );
}
