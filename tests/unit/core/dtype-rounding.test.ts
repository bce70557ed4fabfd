/**
 * f16 / bf16 rounding from JavaScript numbers (float64): round-to-nearest-even of the float64 value
 * itself, with no double rounding through f32. Near every midpoint between two neighbouring 16-bit
 * values, a nudge up or down must pick the upper or lower neighbour, and the exact midpoint the even one.
 */
import { describe, expect, it } from 'vitest';
import { bf16ToF32, f16ToF32, f32ToBf16, f32ToF16 } from '../../../src/index.js';

type Codec = { name: string; enc: (x: number) => number; dec: (h: number) => number; maxFinite: number; mantBits: number };
const CODECS: Codec[] = [
  { name: 'f16', enc: f32ToF16, dec: f16ToF32, maxFinite: 0x7bff, mantBits: 10 },
  { name: 'bf16', enc: f32ToBf16, dec: bf16ToF32, maxFinite: 0x7f7f, mantBits: 7 },
];

// Deterministic patterns: every exponent (subnormals included), a spread of mantissas.
function patterns(c: Codec): number[] {
  const out: number[] = [];
  for (let h = 0; h < c.maxFinite; h += 37) out.push(h);
  for (let e = 0; e < 1 << (15 - c.mantBits); e++) out.push((e << c.mantBits) | 0, (e << c.mantBits) | 1, ((e + 1) << c.mantBits) - 1);
  return out.filter((h) => h < c.maxFinite);
}

describe.each(CODECS)('$name rounding of float64 values', (c) => {
  it('nudges around every midpoint round to the nearer neighbour, ties to even', () => {
    let checked = 0;
    for (const lo of patterns(c)) {
      for (const sign of [1, -1]) {
        const a = c.dec(lo), b = c.dec(lo + 1);
        const mid = (a + b) / 2; // exact in float64
        const nudge = Math.max((b - a) * 2 ** -30, Number.MIN_VALUE);
        const s = sign < 0 ? 0x8000 : 0;
        expect(c.enc(sign * (mid + nudge)), `${c.name} just above mid(${lo})`).toBe(s | (lo + 1));
        expect(c.enc(sign * (mid - nudge)), `${c.name} just below mid(${lo})`).toBe(s | lo);
        expect(c.enc(sign * mid), `${c.name} tie at mid(${lo})`).toBe(s | (lo % 2 === 0 ? lo : lo + 1));
        expect(c.enc(sign * a)).toBe(s | lo);
        checked++;
      }
    }
    expect(checked).toBeGreaterThan(1000);
  });

  it('overflow, infinities, NaN and signed zero', () => {
    const max = c.dec(c.maxFinite);
    const next = c.dec(c.maxFinite + 1); // Inf pattern, not a number: use the would-be next power
    expect(next).toBe(Infinity);
    const ulp = max - c.dec(c.maxFinite - 1);
    expect(c.enc(max + ulp / 2 - ulp * 2 ** -30)).toBe(c.maxFinite);
    expect(c.enc(max + ulp / 2)).toBe(c.maxFinite + 1); // tie goes to even: the Inf pattern
    expect(c.enc(1e300)).toBe(c.maxFinite + 1);
    expect(c.enc(-1e300)).toBe(0x8000 | (c.maxFinite + 1));
    expect(c.enc(Infinity)).toBe(c.maxFinite + 1);
    expect(Number.isNaN(c.dec(c.enc(NaN)))).toBe(true);
    expect(c.enc(-0)).toBe(0x8000);
    expect(c.enc(1e-300)).toBe(0);
    expect(c.enc(-1e-300)).toBe(0x8000);
  });
});

it('the double-rounding cases that f32 as a plain intermediate gets wrong', () => {
  // 1 + 2^-11 + 2^-40 lies above the f16 midpoint between 1 and 1 + 2^-10; through f32 it would be a tie.
  expect(f16ToF32(f32ToF16(1 + 2 ** -11 + 2 ** -40))).toBe(1 + 2 ** -10);
  expect(bf16ToF32(f32ToBf16(1 + 2 ** -8 + 2 ** -40))).toBe(1 + 2 ** -7);
  expect(f16ToF32(f32ToF16(-(1 + 2 ** -11 + 2 ** -40)))).toBe(-(1 + 2 ** -10));
});
