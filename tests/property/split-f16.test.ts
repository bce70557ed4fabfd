/**
 * The f32 split form's arithmetic (SgmatVariant.split, src/kernels/webgpu/sgmat.ts), mirrored here bit for bit:
 * split_hi rounds an f32 to 11 significant bits by integer operations (add 0x1000, clear the low 13 mantissa
 * bits) and the kernel stores hi = f16(hi) and lo = f16((x − hi)·2¹¹). Properties, for values the range pass has
 * scaled into [2⁻¹³, 2¹⁵) in magnitude: hi is exactly an f16; hi + lo·2⁻¹¹ recovers x to 2⁻²² relative (about
 * 22 significant bits); a product from the three terms hi·hi + (hi·lo + lo·hi)·2⁻¹¹ is within 2⁻²⁰ of the exact one.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { f16ToF32, f32ToF16 } from '../../src/tensor/dtype.js';

const f32 = new Float32Array(1), u32 = new Uint32Array(f32.buffer);
function splitHi(x: number): number {
  f32[0] = x;
  const b = u32[0]!;
  if ((b & 0x7fffffff) >= 0x7f800000) return f32[0]!;
  u32[0] = ((b + 0x1000) & 0xffffe000) >>> 0;
  return f32[0]!;
}
/** split_lo: (x − hx)·2¹¹, 0 where that is not finite (x infinite or NaN: hx carries it). */
function splitLo(x: number, hx: number): number {
  const d = Math.fround(Math.fround(x - hx) * 2048);
  return Number.isFinite(d) ? d : 0;
}
const toF16 = (x: number) => f16ToF32(f32ToF16(x));
function split(x: number): [number, number] {
  const hx = splitHi(x);
  return [toF16(hx), toF16(splitLo(x, hx))];
}

// f32 values with magnitudes in [2^-13, 2^15) and either sign, drawn over the exponent range.
const scaled = fc.tuple(fc.integer({ min: -13, max: 14 }), fc.double({ min: 1, max: 2, maxExcluded: true, noNaN: true }), fc.boolean())
  .map(([e, m, neg]) => Math.fround((neg ? -1 : 1) * m * 2 ** e));

describe('the split form: f32 as two f16 halves', () => {
  it('the high half is exactly an f16 and the pair recovers x to 2^-22', () => {
    fc.assert(fc.property(scaled, (x) => {
      const hx = splitHi(x);
      expect(toF16(hx)).toBe(hx);
      const [hi, lo] = split(x);
      expect(Math.abs(hi + lo / 2048 - x)).toBeLessThanOrEqual(2 ** -22 * Math.abs(x));
    }), { numRuns: 20000 });
  });

  it('three products of halves match the exact product to 2^-20', () => {
    fc.assert(fc.property(scaled, scaled, (a, b) => {
      const [ah, al] = split(a), [bh, bl] = split(b);
      const p = ah * bh + (ah * bl + al * bh) / 2048;
      expect(Math.abs(p - a * b)).toBeLessThanOrEqual(2 ** -20 * Math.abs(a * b));
    }), { numRuns: 20000 });
  });

  it('infinities and NaN pass through the high half; the low half is then 0', () => {
    for (const x of [Infinity, -Infinity, NaN]) {
      const [hi, lo] = split(x);
      expect(Object.is(hi, x) || (Number.isNaN(hi) && Number.isNaN(x))).toBe(true);
      expect(lo).toBe(0);
    }
  });
});
