#!/usr/bin/env node
// The `interchange` command. Installed, it runs the compiled CLI (dist/); TypeScript route files are
// the CLI's business (tsx when installed, else Node's type stripping). In the repository, under the
// `interchange-source` export condition (the npm scripts pass --conditions=interchange-source) or before a build, it runs the
// CLI from its TypeScript sources through tsx, a dev dependency there.
import { existsSync } from 'node:fs';
import { URL } from 'node:url';

const sources = new URL('../facade/cli/main.ts', import.meta.url);
const compiled = new URL('../dist/facade/cli/main.js', import.meta.url);

/** Whether `interchange-eip` resolves to its TypeScript sources here (node --conditions=interchange-source). */
function sourceCondition() {
  try {
    return import.meta.resolve('interchange-eip').endsWith('.ts');
  } catch {
    return false;
  }
}

let entry = compiled;
if (existsSync(sources) && (sourceCondition() || !existsSync(compiled))) {
  const { register } = await import('tsx/esm/api');
  register();
  entry = sources;
} else if (!existsSync(compiled)) {
  process.stderr.write('interchange: dist/ is missing: run `npm run build` (or `npm pack`, which builds)\n');
  process.exit(1);
}
const { main } = await import(entry.href);
process.exit(await main(process.argv.slice(2)));
