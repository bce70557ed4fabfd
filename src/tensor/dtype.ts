/**
 * Element types. f16 and bf16 are stored as raw 16-bit patterns in Uint16Array; conversion from
 * float is exact round-to-nearest-even (ties to even), including subnormals, ±Inf and NaN. This holds
 * for float64 inputs (JavaScript numbers) too: they are first narrowed to f32 with round-to-odd, which
 * keeps enough information for the second rounding to be correct (no double-rounding error).
 */

export type DType = 'f32' | 'f16' | 'bf16';
/** Every tensor dtype, in the order f32, f16, bf16. */
export const DTYPES: readonly DType[] = ['f32', 'f16', 'bf16'];

/** Storage array of a dtype. */
export type Storage = Float32Array | Uint16Array;

/** Storage size of one element: 4 for f32, 2 for f16 and bf16. */
export function bytesPerElement(dtype: DType): number {
  return dtype === 'f32' ? 4 : 2;
}

/** Whether `x` is one of the tensor dtypes `'f32'`, `'f16'`, `'bf16'`. */
export function isDType(x: unknown): x is DType {
  return x === 'f32' || x === 'f16' || x === 'bf16';
}

const f32buf = new Float32Array(1);
const u32buf = new Uint32Array(f32buf.buffer);

/**
 * f32 bits of `x` narrowed with round-to-odd: the f32 value toward zero, its last bit set when inexact.
 * f32 keeps 24 significant bits, at least 2 more than f16 (11) and bf16 (8), so rounding this to
 * nearest-even gives exactly what rounding the float64 `x` directly would (Boldo & Melquiond).
 */
function f32BitsRoundOdd(x: number): number {
  f32buf[0] = x;
  let u = u32buf[0]!;
  const f = f32buf[0]!;
  if (f !== x && x === x) {
    if (Math.abs(f) > Math.abs(x)) u -= 1; // rounded away from zero: step the magnitude back
    u |= 1;
  }
  return u >>> 0;
}

/** float → bf16 bits, round to nearest even (exact for float64 inputs too); NaN stays a quiet NaN. */
export function f32ToBf16(x: number): number {
  const u = f32BitsRoundOdd(x);
  if ((u & 0x7f800000) === 0x7f800000 && (u & 0x7fffff) !== 0) return ((u >>> 16) | 0x40) & 0xffff;
  const rounded = u + 0x7fff + ((u >>> 16) & 1);
  return (rounded >>> 16) & 0xffff;
}

/** bf16 bits (low 16 bits of `h`) → float; exact. */
export function bf16ToF32(h: number): number {
  u32buf[0] = (h & 0xffff) << 16;
  return f32buf[0]!;
}

/**
 * float → f16 bits with round-to-nearest-even, exact for float64 inputs too (the narrowing to f32
 * rounds to odd, so there is no double rounding).
 */
export function f32ToF16(x: number): number {
  const u = f32BitsRoundOdd(x);
  const sign = (u >>> 16) & 0x8000;
  const exp = (u >>> 23) & 0xff;
  let mant = u & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 | (mant >>> 13) : 0);
  // Unbiased exponent, re-biased for f16 (bias 15).
  let e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00; // overflow → Inf
  if (e <= 0) {
    // Subnormal f16 (or zero): shift the implicit-one mantissa right.
    if (e < -10) return sign; // underflows to ±0 (rounding cannot reach the smallest subnormal)
    mant |= 0x800000;
    const shift = 14 - e; // 14..24
    const half = 1 << (shift - 1);
    const rem = mant & ((1 << shift) - 1);
    let h = mant >>> shift;
    if (rem > half || (rem === half && (h & 1))) h++;
    return sign | h;
  }
  const rem = mant & 0x1fff;
  let h = (e << 10) | (mant >>> 13);
  if (rem > 0x1000 || (rem === 0x1000 && (h & 1))) h++; // may carry into the exponent: still correct
  return sign | h;
}

/** f16 bits → float; exact, subnormals, ±Inf and NaN included. */
export function f16ToF32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant ? NaN : sign * Infinity;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

/** Rounds a number to what the dtype can hold (the value a store and reload would give). */
export function roundTo(dtype: DType, x: number): number {
  if (dtype === 'f32') return Math.fround(x);
  if (dtype === 'bf16') return bf16ToF32(f32ToBf16(x));
  return f16ToF32(f32ToF16(x));
}

/** The function that turns a stored element of `dtype` into a number (identity for f32). */
export function decoder(dtype: DType): (bits: number) => number {
  return dtype === 'f16' ? f16ToF32 : dtype === 'bf16' ? bf16ToF32 : (x: number) => x;
}

/** The function that turns a number into a stored element of `dtype` (RNE; `Math.fround` for f32). */
export function encoder(dtype: DType): (x: number) => number {
  return dtype === 'f16' ? f32ToF16 : dtype === 'bf16' ? f32ToBf16 : (x: number) => Math.fround(x);
}

/** Zero-filled storage for `n` elements: a Float32Array for f32, a Uint16Array of raw bits otherwise. */
export function allocStorage(dtype: DType, n: number): Storage {
  return dtype === 'f32' ? new Float32Array(n) : new Uint16Array(n);
}
