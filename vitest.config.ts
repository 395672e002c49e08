import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // The JSON report lets .ci/run print one plain "N passed, N failed" line at the end.
    reporters: ['default', ['json', { outputFile: 'test-results.json' }]],
    projects: [
      { test: { name: 'unit', include: ['test/unit/**/*.test.ts', 'test/patterns/**/*.test.ts'] } },
      { test: { name: 'types', include: ['test/types/**/*.test-d.ts'], typecheck: { enabled: true, only: true, include: ['test/types/**/*.test-d.ts'] } } },
      { test: { name: 'contract', include: ['test/contract/**/*.test.ts'] } },
    ],
  },
});
