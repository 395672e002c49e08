import { execFile, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join, relative } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { until } from '../support/wait.ts';

/**
 * The package as a user gets it: `npm pack` (which builds dist/), installed from the tarball into a
 * fresh project in the system's temporary folder, outside the repository, with typescript, tsx and
 * @types/node from the npm registry. The project's files are the code blocks of
 * docs/first-project.md, so the page stays true. Nothing here runs with `--conditions=interchange-source`.
 */

const root = fileURLToPath(new URL('../..', import.meta.url));
const guide = readFileSync(join(root, 'docs/first-project.md'), 'utf8');
const ours = (name: string): string => (JSON.parse(readFileSync(join(root, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version;

/** The code block of docs/first-project.md headed with this file name (```ts route.ts). */
function guideFile(file: string): string {
  const match = new RegExp('^```\\w+ ' + file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&') + '\\n([\\s\\S]*?)^```', 'm').exec(guide);
  if (match?.[1] === undefined) throw new Error(`docs/first-project.md has no code block for ${file}`);
  return match[1];
}

/** The environment without the repository's: no source condition, no npm run variables, no repo bins on PATH. */
const env: NodeJS.ProcessEnv = Object.fromEntries(
  Object.entries(process.env)
    .filter(([name]) => !/^(NODE_OPTIONS|INIT_CWD|VITEST.*|npm_(package|lifecycle)_.*|npm_config_(local_)?prefix|npm_command)$/i.test(name))
    .map(([name, value]) => [name, name === 'PATH' ? value?.split(delimiter).filter((entry) => !entry.startsWith(root)).join(delimiter) : value]),
);

interface Result {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs a command to its end (no shell), whatever its exit code. */
function run(command: string, args: readonly string[], cwd: string, timeoutMs = 120_000): Promise<Result> {
  return new Promise((resolve, reject) => {
    execFile(command, args, { cwd, env, timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
      if (error !== null && typeof error.code !== 'number') reject(new Error(`${command} ${args.join(' ')}: ${error.message}\n${stderr}`));
      else resolve({ code: error === null ? 0 : (error.code as number), stdout, stderr });
    });
  });
}

/** Like `run`, but an exit code other than 0 fails with the output. */
async function ok(command: string, args: readonly string[], cwd: string, timeoutMs?: number): Promise<Result> {
  const result = await run(command, args, cwd, timeoutMs);
  if (result.code !== 0) throw new Error(`${command} ${args.join(' ')} exited ${result.code}\n${result.stdout}\n${result.stderr}`);
  return result;
}

/**
 * `npx interchange run <file> --quiet` in the project until the sample order is shipped, then Ctrl-C.
 * Detached: a process group of its own, which is what a terminal's Ctrl-C signals. npm exec dies of the
 * signal at once; the CLI drains, prints the final counts and closes its output (hence 'close', not 'exit').
 */
async function runUntilShipped(file: string): Promise<{ readonly stdout: string; readonly stderr: string }> {
  const child = spawn('npx', ['--no', '--', 'interchange', 'run', file, '--quiet'], { cwd: project, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const closed = new Promise<void>((resolve) => child.on('close', () => resolve()));
  const group = -(child.pid as number);
  try {
    await until(() => stdout.includes('shipping o-1: 3 piece(s), 7.5 EUR') || child.exitCode !== null, () => `${file}: no order shipped\n${stdout}\n${stderr}`, 60_000);
    expect(stdout, stderr).toContain(`interchange: 2 routes running from ${file} (place-orders, ship-orders)`);
    process.kill(group, 'SIGINT');
    await closed;
    return { stdout, stderr };
  } finally {
    try {
      process.kill(group, 'SIGKILL');
    } catch {
      // the group has ended
    }
  }
}

let work: string;
let project: string;
let packed: { readonly filename: string; readonly files: readonly { readonly path: string }[] };

describe('the package installed into a fresh project outside the repository', () => {
  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'interchange-package-'));
    expect(relative(root, work).startsWith('..')).toBe(true);
    const pack = await ok('npm', ['pack', '--json', '--pack-destination', work], root, 180_000);
    [packed] = JSON.parse(pack.stdout.slice(pack.stdout.indexOf('['))) as [typeof packed];

    project = join(work, 'my-integration');
    mkdirSync(join(project, 'schemas', 'order.placed'), { recursive: true });
    writeFileSync(join(project, 'package.json'), guideFile('package.json'));
    const installs = [join(work, packed.filename), `typescript@${ours('typescript')}`, `tsx@${ours('tsx')}`, `@types/node@${ours('@types/node')}`];
    await ok('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', ...installs], project, 180_000);

    await ok('npx', ['--no', '--', 'tsc', '--init'], project);
    const tsconfig = readFileSync(join(project, 'tsconfig.json'), 'utf8');
    expect(tsconfig).toMatch(/^\s*"strict": true,/m);
    // What its own comment says to do for Node.js (docs/first-project.md says it too).
    writeFileSync(join(project, 'tsconfig.json'), tsconfig.replace(/^(\s*)"types": \[\],/m, '$1"types": ["node"],'));
    expect(readFileSync(join(project, 'tsconfig.json'), 'utf8')).toMatch(/^\s*"types": \["node"\],/m);

    writeFileSync(join(project, 'schemas', 'order.placed', '1.json'), guideFile('schemas/order.placed/1.json'));
    for (const file of ['route.ts', 'main.ts', 'route.test.ts']) writeFileSync(join(project, file), guideFile(file));
  }, 420_000);

  afterAll(() => {
    if (work !== undefined) rmSync(work, { recursive: true, force: true });
  });

  it('ships dist/, bin/, README, LICENSE and CHANGELOG: no sources, tests, examples or demo contracts', () => {
    const paths = packed.files.map((file) => file.path);
    expect(paths).toEqual(expect.arrayContaining(['package.json', 'README.md', 'LICENSE', 'CHANGELOG.md', 'bin/interchange.js', 'dist/facade/index.js', 'dist/facade/index.d.ts', 'dist/facade/cli/main.js']));
    const tops = new Set(paths.map((path) => (path.includes('/') ? path.slice(0, path.indexOf('/')) : path)));
    expect([...tops].sort()).toEqual(['CHANGELOG.md', 'LICENSE', 'README.md', 'bin', 'dist', 'package.json']);
    expect(paths.filter((path) => !/^dist\/(facade|src|patterns|adapters)\//.test(path) && path.startsWith('dist/'))).toEqual([]);
    expect(paths.filter((path) => path.endsWith('.ts') && !path.endsWith('.d.ts'))).toEqual([]);
    expect(paths.filter((path) => /\.test\.|\/test\/|\/examples\/|types\.generated/.test(path))).toEqual([]);
  });

  it('every export of package.json resolves to dist/ in the installed package', async () => {
    const manifest = JSON.parse(readFileSync(join(project, 'node_modules', 'interchange-eip', 'package.json'), 'utf8')) as { exports: Record<string, unknown> };
    const entries = Object.keys(manifest.exports).filter((entry) => entry !== './package.json').map((entry) => `interchange-eip${entry.slice(1)}`);
    const script = `for (const entry of ${JSON.stringify(entries)}) { const url = import.meta.resolve(entry); await import(url); console.log(url); }`;
    const { stdout } = await ok(process.execPath, ['--input-type=module', '-e', script], project);
    const urls = stdout.trim().split('\n');
    expect(urls).toHaveLength(entries.length);
    for (const url of urls) expect(url).toMatch(new RegExp(`/node_modules/interchange-eip/dist/.*\\.js$`));
  });

  it('the installed package serves the console: its page, script and graph layout library ship in dist/', async () => {
    const script = [
      "import { createIntegration, from } from 'interchange-eip';",
      "import { startConsole, createPrometheusMetrics } from 'interchange-eip/observability';",
      "const app = createIntegration({ routes: [from('memory:a', { id: 'a' }).to('memory:b')] });",
      'const server = await startConsole(app, { port: 0, metrics: createPrometheusMetrics(app, { defaultMetrics: false }) });',
      'await app.start();',
      "const answers = await Promise.all(['', 'static/app.js', 'static/app.css', 'static/dagre.min.js', 'graph', 'metrics'].map(async (path) => { const response = await fetch(server.url + path); return path + ' ' + response.status + ' ' + (response.headers.get('content-type') ?? ''); }));",
      'console.log(answers.join("\\n"));',
      'await app.stop(); await server.close();',
    ].join('\n');
    const { stdout } = await ok(process.execPath, ['--input-type=module', '-e', script], project, 30_000);
    const lines = stdout.trim().split('\n');
    expect(lines).toHaveLength(6);
    for (const line of lines) expect(line).toMatch(/^(\S+ )?200 /);
    expect(lines[0]).toContain('text/html');
    expect(lines[1]).toContain('javascript');
    expect(lines[3]).toContain('javascript');
  });

  it('interchange --version and --help answer from the installed CLI', async () => {
    const { version } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string };
    expect((await ok('npx', ['--no', '--', 'interchange', '--version'], project)).stdout.trim()).toBe(version);
    expect((await ok('npx', ['--no', '--', 'interchange', '--help'], project)).stdout).toContain('interchange run <routes.ts>');
  });

  it('interchange --help loads no adapter or client library (they load when a command needs them)', async () => {
    const cli = pathToFileURL(join(project, 'node_modules', 'interchange-eip', 'dist', 'facade', 'cli', 'main.js')).href;
    const script = [
      "import { createRequire } from 'node:module';",
      `const { main } = await import(${JSON.stringify(cli)});`,
      'const quiet = { write: () => true };',
      "await main(['--help'], { stdout: quiet, stderr: quiet, exit: (code) => process.exit(code) });",
      'console.log(JSON.stringify(Object.keys(createRequire(import.meta.url).cache)));',
    ].join('\n');
    const { stdout } = await ok(process.execPath, ['--input-type=module', '-e', script], project);
    expect((JSON.parse(stdout) as string[]).filter((file) => file.includes('node_modules'))).toEqual([]);
  });

  it('interchange schemas types writes the contract types with the augmentation of interchange-eip', async () => {
    await ok('npx', ['--no', '--', 'interchange', 'schemas', 'types'], project);
    const generated = readFileSync(join(project, 'schemas', 'types.generated.ts'), 'utf8');
    expect(generated).toContain('export interface OrderPlacedV1');
    expect(generated).toMatch(/declare module 'interchange-eip' \{\s*[\s\S]*interface ContractTypes \{\s*[\s\S]*'order\.placed@1': OrderPlacedV1;/);
  });

  it('tsc, with the strict options of tsc --init, passes on the route, a program and a test-kit test', async () => {
    const { code, stdout } = await run('npx', ['--no', '--', 'tsc'], project);
    expect(stdout).toBe('');
    expect(code).toBe(0);
  });

  it('plain node runs the compiled program (no tsx)', async () => {
    const { stdout } = await ok(process.execPath, ['main.js'], project, 30_000);
    expect(stdout.trim().split('\n')).toEqual(['shipping o-1: 3 piece(s), 7.5 EUR', 'place-orders: 2 received, 1 filtered, 1 placed']);
  });

  it("node --test runs the compiled test-kit test (vitest is not installed: it is an optional peer)", async () => {
    const { stdout } = await ok(process.execPath, ['--test', 'route.test.js'], project, 60_000);
    expect(stdout).toMatch(/^# pass 1$/m);
    expect(stdout).toMatch(/^# fail 0$/m);
    expect(() => readFileSync(join(project, 'node_modules', 'vitest', 'package.json'))).toThrow();
  });

  it('npx interchange run route.ts runs a TypeScript route file (tsx), and Ctrl-C drains and stops it', async () => {
    const { stdout, stderr } = await runUntilShipped('route.ts');
    expect(stdout, stderr).toContain('stopping: draining in-flight messages');
    expect(stdout).toMatch(/^place-orders +in 2 +out 1 +filtered 1 +failed 0 /m);
    expect(stdout).toMatch(/^ship-orders +in 1 +out 1 +filtered 0 +failed 0 /m);
    expect(stderr).not.toMatch(/interchange:|again|Error/);
  });

  it('runs the compiled route.js with nothing else; without tsx a .ts route file is refused saying what to install', async () => {
    const compiled = await runUntilShipped('route.js');
    expect(compiled.stdout).toMatch(/^place-orders +in 2 +out 1 +filtered 1 +failed 0 /m);

    const tsx = join(project, 'node_modules', 'tsx');
    renameSync(tsx, `${tsx}.away`);
    try {
      if ((process.features as { readonly typescript?: unknown }).typescript) {
        expect((await runUntilShipped('route.ts')).stdout).toMatch(/^place-orders +in 2 +out 1 +filtered 1 /m); // Node strips the types itself
      } else {
        const { code, stderr } = await run('npx', ['--no', '--', 'interchange', 'run', 'route.ts'], project, 30_000);
        expect(code).toBe(1);
        expect(stderr).toContain('route.ts is TypeScript: install tsx (npm i -D tsx) to run TypeScript route files');
      }
    } finally {
      renameSync(`${tsx}.away`, tsx);
    }
  });

  it('refuses a route file Node would load as CommonJS, saying route files must be ES modules', async () => {
    mkdirSync(join(project, 'legacy'));
    writeFileSync(join(project, 'legacy', 'package.json'), '{ "type": "commonjs" }\n');
    writeFileSync(join(project, 'legacy', 'route.js'), "const { from } = require('interchange-eip');\nmodule.exports = { routes: [from('memory:a').to('memory:b')] };\n");
    const { code, stderr } = await run('npx', ['--no', '--', 'interchange', 'run', 'legacy/route.js'], project, 30_000);
    expect(code).toBe(1);
    expect(stderr).toContain('legacy/route.js would load as CommonJS');
    expect(stderr).toContain('route files must be ES modules');
  });

  it('the contract types the DSL: a body that does not match order.placed@1 fails tsc, naming the field', async () => {
    const wrong = guideFile('route.ts').replace('total: m.body.quantity * m.body.unitPrice', 'total: String(m.body.quantity * m.body.unitPrice)');
    expect(wrong).not.toBe(guideFile('route.ts'));
    writeFileSync(join(project, 'route.ts'), wrong);
    const { code, stdout } = await run('npx', ['--no', '--', 'tsc', '--noEmit'], project);
    expect(code).not.toBe(0);
    expect(stdout).toContain('route.ts(');
    expect(stdout).toContain('`total` must be a number for order.placed@1');
    expect(stdout.split('\n').filter((line) => /^\S+\(\d+,\d+\): error/.test(line) && !line.startsWith('route.ts('))).toEqual([]);
  });
});
