import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, extname, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Container, ContainerModule } from 'inversify';
import { InterchangeError } from '../../src/core/errors.ts';
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
 * Imports a route file and checks the shape of what it exports. Importing runs the file: a route the
 * DSL refuses throws its `RouteDefinitionError` from here.
 * - A route file is an ES module: `.mjs`/`.mts`, or `.js`/`.ts` under a package.json with
 *   `"type": "module"`. Anything Node would load as CommonJS is refused before it runs.
 * - `.js`/`.mjs` run as they are. `.ts`/`.mts` run through tsx when it is installed (in the project or
 *   beside Interchange), else through Node's own type stripping where this Node has it
 *   (`process.features.typescript`); else `RouteFileError` says to install tsx.
 * Throws `UsageError` if the file does not exist, `RouteFileError` if it is not an ES module, cannot
 * run as TypeScript or exports no routes.
 */
export async function loadRouteFile(file: string, cwd: string = process.cwd()): Promise<IntegrationModule> {
  const path = resolve(cwd, file);
  if (!existsSync(path)) throw new UsageError(`no such route file: ${file}`);
  checkEsModule(path, file);
  if (TYPESCRIPT.test(path)) await enableTypeScript(file, cwd);
  let exports: Record<string, unknown>;
  try {
    exports = (await import(pathToFileURL(path).href)) as Record<string, unknown>;
  } catch (error) {
    throw notAnEsModule(error, file) ?? error;
  }
  return integrationModuleOf(exports, file);
}

const TYPESCRIPT = /\.m?ts$/;
const ES_MODULES = 'route files must be ES modules (import/export)';

/** Refuses a file Node would load as CommonJS: `.cjs`/`.cts`, or `.js`/`.ts` outside a `"type": "module"` package. */
function checkEsModule(path: string, file: string): void {
  const extension = extname(path);
  if (extension === '.cjs' || extension === '.cts') {
    throw new RouteFileError(`${file} is a CommonJS file: ${ES_MODULES}; rename it to ${extension === '.cjs' ? '.mjs' : '.mts'} and use import/export`);
  }
  if (extension === '.mjs' || extension === '.mts') return;
  const manifest = nearestPackageJson(dirname(path));
  if (manifest?.type === 'module') return;
  const where = manifest === undefined ? 'there is no package.json above it' : `${manifest.path} has no "type": "module"`;
  throw new RouteFileError(`${file} would load as CommonJS (${where}): ${ES_MODULES}; add "type": "module" to the project's package.json, or name the file .mjs/.mts`);
}

/** The package.json Node consults for a file's module format: the nearest one above it. */
function nearestPackageJson(directory: string): { readonly path: string; readonly type: unknown } | undefined {
  for (let current = directory; ; current = dirname(current)) {
    const path = join(current, 'package.json');
    if (existsSync(path)) {
      try {
        return { path, type: (JSON.parse(readFileSync(path, 'utf8')) as { type?: unknown }).type };
      } catch {
        return { path, type: undefined };
      }
    }
    if (dirname(current) === current) return undefined;
  }
}

/** What Node throws when a route file (or what it imports) turns out to be CommonJS, as a `RouteFileError`. */
function notAnEsModule(error: unknown, file: string): RouteFileError | undefined {
  const code = typeof error === 'object' && error !== null && 'code' in error ? error.code : undefined;
  const message = error instanceof Error ? error.message : '';
  const commonJs =
    code === 'ERR_REQUIRE_CYCLE_MODULE' ||
    code === 'ERR_REQUIRE_ESM' ||
    code === 'ERR_REQUIRE_ASYNC_MODULE' ||
    (error instanceof SyntaxError && /Cannot use import statement outside a module|Unexpected token 'export'/.test(message));
  if (!commonJs) return undefined;
  return new RouteFileError(`${file} was loaded as CommonJS (${code === undefined ? message : String(code)}): ${ES_MODULES}; give the project's package.json "type": "module", or name the file .mjs/.mts`, { cause: error });
}

/** Resolves once a `.ts`/`.mts` route file can be imported; `RouteFileError` if nothing here can run TypeScript. */
async function enableTypeScript(file: string, cwd: string): Promise<void> {
  // The CLI itself is TypeScript (the repository's sources, under tsx or vitest): its loader runs the route file too.
  if (import.meta.url.endsWith('.ts')) return;
  if (await registerTsx(cwd)) return;
  if (nodeStripsTypes()) return;
  throw new RouteFileError(`${file} is TypeScript: install tsx (npm i -D tsx) to run TypeScript route files, use a Node.js that strips types (22.18 or later), or compile it to .js first`);
}

let tsxRegistered: Promise<boolean> | undefined;

/** Registers tsx's ESM loader once: tsx beside Interchange (a peer), else the project's own. False if neither is installed. */
function registerTsx(cwd: string): Promise<boolean> {
  tsxRegistered ??= (async () => {
    const candidates = [() => 'tsx/esm/api', () => pathToFileURL(createRequire(join(cwd, 'package.json')).resolve('tsx/esm/api')).href];
    for (const candidate of candidates) {
      try {
        const api = (await import(candidate())) as { register(): unknown };
        api.register();
        return true;
      } catch (error) {
        const code = typeof error === 'object' && error !== null && 'code' in error ? error.code : undefined;
        if (code !== 'ERR_MODULE_NOT_FOUND' && code !== 'MODULE_NOT_FOUND') throw error;
      }
    }
    return false;
  })();
  return tsxRegistered;
}

/** Whether this Node runs `.ts` files itself (type stripping on by default from 22.18/23.6, or `--experimental-strip-types`). */
function nodeStripsTypes(): boolean {
  return Boolean((process.features as { readonly typescript?: unknown }).typescript);
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
