/**
 * Values at the edges of what the API takes: mask parameters past 32 bits (the CPU and GPU mask programs are
 * 32-bit: strided(2^32) divided by zero, blockSparse's 2^32 + 1 wrapped to 1), empty views whose offset lies past
 * their storage, and a key of no weight holding an infinite V element (the reference's semantics, README).
 * The WebGPU part needs an adapter (SwiftShader in CI): it fails, not skips, without one.
 */
import { describe, expect, it } from 'vitest';
import { Tensor, attention, attentionReference, blockSparse, copyInto, randn, strided, tensor } from '../../../src/index.js';

describe('edge values', () => {
  const q = randn([1, 8, 1, 4], 1), k = randn([1, 8, 1, 4], 2), v = randn([1, 8, 1, 4], 3);
  for (const backend of ['wasm', 'cpu-ts', 'webgpu'] as const) {
    it(`strides and block sizes of 2^31 and more mean what they say (${backend})`, async () => {
      for (const mask of [strided(2 ** 31 - 1), strided(2 ** 31 + 1), strided(2 ** 32), blockSparse([[1, 0, 1, 1]], [2 ** 32 + 1, 2]), blockSparse([[1], [0], [1]], [3, 2 ** 33])]) {
        const ref = attentionReference(q, k, v, { mask });
        const r = await attention(q, k, v, { mask, backend, returnLse: true });
        const out = r.out.toFloat64();
        for (let i = 0; i < out.length; i++) expect(Math.abs(out[i]! - ref.out[i]!)).toBeLessThan(1e-5);
        const lse = r.lse!.toFloat64();
        for (let i = 0; i < lse.length; i++) expect(lse[i]).toBeCloseTo(ref.lse[i]!, 5);
      }
    }, 120_000);
  }

  it('an empty view whose offset lies past its storage copies as nothing, and serves as an output', async () => {
    const view = Tensor.zeros([1, 0, 2, 4]).slice(2, 1, 2);
    copyInto(Tensor.zeros([1, 0, 1, 4]), view);
    const e = Tensor.zeros([1, 0, 1, 4]);
    for (const backend of ['wasm', 'cpu-ts'] as const) expect((await attention(e, randn([1, 3, 1, 4], 1), randn([1, 3, 1, 4], 2), { backend, out: view })).out.shape).toEqual([1, 0, 1, 4]);
  });

  it('a key of no weight adds nothing in the reference and the TypeScript kernel, even an infinite V element', async () => {
    for (const k1 of [-Infinity, -1000]) {
      const qq = tensor([1], [1, 1, 1, 1]), kk = tensor([1, k1], [1, 2, 1, 1]), vv = tensor([2, Infinity], [1, 2, 1, 1]);
      expect(attentionReference(qq, kk, vv, { scale: 1 }).out[0]).toBe(2);
      expect((await attention(qq, kk, vv, { scale: 1, backend: 'cpu-ts' })).out.data[0]).toBe(2);
      // The SIMD kernels multiply the zero weight in (0·∞, as PyTorch's SDPA and FlashAttention): the README's known gap.
      expect(Number.isNaN((await attention(qq, kk, vv, { scale: 1, backend: 'wasm' })).out.data[0])).toBe(true);
    }
  });
});
