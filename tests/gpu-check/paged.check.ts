/**
 * `npm run check:gpu`, paged part: attention through block tables on the real GPU's kernels (CI runs the
 * same paths on SwiftShader with emulated subgroup matrices, tests/property/paged.test.ts) — f16 blocks and
 * int8 blocks on each grid (uniform, gaussian, 'auto': the grid in the scale's sign), rotated, shuffled
 * physical blocks, varlen prefill chunks on the tensor-core kernel (f16 queries) and decode (f32 queries),
 * against the float64 paged reference over the same stored values.
 */
import { describe, expect, it } from 'vitest';
import {
  type Int8GridMode, type KvBlockStorage, type KvDType, type Mask, type Tensor, attentionPaged, causal, gpuContext, lastGpuStats,
  pagedAttentionReference, randn, setGpuOutputPoisoning, slidingWindow,
} from '../../src/index.js';
import { setSgmatAblation } from '../../src/kernels/webgpu/sgmat.js';
import { errorStats } from '../helpers/close.js';
import { shuffledPagedStorage } from '../helpers/paged.js';

async function check(q: Tensor, st: KvBlockStorage, tables: number[][], lens: number[], mask: Mask | null, cuSeqlensQ: number[] | undefined, tol: number): Promise<string> {
  const ref = pagedAttentionReference(q, st, 0, tables, lens, { mask, cuSeqlensQ });
  const got = await attentionPaged(q, st, 0, tables, lens, { mask, cuSeqlensQ, backend: 'webgpu', returnLse: true });
  const e = errorStats(got.out.toFloat64(), ref.out);
  expect(e.nonFiniteMismatch).toBe(0);
  expect(e.maxAbs).toBeLessThan(tol);
  const le = errorStats(got.lse!.toFloat64(), ref.lse);
  expect(le.maxAbs).toBeLessThan(tol);
  return `${lastGpuStats?.key.match(/flash_sgmat|decode_warp|decode_split|flash_portable|decode/)?.[0] ?? lastGpuStats?.kernel} err ${e.maxAbs.toExponential(2)} ≤ ${tol}`;
}

describe('check:gpu — paged K/V', () => {
  // SGMAT_ABLATE=<form>: the tensor-core kernel's trial form (setSgmatAblation), as in variants.check.ts.
  const experiment = process.env.SGMAT_ABLATE ?? '';
  const blocks: [KvDType, Int8GridMode, number][] = [['f16', 'auto', 64], ['f16', 'auto', 80], ['f16', 'auto', 128], ['int8', 'uniform', 64], ['int8', 'gaussian', 64], ['int8', 'auto', 64], ['int8', 'auto', 128]];
  for (const [dtype, grid, D] of blocks) {
    const name = `${dtype === 'int8' ? `int8 rotated, ${grid} grid` : dtype} d${D}${experiment ? ` [${experiment}]` : ''}`;
    it(`paged ${name}: varlen prefill chunks (f16 queries), GQA 4, causal and window; decode (f32), 16-token blocks`, async () => {
      setGpuOutputPoisoning(true);
      setSgmatAblation(experiment);
      const ctx = await gpuContext();
      const lens = [300, 1, 129, 257], Hk = 2;
      const { st, tables } = shuffledPagedStorage(dtype, lens, 16, Hk, D, 41, { rotate: dtype === 'int8', grid });
      const lines: string[] = [];
      if (ctx.caps.f16) {
        const cu = [0, 40, 41, 100, 160];
        // K, V and P pass through f16 on the tensor-core path: f16-level agreement.
        for (const mask of [causal(), slidingWindow(48, 0)]) lines.push(await check(randn([160, Hk * 4, D], 42).to('f16'), st, tables, lens, mask, cu, 1e-2));
      }
      lines.push(await check(randn([lens.length, 1, Hk * 4, D], 43), st, tables, lens, null, undefined, 2e-5));
      setSgmatAblation('');
      console.log(`paged ${name}: ${lines.join('; ')}`);
    }, 300_000);
  }
});
