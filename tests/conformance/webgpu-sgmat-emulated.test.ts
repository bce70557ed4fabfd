import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { attention, attentionReference, gpuContext, lastGpuStats, randn, setGpuKernelPreference, setGpuOutputPoisoning, topK } from '../../src/index.js';
import { setSgmatAblation } from '../../src/kernels/webgpu/sgmat.js';
import { CASES, type ConformanceCase, checkCase, runOn } from './cases.js';

// The tensor-core kernel's logic (tiling, lazy rescaling, masks, GQA packing, varlen, paged-free loads)
// with its subgroup-matrix builtins emulated in plain WGSL, so that CI's SwiftShader (no subgroup
// matrices, no shader-f16) runs it. The real builtins are checked on a GPU by `npm run check:gpu`.
// Emulation is slow on SwiftShader: a subset of the conformance list, chosen to cover every path (with
// 16-byte output stores and, at head dims 59 and 111, without).
const PICK = [
  'self N1 d64', 'self N129 d64', 'causal N129 d64', 'cross 97x1025', 'causal 129x97', 'causal 1025x127',
  'headDim 59', 'headDim 111', 'headDim 128', 'headDimV 111 ≠ headDim 40', 'GQA decode Sq4 causal', 'window(8,8)',
  'prefixLM(70) Sq<Sk', 'block-sparse 64×32 ∧ causal', 'documents ∧ causal', 'softcap 30',
  'causal Sq>Sk: fully masked rows', 'empty KV (seqLenK 0)', 'inputs near ±1000', 'NaN in k: rows that see it are NaN, others not',
  'NaN in v propagates', '+Inf in k: +∞ scores make NaN rows, −∞ scores drop the key', 'softcap 30 with NaN in k', 'layout BHSD', 'varlen self causal', 'varlen cross (Sq_b ≠ Sk_b) causal', 'varlen window GQA8',
];

function picked(): ConformanceCase[] {
  const out: ConformanceCase[] = [];
  for (const p of PICK) {
    const c = CASES.find((x) => x.name === p);
    if (c && !out.includes(c)) out.push(c);
  }
  return out;
}

describe('conformance: webgpu tensor-core kernel, emulated matrices', () => {
  beforeAll(async () => {
    setGpuOutputPoisoning(true);
    await gpuContext();
    setGpuKernelPreference('sgmat-emulated');
  });
  afterAll(() => setGpuKernelPreference('auto'));
  it('covers a useful subset', () => { expect(picked().map((c) => c.name)).toEqual(PICK); });
  for (const c0 of picked()) {
    const c: ConformanceCase = { ...c0, dtype: 'f16', name: `${c0.name} [f16]` };
    it(c.name, async () => {
      await checkCase(c, runOn('webgpu'));
      expect(lastGpuStats?.kernel).toBe('flash_sgmat');
      // 16-byte output stores wherever the value head dim is a multiple of 8 (every output offset then is).
      expect(lastGpuStats?.key.includes('"outVec":true'), 'outVec').toBe((c.headDimV ?? c.headDim) % 8 === 0);
      // Emulated matrices number subgroups by the invocation index anyway: never the lidsg form.
      expect(lastGpuStats?.key.includes('"lidsg"'), 'lidsg').toBe(false);
    }, 300_000);
  }
});

/**
 * A non-default form of the emulated kernel, forced by setSgmatAblation(`form`), on the named conformance
 * cases: each must match the reference and run the tensor-core kernel with `keyPart` in its variant key.
 */
function describeForm(title: string, form: string, keyPart: string, names: string[]): void {
  describe(`conformance: webgpu tensor-core kernel, emulated matrices, ${title}`, () => {
    beforeAll(async () => {
      setGpuOutputPoisoning(true);
      await gpuContext();
      setGpuKernelPreference('sgmat-emulated');
      setSgmatAblation(form);
    });
    afterAll(() => { setSgmatAblation(''); setGpuKernelPreference('auto'); });
    for (const name of names) {
      const c0 = CASES.find((x) => x.name === name)!;
      const c: ConformanceCase = { ...c0, dtype: 'f16', name: `${c0.name} [f16, ${form}]` };
      it(c.name, async () => {
        await checkCase(c, runOn('webgpu'));
        expect(lastGpuStats?.kernel).toBe('flash_sgmat');
        expect(lastGpuStats?.key.includes(keyPart)).toBe(true);
      }, 300_000);
    }
  });
}

