import { beforeAll, describe, it } from 'vitest';
import { gpuContext, setGpuOutputPoisoning } from '../../src/index.js';
import { CASES, checkCase, runOn } from './cases.js';

// WebGPU conformance: the same case list as the CPU backends. In CI the adapter is SwiftShader
// (Vulkan on the CPU); under CI=true a missing adapter fails the suite instead of skipping it.
describe('conformance: webgpu backend', () => {
  beforeAll(async () => {
    setGpuOutputPoisoning(true);
    const ctx = await gpuContext();
    console.log(`WebGPU adapter: ${ctx.caps.vendor} ${ctx.caps.architecture} ${ctx.caps.description}; f16=${ctx.caps.f16} subgroups=${ctx.caps.subgroups} (${ctx.caps.subgroupMinSize}-${ctx.caps.subgroupMaxSize})`);
  });
  for (const c of CASES) {
    it(c.name, async () => {
      await checkCase(c, runOn('webgpu'));
    }, 300_000);
  }
});
