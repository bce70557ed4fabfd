/**
 * Validation before timing: a float64 reference on a subset of output rows, with the conformance
 * suite's tolerance rule (FlashAttention's): max error ≤ 2 × the error of a naive implementation
 * in f32 (every step rounded) on the same rows, plus a floor of 2e-6·max(1, |out|max).
 *
 * Layout: BSHD, flat Float32Arrays. A "row" is one (batch, query, head) output vector.
 */
import { type Mask, mulberry32 } from '../../src/index.js';
import type { AttentionShape } from './shapes.js';

export interface QKV {
  q: Float32Array;
  k: Float32Array;
  v: Float32Array;
}

export interface RowId {
  b: number;
  i: number;
  h: number;
}

/** Rows to check: corners (first/last query, first/last head) plus seeded random ones. */
export function pickRows(s: AttentionShape, count = 48, seed = 7): RowId[] {
  const rand = mulberry32(seed);
  const rows: RowId[] = [];
  const seen = new Set<string>();
  const add = (b: number, i: number, h: number) => {
    const key = `${b},${i},${h}`;
    if (!seen.has(key)) { seen.add(key); rows.push({ b, i, h }); }
  };
  const B = s.batch, Sq = s.seqLenQ, H = s.numHeads;
  add(0, 0, 0); add(B - 1, Sq - 1, H - 1); add(0, Sq - 1, 0); add(B - 1, 0, H - 1);
  // Rows either side of the 64-row tile boundary.
  add(0, Math.min(Sq - 1, 63), H >> 1); add(0, Math.min(Sq - 1, 64), H >> 1);
  const target = Math.min(count, B * Sq * H);
  while (rows.length < target) add(Math.floor(rand() * B), Math.floor(rand() * Sq), Math.floor(rand() * H));
  return rows;
}

/**
 * One output row in float64 (`f32 = false`) or as a naive f32 implementation computes it
 * (`f32 = true`: scores, probabilities and accumulators rounded to f32 at every step).
 */
export function referenceRow(s: AttentionShape, x: QKV, r: RowId, mask: Mask | null, f32: boolean, scale = 1 / Math.sqrt(s.headDim)): Float64Array {
  const { numHeads: H, numKvHeads: Hk, seqLenQ: Sq, seqLenK: Sk, headDim: D, headDimV: Dv } = s;
  const rd = f32 ? Math.fround : (v: number) => v;
  const hk = Math.floor(r.h / (H / Hk));
  const qo = ((r.b * Sq + r.i) * H + r.h) * D;
  const ctx = { seqLenQ: Sq, seqLenK: Sk };
  const scores = new Float64Array(Sk);
  const visible = new Uint8Array(Sk);
  let mx = -Infinity;
  for (let j = 0; j < Sk; j++) {
    if (mask && !mask.allows(r.i, j, ctx)) continue;
    visible[j] = 1;
    const ko = ((r.b * Sk + j) * Hk + hk) * D;
    let dot = 0;
    for (let c = 0; c < D; c++) dot = rd(dot + rd(x.q[qo + c]! * x.k[ko + c]!));
    const sc = rd(dot * scale);
    scores[j] = sc;
    if (sc > mx) mx = sc;
  }
  const out = new Float64Array(Dv);
  if (mx === -Infinity) return out; // fully masked row: 0
  let sum = 0;
  for (let j = 0; j < Sk; j++) if (visible[j]) { scores[j] = rd(Math.exp(scores[j]! - mx)); sum = rd(sum + scores[j]!); }
  for (let j = 0; j < Sk; j++) {
    if (!visible[j]) continue;
    const p = f32 ? rd(scores[j]! / sum) : scores[j]!;
    const vo = ((r.b * Sk + j) * Hk + hk) * Dv;
    for (let c = 0; c < Dv; c++) out[c] = rd(out[c]! + rd(p * x.v[vo + c]!));
  }
  if (!f32) for (let c = 0; c < Dv; c++) out[c]! /= sum;
  return out;
}

