import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

const example = 'examples/00-readme/readme.ts';

describe('README example', () => {
  it('is the file examples/00-readme/readme.ts, word for word', () => {
    const readme = readFileSync('README.md', 'utf8');
    const block = /## A route in 20 lines[\s\S]*?```ts\n([\s\S]*?)```/.exec(readme)?.[1];
    expect(block).toBe(readFileSync(example, 'utf8'));
    expect(block?.trimEnd().split('\n').length).toBeLessThanOrEqual(20);
  });

  it('runs as written and routes the hot reading to the alerts channel', () => {
    const output = execFileSync(process.execPath, ['--conditions=interchange-source', '--import', 'tsx', example], { encoding: 'utf8', timeout: 30_000 });
    expect(output).toContain("alert: { deviceId: 'd1', temperature: 71, fahrenheit: 159.8 }");
  }, 30_000); // a child process compiling TypeScript through tsx: seconds on a loaded machine
});
