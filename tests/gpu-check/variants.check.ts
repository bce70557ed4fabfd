/**
 * `npm run check:gpu`: the conformance case list on every WebGPU kernel variant the adapter offers,
 * for a real GPU (CI's SwiftShader has no shader-f16 and no subgroup matrices; CI runs the f32 suite in
 * tests/conformance/webgpu.test.ts). Each case runs in f16 on the tensor-core kernel (when the adapter
 * exposes subgroup matrices; once more with two query blocks a subgroup forced, SgmatVariant.MB) and on the
 * portable kernel, and in f32 on the tensor-core kernel's split form
 * (SgmatVariant.split) and on the decode kernel where it applies (the portable kernel where it does not).
 * Prints one line per (variant, case) and a summary. SGMAT_ABLATE=<experiment> (see setSgmatAblation) runs the
 * tensor-core cases with a profiling experiment of src/kernels/webgpu/sgmat.ts switched on.
 */
import { afterAll, beforeAll, describe, it } from 'vitest';
import { gpuContext, lastGpuStats, setGpuKernelPreference, setGpuOutputPoisoning, type GpuKernelPreference } from '../../src/index.js';
import { CASES, CASES_DECODE, type ConformanceCase, checkCase, runOn } from '../conformance/cases.js';
import { setSgmatAblation } from '../../src/kernels/webgpu/sgmat.js';
import { DECODE_TUNING_DEFAULTS, setDecodeTuning, setPortableTuning } from '../../src/kernels/webgpu/attention-gpu.js';

const summary: string[] = [];

async function runCase(c: ConformanceCase, kernel: GpuKernelPreference): Promise<string> {
  setGpuKernelPreference(kernel);
  try {
    const r = await checkCase(c, runOn('webgpu'));
    const name = /decode_(warp|split)/.exec(lastGpuStats?.key ?? '')?.[0] ?? lastGpuStats?.kernel ?? '?';
    return `${name} err ${r.outErr.toExponential(2)} ≤ tol ${r.tol.toExponential(2)}`;
  } finally {
    setGpuKernelPreference('auto');
  }
}

