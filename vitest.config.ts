import { defineConfig } from 'vitest/config';

export default defineConfig({
  // `source`: the package's own name ('interchange-eip', in examples) resolves to the TypeScript sources, not dist/
  resolve: { conditions: ['interchange-source'] },
  ssr: { resolve: { conditions: ['interchange-source'], externalConditions: ['interchange-source'] } },
  test: {
    // The JSON report lets .ci/run print one plain "N passed, N failed" line at the end.
    reporters: ['default', ['json', { outputFile: 'test-results.json' }]],
    projects: [
      // unit: some tests run the real CLI or tsc in a child process — seconds each on a loaded 2-core machine
      { extends: true, test: { name: 'unit', include: ['test/unit/**/*.test.ts', 'test/patterns/**/*.test.ts'], testTimeout: 30_000 } },
      { extends: true, test: { name: 'types', include: ['test/types/**/*.test-d.ts'], typecheck: { enabled: true, only: true, include: ['test/types/**/*.test-d.ts'] } } },
      { extends: true, test: { name: 'contract', include: ['test/contract/**/*.test.ts'] } },
      // Against the real brokers on 127.0.0.1; a broker that is down fails these tests, never skips them.
      { extends: true, test: { name: 'integration', include: ['test/integration/**/*.test.ts'], testTimeout: 60_000, hookTimeout: 60_000 } },
      // Tests that restart or cut a broker: one file at a time, after every other project has finished.
      {
        extends: true,
        test: {
          name: 'fault',
          include: ['test/fault/**/*.test.ts'],
          pool: 'forks',
          poolOptions: { forks: { singleFork: true } },
          testTimeout: 300_000,
          hookTimeout: 120_000,
          sequence: { groupOrder: 1 },
        },
      },
      // npm pack, then install the tarball into a fresh project outside the repository (typescript, tsx and
      // @types/node from the npm registry) and compile and run it there: alone, after everything else.
      {
        extends: true,
        test: {
          name: 'package',
          include: ['test/package/**/*.test.ts'],
          pool: 'forks',
          poolOptions: { forks: { singleFork: true } },
          testTimeout: 120_000,
          hookTimeout: 420_000,
          sequence: { groupOrder: 2 },
        },
      },
    ],
  },
});
