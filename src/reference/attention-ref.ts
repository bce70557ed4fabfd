/**
 * Naive attention from an explicitly materialised mask: the oracle of every test.
 *
 * `attentionReference` computes in float64 (the "out_ref" of FlashAttention's tests). With
 * `precision` set to a storage dtype it instead rounds every intermediate the way a plain
 * implementation in that precision would (S, P and O stored in the dtype; f32 accumulation rounded
 * step by step): FlashAttention's "out_pt", whose error sets the tolerance of a fast kernel. With `fma`
 * the naive implementation's multiply-adds (Q·Kᵀ and P·V) are fused, as on GPUs and in BLAS libraries
 * (FlashAttention's out_pt is PyTorch on the GPU): each product exact, only the sums rounded.
 *
 * Shapes (BSHD): q [batch, seqLenQ, numHeads, headDim], k [batch, seqLenK, numKvHeads, headDim],
 * v [batch, seqLenK, numKvHeads, headDimV] → out [batch, seqLenQ, numHeads, headDimV] and
 * lse [batch, numHeads, seqLenQ] (natural log; −∞ for a fully masked row, whose output is 0).
 */
import { type Mask, causal, denseMask, findTopK, validateMask } from '../masks/mask.js';
import { type DType, roundTo } from '../tensor/dtype.js';
import type { Tensor } from '../tensor/tensor.js';

/** Options of `attentionReference` and `attentionReferenceVarlen`. */
export interface ReferenceOptions {
  /** Softmax scale (default 1/√headDim). */
  scale?: number;
  /** If > 0, scores become softcap·tanh(score/softcap) (default 0, off). */
  softcap?: number;
  /** Mask, materialised densely (top-k ranked on the computed scores); null or absent = none. */
  mask?: Mask | null;
  /** Shorthand for `mask: causal()` (bottom-right aligned), intersected with `mask`: the same option `attention` takes. */
  causal?: boolean;
  /** Emulate a naive implementation in this precision instead of float64. */
  precision?: 'f64' | DType;
  /**
   * With `precision`: fused multiply-adds in the Q·Kᵀ and P·V sums (the product of two f32 values is exact
   * in float64, so only the sum is rounded: to float64 and then to f32, which differs from one rounding only
   * in rare ties). Default false: each product rounded, then the sum.
   */
  fma?: boolean;
}

/** The result of `attentionReference`: flat row-major float64 arrays. */
export interface ReferenceResult {
  /** Output [batch, seqLenQ, numHeads, headDimV] (BSHD); 0 on fully masked rows. */
  out: Float64Array;
  /** Natural-log log-sum-exp [batch, numHeads, seqLenQ]; −∞ on fully masked rows. */
  lse: Float64Array;
  /** The shape of `out`: [batch, seqLenQ, numHeads, headDimV]. */
  shape: [number, number, number, number];
}

/** Reads a BSHD tensor into a float64 array indexed [b][s][h][d]. */
function load(t: Tensor): Float64Array {
  return t.toFloat64();
}

/**
 * Naive attention from the dense mask, in float64 or emulating a plain implementation in `precision`:
 * the oracle the kernels are tested against. BSHD only and unvalidated: q [batch, seqLenQ, numHeads,
 * headDim], k [batch, seqLenK, numKvHeads, headDim], v [batch, seqLenK, numKvHeads, headDimV].
 * Causal masks align bottom-right when seqLenQ ≠ seqLenK; a fully masked row outputs 0 with
 * log-sum-exp −∞; a NaN among a row's visible scores makes its output and log-sum-exp NaN.
 */
