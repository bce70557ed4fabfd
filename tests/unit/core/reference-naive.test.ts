import { describe, expect, it } from 'vitest';
import { Tensor, attentionReference, mulberry32, randn } from '../../../src/index.js';

// attentionReference's naive emulation (`precision`), with and without `fma`. With one key the log-sum-exp is
// the score itself, so it shows exactly how the score's dot product was rounded.
describe('attentionReference: the naive f32 implementation, products rounded or fused', () => {
  const f = Math.fround;
  it('one key: the LSE is the dot product rounded as written out (each product rounded, or only each sum)', () => {
    const rng = mulberry32(5);
    let differing = 0;
    for (let t = 0; t < 200; t++) {
      const D = 7;
      const qv = Array.from({ length: D }, () => f((rng() < 0.5 ? -1000 : 1000) + rng()));
      const kv = Array.from({ length: D }, () => f(rng() * 2 - 1));
      let mulAdd = 0, fused = 0;
      for (let c = 0; c < D; c++) { mulAdd = f(mulAdd + f(qv[c]! * kv[c]!)); fused = f(fused + qv[c]! * kv[c]!); }
      const q = Tensor.fromValues(qv, [1, 1, 1, D], 'f32'), k = Tensor.fromValues(kv, [1, 1, 1, D], 'f32');
      const v = randn([1, 1, 1, 3], t);
      const a = attentionReference(q, k, v, { scale: 1, precision: 'f32' });
      const b = attentionReference(q, k, v, { scale: 1, precision: 'f32', fma: true });
      expect(a.lse[0]).toBe(mulAdd);
      expect(b.lse[0]).toBe(fused);
      if (mulAdd !== fused) differing++;
    }
    // The two roundings do differ on such inputs (else this test would not tell them apart).
    expect(differing).toBeGreaterThan(20);
  });

  it('16-bit storage: products of f16 values are exact in f32, so fused and unfused agree bit for bit', () => {
    const q = randn([1, 9, 2, 16], 1).to('f16'), k = randn([1, 33, 2, 16], 2).to('f16'), v = randn([1, 33, 2, 16], 3).to('f16');
    const a = attentionReference(q, k, v, { precision: 'f16' });
    const b = attentionReference(q, k, v, { precision: 'f16', fma: true });
    expect(Array.from(b.out)).toEqual(Array.from(a.out));
  });

  it('f32, random inputs: both stay within a few f32 ulps of float64 and are not identical', () => {
    const q = randn([1, 40, 2, 64], 11), k = randn([1, 70, 2, 64], 12), v = randn([1, 70, 2, 64], 13);
    const ref = attentionReference(q, k, v);
    const a = attentionReference(q, k, v, { precision: 'f32' });
    const b = attentionReference(q, k, v, { precision: 'f32', fma: true });
    let ea = 0, eb = 0, same = true;
    for (let i = 0; i < ref.out.length; i++) {
      ea = Math.max(ea, Math.abs(a.out[i]! - ref.out[i]!));
      eb = Math.max(eb, Math.abs(b.out[i]! - ref.out[i]!));
      if (a.out[i] !== b.out[i]) same = false;
    }
    expect(ea).toBeLessThan(1e-5);
    expect(eb).toBeLessThan(1e-5);
    expect(same).toBe(false);
  });
});