describe('check:gpu — every kernel variant', () => {
  let hasSgmat = false, hasF16 = false, linear = false;
  beforeAll(async () => {
    setGpuOutputPoisoning(true);
    // PORTABLE_ROWS=2 or 4: the portable kernel's rows a thread forced (setPortableTuning; default auto).
    if (['2', '4'].includes(process.env.PORTABLE_ROWS ?? '')) setPortableTuning({ rows: Number(process.env.PORTABLE_ROWS) as 2 | 4 });
    // PORTABLE_VNEXT=0 or 1: further V chunks of a tile loaded in place, or prefetched during the previous
    // chunk's FMAs (setPortableTuning's vnext; default auto: prefetched where a tile has two or more chunks).
    if (['0', '1'].includes(process.env.PORTABLE_VNEXT ?? '')) setPortableTuning({ vnext: process.env.PORTABLE_VNEXT === '1' });
    // PORTABLE_VFULL=0: V in chunks even where the whole tile fits (setPortableTuning's vfull off).
    if (process.env.PORTABLE_VFULL === '0') setPortableTuning({ vfull: false });
    // PORTABLE_VLOAD=0: the portable kernel's scalar storage loads (setPortableTuning's vecLoads off).
    if (process.env.PORTABLE_VLOAD === '0') setPortableTuning({ vecLoads: false });
    const ctx = await gpuContext();
    hasF16 = ctx.caps.f16;
    hasSgmat = ctx.caps.subgroupMatrix.length > 0 && ctx.caps.subgroupMinSize === 32;
    linear = ctx.caps.subgroupLinear;
    console.log(`adapter: ${ctx.caps.vendor} ${ctx.caps.architecture} ${ctx.caps.description}; f16=${hasF16}; subgroup-matrix=${JSON.stringify(ctx.caps.subgroupMatrix)}; subgroups laid out as lid / 32: ${linear}`);
  });
  afterAll(() => { console.log(`\ncheck:gpu summary\n${summary.join('\n')}`); });

  for (const c of CASES) {
    const f16: ConformanceCase = { ...c, dtype: 'f16', name: `${c.name} [f16]` };
    it(`f16 tensor-core: ${c.name}`, async () => {
      if (!hasSgmat) throw new Error('this adapter has no subgroup matrices: check:gpu must run on a GPU that has them');
      const experiment = process.env.SGMAT_ABLATE ?? '';
      setSgmatAblation(experiment);
      try {
        const line = await runCase(f16, 'sgmat');
        // Where the probe found subgroups laid out as lid / 32, the kernel takes its offsets from the invocation index.
        if (lastGpuStats?.kernel === 'flash_sgmat' && lastGpuStats.key.includes('"lidsg":true') !== linear) throw new Error(`${c.name}: lidsg in the variant key does not follow GpuCaps.subgroupLinear (${linear})`);
        summary.push(`sgmat${experiment ? ` [${experiment}]` : ''}    ${c.name}: ${line}`);
      } finally {
        setSgmatAblation('');
      }
    }, 300_000);
    // Two query blocks a subgroup (SgmatVariant.MB = 2) on every case, not only from SGMAT_MB2_KEYS keys.
    it(`f16 tensor-core two blocks: ${c.name}`, async () => {
      if (!hasSgmat) throw new Error('this adapter has no subgroup matrices: check:gpu must run on a GPU that has them');
      setSgmatAblation('mb2');
      try {
        const line = await runCase(f16, 'sgmat');
        if (lastGpuStats?.kernel === 'flash_sgmat' && !lastGpuStats.key.includes('"MB":2')) throw new Error(`${c.name}: the tensor-core kernel ran with one query block`);
        summary.push(`sgmat2   ${c.name}: ${line}`);
      } finally {
        setSgmatAblation('');
      }
    }, 300_000);
    it(`f32 tensor-core split: ${c.name}`, async () => {
      if (!hasSgmat) throw new Error('this adapter has no subgroup matrices: check:gpu must run on a GPU that has them');
      const line = await runCase(c, 'sgmat');
      summary.push(`split    ${c.name}: ${line}`);
    }, 300_000);
    it(`f16 portable: ${c.name}`, async () => {
      const line = await runCase(f16, 'portable');
      summary.push(`portable ${c.name}: ${line}`);
    }, 300_000);
    it(`f32 decode-preferred: ${c.name}`, async () => {
      const line = await runCase(c, 'decode');
      summary.push(`decode?  ${c.name}: ${line}`);
    }, 300_000);
  }
  // The decode kernels' own cases (tests/conformance/webgpu-decode.test.ts), with real subgroup
  // shuffles in decode_warp: as given, and in f16 where given as f32.
  for (const c of CASES_DECODE) {
    for (const cc of c.dtype ? [c] : [c, { ...c, dtype: 'f16' as const, name: `${c.name} [f16]` }]) {
      it(`decode-preferred: ${cc.name}`, async () => {
        const line = await runCase(cc, 'decode');
        summary.push(`decode   ${cc.name}: ${line}`);
      }, 300_000);
    }
  }
  // Fused decode (decode_warp's SS and fin: one workgroup of 4·SS subgroups per sequence and KV head writes
  // the output, no merge pass), SS forced through the split target, with real shuffles.
  for (const c of CASES_DECODE.filter((x) => !x.varlen)) {
    for (const SS of [1, 2, 3, 4]) {
      for (const cc of c.dtype ? [c] : [c, { ...c, dtype: 'f16' as const, name: `${c.name} [f16]` }]) {
        it(`decode fused SS ${SS}: ${cc.name}`, async () => {
          setDecodeTuning({ target: SS * cc.batch * cc.numKvHeads });
          try {
            const line = await runCase(cc, 'decode');
            const key = lastGpuStats?.key ?? '';
            summary.push(`decode SS${SS} ${cc.name}: ${line}${key.includes('"fin"') ? `, fused${/"SS":(\d)/.exec(key)?.[0] ? ` ${/"SS":(\d)/.exec(key)![0]}` : ''}` : ', split + merge'}`);
          } finally {
            setDecodeTuning({ target: DECODE_TUNING_DEFAULTS.target });
          }
        }, 300_000);
      }
    }
  }
});
