import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Container, ContainerModule } from 'inversify';
import { InterchangeError } from '../../src/core/index.ts';
import type { RouteSource } from '../../src/dsl/route-definition.ts';
import type { Integration } from '../../src/runtime/integration.ts';
import { UsageError } from './command-line.ts';

/** The integration the CLI built from a route file, as `createIntegration` returns it. */
export type RunningIntegration = Integration & { readonly container: Container };

/** Called by the CLI before it stops the routes: stop generators and timers started in `onStart` here. */
export type StopHook = () => void | Promise<void>;

/**
 * What a route file gives the CLI: either as named exports (`export const routes = […]`,
 * optionally `modules`, `onStart` and `onStopped`), or as a default export of this shape.
 */
export interface IntegrationModule {
  readonly routes: readonly RouteSource[];
  /** Adapter and service modules, passed to `createIntegration` (the memory transport is always there). */
  readonly modules?: readonly ContainerModule[];
  /**
   * Called once every route has started, e.g. to start a generator. May return a `StopHook`, which
   * the CLI awaits before it stops the routes. Throwing stops the integration; the CLI exits with 1.
   */
  readonly onStart?: (integration: RunningIntegration) => void | StopHook | Promise<void | StopHook>;
  /**
   * Called once the routes have stopped and drained and the transports are closed, before the CLI
   * prints the final counts: e.g. to report what reached an in-memory destination. Throwing is
   * reported on stderr; the counts are still printed and the CLI exits with 1.
   */
  readonly onStopped?: (integration: RunningIntegration) => void | Promise<void>;
}

/** A route file is not usable: not a module of routes. Exit code 1. */
export class RouteFileError extends InterchangeError {
  override readonly name = 'RouteFileError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('ROUTE_FILE', message, options);
  }
}

/**
 * Identity, for typing a route file's default export.
 * @example
 * export default defineIntegration({
 *   routes: [from('memory:in').to('memory:out')],
 *   onStart: (integration) => { … },
 * });
 */
export function defineIntegration(module: IntegrationModule): IntegrationModule {
  return module;
}

/**
 * Imports a route file (TypeScript runs when tsx is registered, as `bin/interchange.js` does) and
 * checks the shape of what it exports. Importing runs the file: a route the DSL refuses throws its
 * `RouteDefinitionError` from here. Throws `UsageError` if the file does not exist, `RouteFileError`
 * if it exports no routes.
 */
export async function loadRouteFile(file: string, cwd: string = process.cwd()): Promise<IntegrationModule> {
  const path = resolve(cwd, file);
  if (!existsSync(path)) throw new UsageError(`no such route file: ${file}`);
  const exports = (await import(pathToFileURL(path).href)) as Record<string, unknown>;
  return integrationModuleOf(exports, file);
}

/** The `IntegrationModule` a route file's exports describe; `RouteFileError` saying what is wrong if none. */
export function integrationModuleOf(exports: Readonly<Record<string, unknown>>, file: string): IntegrationModule {
  const fallback = exports.default;
  const candidate = isObject(fallback) && 'routes' in fallback ? fallback : exports;
  const { routes, modules, onStart, onStopped } = candidate as Record<string, unknown>;
  const where = candidate === exports ? 'export' : 'default export';
  if (routes === undefined) {
    throw new RouteFileError(`${file} exports no routes: add \`export const routes = [from(…)…]\` or \`export default defineIntegration({ routes })\``);
  }
  if (!Array.isArray(routes) || !routes.every((route) => isObject(route) && typeof route.definition === 'function')) {
    throw new RouteFileError(`${file}: the ${where} \`routes\` must be an array of routes built with from(…)`);
  }
  if (modules !== undefined && !Array.isArray(modules)) throw new RouteFileError(`${file}: the ${where} \`modules\` must be an array of ContainerModules`);
  if (onStart !== undefined && typeof onStart !== 'function') throw new RouteFileError(`${file}: the ${where} \`onStart\` must be a function`);
  if (onStopped !== undefined && typeof onStopped !== 'function') throw new RouteFileError(`${file}: the ${where} \`onStopped\` must be a function`);
  return { routes, modules, onStart, onStopped } as IntegrationModule;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null;
}
