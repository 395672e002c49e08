import { createRequire } from 'node:module';
import { isAbsolute, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Container, ContainerModule, ServiceIdentifier } from 'inversify';
import { checkUrlCredentials, InterchangeError, isAdapterEnvironment, parseEndpoint, type AdapterEnvironment, type StepDefinition } from '../../src/core/index.ts';
import type { RouteSource } from '../../src/dsl/route-definition.ts';

export interface EnvironmentModule {
  readonly module: ContainerModule;
  /** One line for the console, secrets redacted. */
  readonly announcement: string;
}

/**
 * Interchange's own adapters' declarations, loaded only when `interchange run` asks (so `--help` loads
 * none of them). Each imports nothing heavy: the AMQP and MQTT transports (amqplib, mqtt.js) are
 * imported by their `bind`, only when the run binds them; PostgreSQL's binds the queue transport
 * (pg imported lazily) only when a route uses `pgqueue:`; Redis's the streams transport (ioredis
 * imported lazily) only when a route uses `redis:`; the buffer's is synchronous, its transport being plain Node (fs) and small.
 */
const BUILT_IN_ADAPTERS: readonly (() => Promise<{ readonly environment: unknown }>)[] = [
  () => import('../../adapters/amqp/environment.ts'),
  () => import('../../adapters/mqtt/environment.ts'),
  () => import('../../adapters/postgres/environment.ts'),
  () => import('../../adapters/redis/environment.ts'),
  () => import('../../adapters/buffer/buffer-environment.ts'),
  () => import('../../adapters/nats/environment.ts'),
  () => import('../../adapters/zeromq/environment.ts'),
  () => import('../../adapters/xmpp/environment.ts'),
  () => import('../../adapters/stomp/environment.ts'),
  () => import('../../adapters/coap/environment.ts'),
  () => import('../../adapters/amqp10/environment.ts'),
];

/** The environment variable naming more adapter packages (comma-separated), each exporting `environment`. */
export const ADAPTERS_VARIABLE = 'INTERCHANGE_ADAPTERS';

/**
 * Transports configured by the environment, for `interchange run`, from what each adapter declares
 * (`AdapterEnvironment`, exported as `environment` from its entry point): Interchange's own adapters
 * and every package or file named in `INTERCHANGE_ADAPTERS` (comma-separated; resolved from `cwd`,
 * so a project's own dependencies are found). What the built-in adapters declare:
 * - `AMQP_URL`: binds RabbitMQ.
 * - `MQTT_URL`, or any route using `mqtt:`: binds MQTT — to `MQTT_URL`, else to an embedded broker on
 *   loopback, so a first run needs nothing installed.
 * - any route using `redis:`: binds Redis Streams, to `REDIS_URL` or else `redis://127.0.0.1:6379`.
 * - any route using `pgqueue:`: binds the PostgreSQL queue, to `DATABASE_URL` or else an embedded PGlite.
 * - `DATABASE_URL`, `REDIS_URL`: checked (route files open their database and Redis client).
 * A route file's own binding of a transport always wins. An adapter's transport and client library are
 * imported only when it binds (a run without `AMQP_URL` never loads amqplib; one without a `pgqueue:` route never loads pg).
 *
 * Throws `EndpointError` (the password never in it) when a variable an adapter declares has a character
 * its user info must percent-encode (`checkUrlCredentials`), whether or not this binds a transport for
 * it; `InterchangeError` (`ADAPTER_ENVIRONMENT`) when an `INTERCHANGE_ADAPTERS` entry cannot be loaded or
 * exports no `environment`.
 */
export async function environmentModules(container: Container, routes: readonly RouteSource[] = [], env: NodeJS.ProcessEnv = process.env, cwd: string = process.cwd()): Promise<EnvironmentModule[]> {
  const adapters = await adapterEnvironments(env[ADAPTERS_VARIABLE], cwd);
  for (const adapter of adapters) {
    for (const name of adapter.variables) {
      const url = env[name];
      if (url !== undefined) checkUrlCredentials(url, name);
    }
  }
  const context = { env, schemes: schemesOf(routes), isBound: (id: ServiceIdentifier) => container.isBound(id) };
  const modules: EnvironmentModule[] = [];
  for (const adapter of adapters) {
    const binding = await adapter.bind?.(context);
    if (binding !== undefined) modules.push(binding);
  }
  return modules;
}

/** The built-in adapters' declarations, then those of `INTERCHANGE_ADAPTERS`, each once. */
async function adapterEnvironments(named: string | undefined, cwd: string): Promise<AdapterEnvironment[]> {
  const builtIn = await Promise.all(BUILT_IN_ADAPTERS.map(async (load) => (await load()).environment));
  const specifiers = (named ?? '').split(',').map((entry) => entry.trim()).filter((entry) => entry !== '');
  const extra = await Promise.all(specifiers.map((specifier) => loadEnvironment(specifier, cwd)));
  return [...new Set([...builtIn, ...extra])].filter(isAdapterEnvironment);
}

async function loadEnvironment(specifier: string, cwd: string): Promise<AdapterEnvironment> {
  let loaded: { readonly environment?: unknown };
  try {
    loaded = (await import(locate(specifier, cwd))) as { readonly environment?: unknown };
  } catch (cause) {
    throw new InterchangeError('ADAPTER_ENVIRONMENT', `${ADAPTERS_VARIABLE}: cannot load '${specifier}': ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
  }
  if (!isAdapterEnvironment(loaded.environment)) {
    throw new InterchangeError('ADAPTER_ENVIRONMENT', `${ADAPTERS_VARIABLE}: '${specifier}' exports no adapter environment (expected \`export const environment: AdapterEnvironment = { name, variables, bind }\`, AdapterEnvironment from 'interchange-eip/spi')`);
  }
  return loaded.environment;
}

/** A file path (`./my-adapter.js`) from `cwd`; a package as the project in `cwd` resolves it, else as the CLI does. */
function locate(specifier: string, cwd: string): string {
  if (specifier.startsWith('.') || isAbsolute(specifier)) return pathToFileURL(resolve(cwd, specifier)).href;
  try {
    return pathToFileURL(createRequire(join(cwd, 'package.json')).resolve(specifier)).href;
  } catch {
    return specifier; // an import-only package, or one installed next to the CLI
  }
}

/** The schemes routes consume from or send to (statically known destinations). */
function schemesOf(routes: readonly RouteSource[]): Set<string> {
  const schemes = new Set<string>();
  const add = (uri: string): void => {
    try {
      schemes.add(parseEndpoint(uri).scheme);
    } catch {
      // an unparseable URI is reported by route validation, with its route and step
    }
  };
  const walk = (steps: readonly StepDefinition[]): void => {
    for (const step of steps) {
      step.sendsTo.forEach(add);
      step.branches.forEach(walk);
    }
  };
  for (const route of routes) {
    const definition = route.definition();
    add(definition.source);
    walk(definition.steps);
  }
  return schemes;
}