// V stored into workgroup memory after the softmax instead of with K (SgmatVariant.vlate: the default from
// SGMAT_VLATE_MIN_KEYS keys, 16-byte loads only; 'vlate' forces it for these short cases): the emulated
// kernel runs the same staging, so CI checks its data flow here; check:gpu with SGMAT_ABLATE=vlate on a GPU.
describeForm('V stored after the softmax', 'vlate', '"vlate":true', ['self N129 d64', 'causal 129x97', 'varlen window GQA8', 'NaN in v propagates', 'headDim 128']);

// Eight subgroups a workgroup (SgmatVariant.NS = 8, 'ns8'; not the default): 128 query rows (or GQA head
// groups of them) share each K/V tile, and the tile plan's Q tiles double. The emulated kernel runs the same
// indexing (head dims ≤ 80: larger ones exceed SwiftShader's 32 KiB at NS = 8); check:gpu with
// SGMAT_ABLATE=ns8 on a GPU.
describeForm('eight subgroups a workgroup', 'ns8', '"NS":8', ['causal 129x97', 'varlen window GQA8', 'f16 causal GQA']);

// Two 16-row query blocks a subgroup (SgmatVariant.MB = 2, 'mb2'): 32·NS rows share each K/V tile, each lane
// owns one row through the softmax, the rescale and the epilogue, S and P interleaved at strides 36 and 32.
// Masks, GQA packing, varlen, scalar loads (headDim 59), LSE and NaN rows, with and without 16-byte stores.
describeForm('two query blocks a subgroup', 'mb2', '"MB":2', [
  'self N129 d64', 'causal 129x97', 'cross 97x1025', 'headDim 59', 'headDimV 111 ≠ headDim 40', 'GQA ratio 4', 'varlen window GQA8',
  'softcap 30', 'NaN in k: rows that see it are NaN, others not', 'causal Sq>Sk: fully masked rows', 'inputs near ±1000',
]);

// The rescale inside the key loop ('noloopx': the form before the rescale left the loop, SgmatVariant's default
// now): cases whose row maxima move late (long keys, ±1000 inputs, softcap, NaN and infinite scores, fully
// masked rows), with one and two query blocks a subgroup. The default form runs the whole lists above.
describeForm('rescale inside the key loop', 'noloopx', '"ablate":"noloopx"', ['cross 97x1025', 'inputs near ±1000', 'softcap 30', 'causal Sq>Sk: fully masked rows']);
describeForm('rescale inside the key loop, two query blocks', 'mb2,noloopx', '"ablate":"mb2,noloopx"', ['causal 129x97', 'NaN in k: rows that see it are NaN, others not', 'headDim 59']);

// P row-major ('prow', two query blocks; a trial form for the H200, where offsets from the invocation index may let the
// compiler merge a lane's 16 probability stores): its data flow through the emulated kernel.
describeForm('P row-major, two query blocks', 'mb2,prow', '"ablate":"mb2,prow"', ['causal 129x97', 'headDim 59', 'varlen window GQA8', 'inputs near ±1000']);

// Top-k with the tensor-core kernel preferred: its threshold pass rounds each score as the SIMT kernel does, not as
// the matrix products do, so a call with a top-k mask runs flash_portable (the tensor-core kernel dropped the k-th
// key on a quarter of the rows of random inputs: the dyadic conformance inputs round alike on both and hid it).
describe('webgpu: top-k stays on the SIMT kernel when the tensor-core kernel is preferred', () => {
  beforeAll(async () => { await gpuContext(); setGpuKernelPreference('sgmat-emulated'); });
  afterAll(() => setGpuKernelPreference('auto'));
  for (const dtype of ['f32', 'f16'] as const) {
    it(`random inputs, topK(5), Sq 40 × Sk 129, d32, ${dtype}`, async () => {
      const q = randn([1, 40, 1, 32], 1), k = randn([1, 129, 1, 32], 2), v = randn([1, 129, 1, 32], 3);
      const ref = attentionReference(q.to(dtype), k.to(dtype), v.to(dtype), { mask: topK(5) }).out;
      const out = (await attention(q.to(dtype), k.to(dtype), v.to(dtype), { mask: topK(5), backend: 'webgpu' })).out.toFloat64();
      expect(lastGpuStats?.kernel).toBe('flash_portable');
      let worst = 0;
      for (let i = 0; i < out.length; i++) worst = Math.max(worst, Math.abs(out[i]! - ref[i]!));
      expect(worst).toBeLessThan(dtype === 'f16' ? 2e-3 : 2e-6);
      // Without top-k the same call runs on the tensor cores (f32 in their split form).
      await attention(q.to(dtype), k.to(dtype), v.to(dtype), { backend: 'webgpu' });
      expect(lastGpuStats?.kernel).toBe('flash_sgmat');
    }, 300_000);
  }
});
