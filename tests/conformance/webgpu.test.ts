import { beforeAll, describe, it } from 'vitest';
import { attention, attentionVarlen, gpuContext, setGpuOutputPoisoning } from '../../src/index.js';
import { CASES, checkCase } from './cases.js';

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
      await checkCase(c, async (inp, o) => {
        if (inp.cuSeqlensQ) await attentionVarlen(inp.q, inp.k, inp.v, { cuSeqlensQ: inp.cuSeqlensQ, cuSeqlensK: inp.cuSeqlensK, scale: o.scale, softcap: o.softcap, mask: o.mask, out: o.out, lseOut: o.lseOut, backend: 'webgpu' });
        else await attention(inp.q, inp.k, inp.v, { scale: o.scale, softcap: o.softcap, mask: o.mask, layout: o.layout, out: o.out, lseOut: o.lseOut, backend: 'webgpu' });
      });
    }, 300_000);
  }
});
