import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { defineConfig } from 'vitest/config';

// WebGPU tests run on whatever Vulkan driver the machine has; on a machine without a GPU (CI),
// Debian chromium's SwiftShader ICD gives a real (slow) adapter. A machine with its own driver
// selection (VK_ICD_FILENAMES / VK_DRIVER_FILES) keeps it.
const swiftshader = '/usr/lib/chromium/vk_swiftshader_icd.json';
const env: Record<string, string> = {};
if (!process.env.VK_ICD_FILENAMES && !process.env.VK_DRIVER_FILES && existsSync(swiftshader)) env.VK_ICD_FILENAMES = swiftshader;
if (!process.env.XDG_RUNTIME_DIR) env.XDG_RUNTIME_DIR = '/tmp';

export default defineConfig({
  test: {
    include: ['tests/**/*.test.ts', 'bench/tests/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
    // Two test files at a time even on two cores (vitest's default is cores − 1): the WebGPU files spend most
    // of their time in SwiftShader's one-threaded shader compiles, so the CPU files overlap with them.
    maxWorkers: Math.max(2, availableParallelism() - 1),
    reporters: ['default'],
    env,
  },
});
