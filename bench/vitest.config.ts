import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

// The harness's own tests (npx vitest run --config bench/vitest.config.ts): the references, the
// peers' graphs and the timing policy the benchmarks rely on.
export default defineConfig({
  test: {
    root: fileURLToPath(new URL('..', import.meta.url)),
    include: ['bench/tests/**/*.test.ts'],
    testTimeout: 60_000,
    pool: 'forks',
  },
});
