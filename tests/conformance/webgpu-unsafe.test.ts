import { beforeAll, describe, expect, it } from 'vitest';
import { UnsupportedError, gpuContext, lastGpuStats, setGpuKernelPreference, setGpuOutputPoisoning } from '../../src/index.js';
import { configureWebGpu, dawnFlagsFor, robustnessDisabled } from '../../src/kernels/webgpu/device.js';
import { CASES, checkCase, runOn } from './cases.js';

// gpuContext({ robustness: false }): Dawn's disable_robustness toggle, so shaders run without WebGPU's
// bounds clamps. This file owns its GPU context (vitest runs each file in its own process).
describe('webgpu robustness option: Dawn flags', () => {
  const DEF = 'enable-dawn-features=allow_unsafe_apis,vulkan_enable_f16_on_nvidia';
  it('adds disable_robustness to the enabled Dawn features, once', () => {
    expect(dawnFlagsFor({}, undefined)).toEqual([DEF]);
    expect(dawnFlagsFor({ robustness: true }, undefined)).toEqual([DEF]);
    expect(dawnFlagsFor({ robustness: false }, undefined)).toEqual([`${DEF},disable_robustness`]);
    expect(dawnFlagsFor({ robustness: false }, 'enable-dawn-features=allow_unsafe_apis')).toEqual(['enable-dawn-features=allow_unsafe_apis,disable_robustness']);
    expect(dawnFlagsFor({ robustness: false, dawnFlags: ['backend=vulkan'] }, undefined)).toEqual(['backend=vulkan', 'enable-dawn-features=disable_robustness']);
    expect(dawnFlagsFor({ robustness: false, dawnFlags: [`${DEF},disable_robustness`] }, undefined)).toEqual([`${DEF},disable_robustness`]);
  });
  it('reads the toggle from flags given directly', () => {
    expect(robustnessDisabled([DEF])).toBe(false);
    expect(robustnessDisabled(['enable-dawn-features=disable_robustness'])).toBe(true);
    expect(robustnessDisabled(['disable-dawn-features=disable_robustness'])).toBe(false);
    expect(robustnessDisabled(['enable-dawn-features=disable_robustness_x'])).toBe(false);
  });
  it('refuses robustness: false with a GPU object it did not create (UnsupportedError naming robustness: true)', async () => {
    const err = await gpuContext({ gpu: { requestAdapter: async () => null } as unknown as GPU, robustness: false }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnsupportedError);
    expect(String((err as Error).message)).toMatch(/robustness: true/);
    configureWebGpu({});
  });
});

describe('conformance: webgpu without bounds clamps (robustness: false)', () => {
  const NAMES = ['self N129 d64', 'causal 129x97', 'varlen window GQA8', 'f16 causal GQA', 'NaN in v propagates', 'headDim 59', 'bf16 cross'];
  beforeAll(async () => {
    setGpuOutputPoisoning(true);
    const ctx = await gpuContext({ robustness: false });
    expect(ctx.caps.robust).toBe(false);
    setGpuKernelPreference('auto');
  });
  for (const name of NAMES) {
    const c = CASES.find((x) => x.name === name)!;
    it(name, async () => {
      await checkCase(c, runOn('webgpu'));
      // Four rows a thread wherever the clamps are off (two only pay off with them on).
      if (lastGpuStats?.key.includes('flash_portable')) expect(lastGpuStats.key.includes('"r2":true')).toBe(false);
    }, 300_000);
  }
});

describe('configureWebGpu releases the device it replaces', () => {
  it('the old device is destroyed (reported lost); the next call acquires a fresh one', async () => {
    const first = await gpuContext();
    configureWebGpu({});
    for (let i = 0; i < 200 && !first.lost; i++) await new Promise((r) => setTimeout(r, 10));
    expect(first.lost).toBe(true);
    const second = await gpuContext();
    expect(second).not.toBe(first);
    expect(second.lost).toBe(false);
  }, 60_000);
});
