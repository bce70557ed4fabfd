import { defineConfig } from 'vitest/config';

// `npm run check:gpu`: the WebGPU conformance suite plus every kernel variant, on a real GPU.
export default defineConfig({
  test: {
    include: ['tests/conformance/webgpu.test.ts', 'tests/gpu-check/**/*.check.ts'],
    testTimeout: 300_000,
    hookTimeout: 300_000,
    pool: 'forks',
    fileParallelism: false,
  },
});