export function attentionReference(q: Tensor, k: Tensor, v: Tensor, opts: ReferenceOptions = {}): ReferenceResult {
  const [B, Sq, H, D] = q.shape as [number, number, number, number];
  const [, Sk, Hk] = k.shape as [number, number, number, number];
  const Dv = v.shape[3]!;
  const scale = opts.scale ?? 1 / Math.sqrt(D);
  // A naive low-precision implementation holds the scale in f32, as its kernels do (PyTorch's k / √d on an f32 or
  // 16-bit tensor computes with the scalar in f32): K·scale rounds once from that, not from the float64 scale.
  const scaleLow = Math.fround(scale);
  const softcap = opts.softcap ?? 0;
  const prec = opts.precision ?? 'f64';
  const r = prec === 'f64' ? (x: number) => x : (x: number) => roundTo(prec, x);
  // Accumulation: f64 for the oracle; f32 step-by-step otherwise (low-precision kernels accumulate in f32).
  const acc = prec === 'f64' ? (x: number) => x : Math.fround;
  // The product's own rounding: none when fused (exact in float64 for f32 and 16-bit operands).
  const prod = opts.fma ? (x: number) => x : acc;
  const Q = load(q), K = load(k), V = load(v);
  const group = H / Hk;
  const out = new Float64Array(B * Sq * H * Dv);
  const lse = new Float64Array(B * H * Sq);
  const ctx = { seqLenQ: Sq, seqLenK: Sk };
  // The oracle refuses what the kernels refuse (a key subset or block layout of the wrong size would
  // otherwise give numbers the kernels never produce).
  if (opts.mask) validateMask(opts.mask, ctx);
  const s = new Float64Array(Sq * Sk);
  const p = new Float64Array(Sk);
  const orow = new Float64Array(Dv);
  const mask = opts.causal ? (opts.mask ? causal().and(opts.mask) : causal()) : opts.mask ?? null;
  const hasTopK = mask ? findTopK(mask.node) !== null : false;
  const staticMask = mask && !hasTopK ? denseMask(mask, ctx) : null;
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      const hk = Math.floor(h / group);
      // Scores. The low-precision path scales K (FlashAttention's reorder_ops) and stores S in the dtype.
      for (let i = 0; i < Sq; i++) {
        const qo = ((b * Sq + i) * H + h) * D;
        for (let j = 0; j < Sk; j++) {
          const ko = ((b * Sk + j) * Hk + hk) * D;
          let dot = 0;
          if (prec === 'f64') {
            for (let c = 0; c < D; c++) dot += Q[qo + c]! * K[ko + c]!;
            dot *= scale;
          } else {
            for (let c = 0; c < D; c++) dot = acc(dot + prod(Q[qo + c]! * r(K[ko + c]! * scaleLow)));
            dot = r(dot);
          }
          if (softcap > 0) dot = r(softcap * Math.tanh(dot / softcap));
          s[i * Sk + j] = dot;
        }
      }
      const m = staticMask ?? (mask ? denseMask(mask, ctx, (i, j) => s[i * Sk + j]!) : null);
      for (let i = 0; i < Sq; i++) {
        let mx = -Infinity;
        let nan = false;
        for (let j = 0; j < Sk; j++) {
          if (m && !m[i * Sk + j]) continue;
          const x = s[i * Sk + j]!;
          if (Number.isNaN(x)) nan = true;
          if (x > mx) mx = x;
        }
        const oo = ((b * Sq + i) * H + h) * Dv;
        const lo = (b * H + h) * Sq + i;
        if (nan) {
          for (let c = 0; c < Dv; c++) out[oo + c] = NaN;
          lse[lo] = NaN;
          continue;
        }
        if (mx === -Infinity) {
          lse[lo] = -Infinity; // fully masked row (or every visible score −∞): output 0
          continue;
        }
        let sum = 0;
        p.fill(0);
        for (let j = 0; j < Sk; j++) {
          if (m && !m[i * Sk + j]) continue;
          p[j] = r(Math.exp(s[i * Sk + j]! - mx));
          sum = acc(sum + p[j]!);
        }
        lse[lo] = mx + Math.log(sum);
        if (prec !== 'f64') for (let j = 0; j < Sk; j++) p[j] = r(p[j]! / sum);
        orow.fill(0);
        for (let j = 0; j < Sk; j++) {
          if (m && !m[i * Sk + j]) continue;
          const pj = p[j]!;
          if (pj === 0) continue; // a key of no weight (−∞ score, or one that underflows) adds nothing, even an infinite V
          const vo = ((b * Sk + j) * Hk + hk) * Dv;
          if (prec === 'f64') for (let c = 0; c < Dv; c++) orow[c] += pj * V[vo + c]!;
          else for (let c = 0; c < Dv; c++) orow[c] = acc(orow[c]! + prod(pj * V[vo + c]!));
        }
        for (let c = 0; c < Dv; c++) out[oo + c] = prec === 'f64' ? orow[c]! / sum : r(orow[c]!);
      }
    }
  }
  return { out, lse, shape: [B, Sq, H, Dv] };
}

/**
 * Varlen reference: q [totalQ, numHeads, headDim], k/v [totalK, numKvHeads, ·] with
 * cuSeqlens boundaries; each sequence is attended independently with its own alignment.
 * Returns out [totalQ, numHeads, headDimV] and lse [numHeads, totalQ].
 */
export function attentionReferenceVarlen(q: Tensor, k: Tensor, v: Tensor, cuSeqlensQ: ArrayLike<number>, cuSeqlensK: ArrayLike<number>, opts: ReferenceOptions = {}): { out: Float64Array; lse: Float64Array } {
  const [, H, D] = q.shape as [number, number, number];
  const Dv = v.shape[2]!;
  const totalQ = q.shape[0]!;
  const out = new Float64Array(totalQ * H * Dv);
  const lse = new Float64Array(H * totalQ);
  for (let b = 0; b + 1 < cuSeqlensQ.length; b++) {
    const q0 = cuSeqlensQ[b]!, q1 = cuSeqlensQ[b + 1]!, k0 = cuSeqlensK[b]!, k1 = cuSeqlensK[b + 1]!;
    if (q1 === q0) continue;
    const qs = q.slice(0, q0, q1).reshape([1, q1 - q0, H, D]);
    const ks = k.slice(0, k0, k1), vs = v.slice(0, k0, k1);
    const r = attentionReference(qs, ks.reshape([1, k1 - k0, ks.shape[1]!, ks.shape[2]!]), vs.reshape([1, k1 - k0, vs.shape[1]!, vs.shape[2]!]), { ...opts, scale: opts.scale ?? 1 / Math.sqrt(D) });
    out.set(r.out, q0 * H * Dv);
    for (let h = 0; h < H; h++) for (let i = 0; i < q1 - q0; i++) lse[h * totalQ + q0 + i] = r.lse[h * (q1 - q0) + i]!;
  }
  return { out, lse };
}
