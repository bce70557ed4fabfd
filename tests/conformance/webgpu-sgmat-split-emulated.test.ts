import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gpuContext, lastGpuStats, setGpuF32Policy, setGpuKernelPreference, setGpuOutputPoisoning } from '../../src/index.js';
import { CASES, type ConformanceCase, checkCase, runOn } from './cases.js';

// f32 on the tensor-core kernel's split form (SgmatVariant.split: each value as an f16 high half and a scaled
// low half, three products, Q/K/V scaled into f16's range by the range pass), with the subgroup-matrix builtins
// emulated so that CI's SwiftShader runs the same logic, held to the f32 tolerance. The real builtins are
// checked on a GPU by `npm run check:gpu` ('f32 tensor-core split'). A subset, as in the f16 emulated file:
// scalar loads (head dims 59, 111 → no 16-byte loads), 16-byte loads, masks, GQA, varlen, softcap, NaN, ±1000,
// and magnitudes past f16's range.
const PICK = [
  'self N129 d64', 'causal 129x97', 'cross 97x1025', 'headDim 59', 'headDimV 111 ≠ headDim 40', 'GQA ratio 4', 'window(8,8)',
  'softcap 30', 'inputs near ±1000', 'magnitudes past f16 (q ×2e5, k ×1e-4, v ×1e5)', 'NaN in k: rows that see it are NaN, others not', '+Inf in k: +∞ scores make NaN rows, −∞ scores drop the key', '+Inf in v: that column +∞ where the key has weight',
  'causal Sq>Sk: fully masked rows', 'varlen window GQA8',
];

describe('conformance: webgpu tensor-core kernel, f32 split form, emulated matrices', () => {
  beforeAll(async () => {
    setGpuOutputPoisoning(true);
    await gpuContext();
    setGpuKernelPreference('sgmat-emulated');
  });
  afterAll(() => { setGpuKernelPreference('auto'); setGpuF32Policy('split'); });
  it('covers the picked cases', () => { expect(PICK.filter((p) => !CASES.some((c) => c.name === p))).toEqual([]); });
  for (const name of PICK) {
    const c: ConformanceCase = CASES.find((x) => x.name === name)!;
    it(`${name} [f32 split]`, async () => {
      await checkCase(c, runOn('webgpu'));
      expect(lastGpuStats?.kernel).toBe('flash_sgmat');
      expect(lastGpuStats?.key.includes('"split":true')).toBe(true);
    }, 300_000);
  }
  it("the 'exact' policy keeps f32 on the SIMT kernel", async () => {
    setGpuF32Policy('exact');
    try {
      await checkCase(CASES.find((x) => x.name === 'causal 129x97')!, runOn('webgpu'));
      expect(lastGpuStats?.kernel).toBe('flash_portable');
    } finally {
      setGpuF32Policy('split');
    }
  }, 300_000);
});