export interface RowCheck {
  rows: number;
  /** Max |actual − float64 reference| over the checked rows. */
  maxAbsErr: number;
  /** Max |naive f32 − float64 reference|: the yardstick. */
  naiveAbsErr: number;
  /** Allowed: 2·naiveAbsErr + floor. */
  tolerance: number;
  ok: boolean;
  /** First offending row, when not ok. */
  worst?: { row: RowId; c: number; got: number; expected: number };
}

/** The reference rows, computed once per shape and reused for every implementation checked. */
export interface ReferenceRows {
  rows: RowId[];
  ref: Float64Array[];
  naiveAbsErr: number;
  vmax: number;
}

export function referenceRows(s: AttentionShape, x: QKV, mask: Mask | null, count = 48): ReferenceRows {
  const rows = pickRows(s, count);
  const ref = rows.map((r) => referenceRow(s, x, r, mask, false));
  let naiveAbsErr = 0, vmax = 0;
  rows.forEach((r, n) => {
    const naive = referenceRow(s, x, r, mask, true);
    for (let c = 0; c < s.headDimV; c++) {
      naiveAbsErr = Math.max(naiveAbsErr, Math.abs(naive[c]! - ref[n]![c]!));
      vmax = Math.max(vmax, Math.abs(ref[n]![c]!));
    }
  });
  return { rows, ref, naiveAbsErr, vmax };
}

/**
 * Checks `out` (BSHD [B, Sq, H, Dv], or any layout through `at`) against the reference rows.
 * `slack` multiplies the tolerance (1 for our kernels; peers get a looser yardstick).
 */
export function checkRows(s: AttentionShape, rr: ReferenceRows, at: (r: RowId, c: number) => number, slack = 1): RowCheck {
  const tolerance = slack * (2 * rr.naiveAbsErr + 2e-6 * Math.max(1, rr.vmax));
  let maxAbsErr = 0;
  let worst: RowCheck['worst'];
  rr.rows.forEach((r, n) => {
    for (let c = 0; c < s.headDimV; c++) {
      const got = at(r, c), expected = rr.ref[n]![c]!;
      const err = Number.isNaN(got) ? Infinity : Math.abs(got - expected);
      if (err > maxAbsErr) { maxAbsErr = err; if (err > tolerance) worst = { row: r, c, got, expected }; }
    }
  });
  return { rows: rr.rows.length, maxAbsErr, naiveAbsErr: rr.naiveAbsErr, tolerance, ok: maxAbsErr <= tolerance, ...(worst ? { worst } : {}) };
}

/** Reads BSHD output row elements. */
export function bshdAt(s: AttentionShape, out: ArrayLike<number>): (r: RowId, c: number) => number {
  return (r, c) => out[((r.b * s.seqLenQ + r.i) * s.numHeads + r.h) * s.headDimV + c]!;
}

/** Reads BHSD output row elements. */
export function bhsdAt(s: AttentionShape, out: ArrayLike<number>): (r: RowId, c: number) => number {
  return (r, c) => out[((r.b * s.numHeads + r.h) * s.seqLenQ + r.i) * s.headDimV + c]!;
}

/** Max |a − b| over two whole outputs (same layout). */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Infinity;
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i]! - b[i]!);
    if (!(d <= m)) m = Number.isNaN(d) ? Infinity : d;
  }
  return m;
}

/** A thrown validation failure: the bench stops before timing anything wrong. */
export class ValidationError extends Error {}

export function describeCheck(c: RowCheck): string {
  const base = `max err ${c.maxAbsErr.toExponential(2)} (tolerance ${c.tolerance.toExponential(2)} = 2×naive-f32 ${c.naiveAbsErr.toExponential(2)} + floor) on ${c.rows} rows`;
  if (!c.worst) return base;
  const w = c.worst;
  return `${base}; worst at [b ${w.row.b}, i ${w.row.i}, h ${w.row.h}, c ${w.c}]: got ${w.got}, expected ${w.expected}`;
}
