/**
 * GQA / MQA equals MHA with each KV head repeated over its query-head group (fast-check), on every
 * CPU backend.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Tensor, attention, causal, randn } from '../../src/index.js';

function repeatHeads(t: Tensor, group: number): Tensor {
  const [B, S, Hk, D] = t.shape as [number, number, number, number];
  const src = t.toFloat32();
  const out = new Float32Array(B * S * Hk * group * D);
  for (let b = 0; b < B; b++) for (let s = 0; s < S; s++) for (let h = 0; h < Hk * group; h++) {
    const hk = Math.floor(h / group);
    out.set(src.subarray(((b * S + s) * Hk + hk) * D, ((b * S + s) * Hk + hk + 1) * D), ((b * S + s) * Hk * group + h) * D);
  }
  return Tensor.fromValues(out, [B, S, Hk * group, D]);
}

describe('GQA equals repeated heads', () => {
  for (const backend of ['wasm', 'cpu-ts'] as const) {
    it(`${backend}: random shapes, groups 1..8, with and without causal`, async () => {
      await fc.assert(fc.asyncProperty(
        fc.record({
          B: fc.integer({ min: 1, max: 2 }), Sq: fc.integer({ min: 1, max: 70 }), Sk: fc.integer({ min: 1, max: 90 }),
          Hk: fc.integer({ min: 1, max: 3 }), G: fc.constantFrom(1, 2, 4, 8), D: fc.integer({ min: 1, max: 40 }),
          isCausal: fc.boolean(), seed: fc.integer({ min: 1, max: 1e6 }),
        }),
        async ({ B, Sq, Sk, Hk, G, D, isCausal, seed }) => {
          const q = randn([B, Sq, Hk * G, D], seed), k = randn([B, Sk, Hk, D], seed + 1), v = randn([B, Sk, Hk, D], seed + 2);
          const mask = isCausal ? causal() : null;
          const gqa = await attention(q, k, v, { mask, backend, returnLse: true });
          const mha = await attention(q, repeatHeads(k, G), repeatHeads(v, G), { mask, backend, returnLse: true });
          const a = gqa.out.toFloat32(), b = mha.out.toFloat32();
          for (let t = 0; t < a.length; t++) expect(Math.abs(a[t]! - b[t]!)).toBeLessThanOrEqual(1e-6 * Math.max(1, Math.abs(b[t]!)));
          const la = gqa.lse!.toFloat32(), lb = mha.lse!.toFloat32();
          for (let t = 0; t < la.length; t++) expect(la[t]).toBeCloseTo(lb[t]!, 5);
        },
      ), { numRuns: 40, seed: 21 });
    }, 300_000);
  }
});
