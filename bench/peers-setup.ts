// Setup for bench/peers-bridge.ts: a private, writable copy of the shared bench-peers harness, a
// compiled snapshot of the project, the harness's Interchange route compiled to JavaScript, and the bridge commands
// as the harness's `perfbase/bridge-load.mjs` runs them (cwd perfbase/, split on spaces, no shell,
// `--topic=… --queue=…` appended).
import { execFileSync } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ts from 'typescript';

/** The bridges this benchmark compares, in the order each round runs them. */
export const PEER_VARIANTS = ['raw-early', 'interchange', 'interchange-ts'] as const;
export type PeerVariant = (typeof PEER_VARIANTS)[number];

/** The harness's copy, ready to run. */
export interface PeersCopy {
  /** The temporary directory holding the copy (remove it when done). */
  readonly dir: string;
  /** `<dir>/perfbase`, with `npm ci` done: bridge-load's working directory. */
  readonly perfbase: string;
  /** The compiled snapshot of the project (`<dir>/interchange`): what `interchange` resolves to, INTERCHANGE_DIR for the harness's script. */
  readonly interchange: string;
  /** bridge-load's `--bridge=` command for each variant. */
  readonly commands: Readonly<Record<PeerVariant, string>>;
}

/** Where a service is, for the bridges and the load. */
export interface PeerUrls {
  readonly mqtt: string;
  readonly amqp: string;
}

/**
 * Compiles the project at `root` as `npm run build` does (`tsc -p tsconfig.build.json`, the console's
 * static files copied) but into `pkg/dist`, beside copies of package.json and bin/ and a link to the
 * project's node_modules: a snapshot of the package as installed, taken now. Not the repository's own
 * dist/: that one is removed and rewritten by every `npm run build` in the shared checkout, which
 * broke a run here when it happened mid-run. A build with errors throws.
 */
function buildSnapshot(root: string, pkg: string): void {
  try {
    execFileSync(process.execPath, [createRequire(import.meta.url).resolve('typescript/bin/tsc'), '-p', join(root, 'tsconfig.build.json'), '--outDir', join(pkg, 'dist')], {
      cwd: root,
      stdio: ['ignore', 'pipe', 'pipe'],
      encoding: 'utf8',
    });
  } catch (error) {
    const { stdout = '', stderr = '' } = error as { stdout?: string; stderr?: string };
    throw new Error(`peers bench: compiling the project (tsc -p tsconfig.build.json) failed; the compiled bridge cannot run:\n${`${stdout}${stderr}`.slice(-3000)}`);
  }
  cpSync(join(root, 'facade', 'console', 'static'), join(pkg, 'dist', 'facade', 'console', 'static'), { recursive: true });
  cpSync(join(root, 'bin'), join(pkg, 'bin'), { recursive: true });
  cpSync(join(root, 'package.json'), join(pkg, 'package.json'));
  symlinkSync(join(root, 'node_modules'), join(pkg, 'node_modules'));
}

/** `value` as one single-quoted sh word. */
const shQuote = (value: string): string => `'${value.replaceAll("'", `'\\''`)}'`;

/**
 * Copies the harness at `source` to a fresh temporary directory, runs `npm ci` in its perfbase/, builds
 * the project at `root` into a compiled snapshot there (`buildSnapshot`), links that as `interchange` in
 * peers/node_modules (as peers/interchange-bridge.sh does with INTERCHANGE_DIR), compiles
 * peers/interchange/bridge.route.ts to bridge.route.mjs beside it (TypeScript's `transpileModule`: types
 * erased, nothing else changed) and writes the compiled bridge's sh wrapper. Throws, naming the step,
 * when one fails.
 */
export function preparePeers(source: string, root: string, urls: PeerUrls): PeersCopy {
  if (!existsSync(join(source, 'perfbase', 'bridge-load.mjs'))) throw new Error(`peers bench: no bench-peers harness at ${source} (set BENCH_PEERS_DIR)`);
  const dir = mkdtempSync(join(tmpdir(), 'bench-peers-'));
  try {
    return fillCopy(dir, source, root, urls);
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
}

/** `preparePeers` in the fresh directory `dir`. */
function fillCopy(dir: string, source: string, root: string, urls: PeerUrls): PeersCopy {
  if (/\s/.test(dir)) throw new Error(`peers bench: bridge-load splits commands on spaces; ${dir} has one`);
  cpSync(source, dir, { recursive: true, filter: (path) => !path.split('/').includes('node_modules') });
  const perfbase = join(dir, 'perfbase');
  const peers = join(dir, 'peers');
  try {
    execFileSync('npm', ['ci', '--no-audit', '--no-fund', '--prefer-offline'], { cwd: perfbase, stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' });
  } catch (error) {
    throw new Error(`peers bench: \`npm ci\` in ${perfbase} failed:\n${String((error as { stderr?: string }).stderr ?? error).slice(-2000)}`);
  }
  const interchange = join(dir, 'interchange');
  buildSnapshot(root, interchange);
  mkdirSync(join(peers, 'node_modules'), { recursive: true });
  symlinkSync(interchange, join(peers, 'node_modules', 'interchange'));

  const routeTs = join(peers, 'interchange', 'bridge.route.ts');
  const routeJs = join(peers, 'interchange', 'bridge.route.mjs');
  const compiled = ts.transpileModule(readFileSync(routeTs, 'utf8'), {
    fileName: routeTs,
    compilerOptions: { target: ts.ScriptTarget.ES2023, module: ts.ModuleKind.ESNext, verbatimModuleSyntax: true },
  });
  writeFileSync(routeJs, compiled.outputText);

  // bridge-load splits the command on spaces and appends --topic/--queue, which the CLI would refuse:
  // the wrapper drops them (the route reads BRIDGE_TOPIC / BRIDGE_QUEUE) and execs node, so the bridge's
  // pid is the wrapper's and its /proc CPU counts the bridge alone.
  const wrapper = join(dir, 'interchange-js-bridge.sh');
  writeFileSync(
    wrapper,
    [
      '#!/bin/sh',
      '# Written by bench/peers-bridge.ts: the harness\'s Interchange route compiled to JavaScript, run by the',
      '# compiled CLI (dist/), no TypeScript loader in the process. bridge-load\'s --topic/--queue are ignored.',
      `export MQTT_URL=\${MQTT_URL:-${shQuote(urls.mqtt)}} AMQP_URL=\${AMQP_URL:-${shQuote(urls.amqp)}}`,
      `exec node ${shQuote(join(interchange, 'bin', 'interchange.js'))} run ${shQuote(routeJs)} --quiet`,
      '',
    ].join('\n'),
  );
  chmodSync(wrapper, 0o755);
  return {
    dir,
    perfbase,
    interchange,
    commands: {
      'raw-early': `node bridge.mjs --ack=early --mqtt=${urls.mqtt} --amqp=${urls.amqp}`,
      interchange: `sh ${wrapper}`,
      'interchange-ts': `sh ${join(peers, 'interchange-bridge.sh')}`,
    },
  };
}
