/**
 * topK at its edges: with a small softcap the soft-capped scores crowd together, and the TypeScript kernel once
 * kept its thresholds in f32 while comparing float64 scores, so a threshold rounded up dropped the k-th key (rows of
 * topK(1) came out 0 with log-sum-exp −∞). Two topK nodes in one mask are refused (every kernel ranks by one node).
 */
import { describe, expect, it } from 'vitest';
import { UnsupportedError, attention, attentionReference, causal, randn, topK } from '../../../src/index.js';
import { expectClose } from '../../helpers/close.js';

describe('topK edges', () => {
  for (const k of [1, 4]) {
    it(`topK(${k}) with softcap 0.5 keeps k keys a row on the TypeScript kernel`, async () => {
      const q = randn([1, 8, 1, 8], 1), kk = randn([1, 16, 1, 8], 2), v = randn([1, 16, 1, 8], 3);
      const got = await attention(q, kk, v, { mask: topK(k), softcap: 0.5, returnLse: true, backend: 'cpu-ts' });
      const ref = attentionReference(q, kk, v, { mask: topK(k), softcap: 0.5 });
      expect(Array.from(got.lse!.toFloat32()).every(Number.isFinite)).toBe(true);
      expectClose(got.out.toFloat64(), ref.out, { atol: 1e-5, label: 'out' });
      expectClose(got.lse!.toFloat64(), ref.lse, { atol: 1e-5, label: 'lse' });
    });
  }

  it('refuses a mask with two topK nodes, as it refuses a nested one', () => {
    expect(() => topK(3).and(topK(2))).toThrow(UnsupportedError);
    expect(() => topK(3).or(causal().and(topK(2)))).toThrow(UnsupportedError);
    expect(() => topK(2, topK(3))).toThrow(UnsupportedError);
    expect(() => topK(2).not().and(causal())).not.toThrow();
  });

  it('a mask that is not a Mask is a typed error naming it', async () => {
    const q = randn([1, 8, 1, 8], 1);
    for (const mask of [{}, (i: number, j: number) => i >= j]) {
      await expect(attention(q, q, q, { mask: mask as never, backend: 'cpu-ts' })).rejects.toThrow(expect.objectContaining({ argument: 'mask' }));
    }
  });
});
