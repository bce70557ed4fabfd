/**
 * int8 KV quantisation and the random-sign Hadamard rotation ("incoherent processing",
 * FlashAttention-3's FP8 path, after QuIP).
 *
 * Quantisation. Each (block, kvHead) of K and of V has one f32 scale over all its tokens and
 * channels, scale = fround(absmax / 127), and each value one int8 code q ∈ [−127, 127] standing for
 * fround(level(q) · scale) on one of two grids (`Int8Grid`):
 *
 *   'uniform':   level(q) = q                       (q = round(x / scale));
 *   'gaussian':  level(q) = q · (½ + ½ · q² / 127²)  (levels twice as dense near 0 as uniform, half
 *                as dense at ±127; level(±127) = ±127, so absmax is still exact and nothing clips).
 *
 * A code is the grid's nearest level to x / scale, ties away from zero. The rotation below makes each
 * block's values close to Gaussian with absmax ≈ 3.5σ, where the uniform grid's rounding error is
 * ≈ 0.8 % of σ and the gaussian grid's ≈ 0.65 % (the cubic's a = ½ minimises it for those blocks; the
 * MSE-optimal 256-level quantiser of a Gaussian, ≈ 0.64 %, is hardly better) — the approach of HIGGS's
 * Hadamard + Gaussian-matched grids. Values spread evenly over their range (a rotated K whose outlier
 * channels were not smoothed) round better on the uniform grid, so the grid is chosen per (block, head):
 * `Int8GridMode` 'auto' takes the one with the smaller squared error over the values being written.
 * The stored scale carries the choice in its sign (negative: gaussian), so the format stays one f32
 * scale per (block, head) and the kernels dequantise either grid with two selects and an FMA.
 * When a later token of a partly filled block exceeds 127 · scale, the block's earlier tokens of that
 * head are requantised to the new scale (q ← code(level(q) · old / new)), so a decode-time append never
 * clips.
 *
 * Rotation. Outlier channels (a few channels 20–100× larger than the rest, common in K) force a
 * large scale and wipe out the small channels. An orthogonal R spreads an outlier over all
 * channels first:
 *
 *   R = blockdiag(H_n₁/√n₁, H_n₂/√n₂, …) · diag(s)
 *
 * where n₁ > n₂ > … are the powers of two of headDim's binary expansion (128 → [128]; 96 → [64, 32];
 * 80 → [64, 16]), H_n is the Sylvester–Hadamard matrix (H_1 = [1], H_2n = [[H_n, H_n], [H_n, −H_n]],
 * applied with the fast Walsh–Hadamard transform) and s ∈ {±1}^headDim is a random sign vector, one
 * per (layer, kvHead):
 *
 *   s[c] = mulberry32(mix(seed, layer, kvHead)) draw c < 0.5 ? +1 : −1,
 *   mix(seed, l, h) = (seed ^ imul(l + 1, 0x9E3779B1) ^ imul(h + 1, 0x85EBCA77)) >>> 0
 *
 * Both K and V of (layer, kvHead) are stored as R·x. Since RᵀR = I:
 *   scores:  (R q)·(R k) = q·k           → rotate each query head with its KV head's R (`rotateQuery`);
 *   output:  Σⱼ pⱼ R vⱼ = R o            → multiply the output by Rᵀ = diag(s)·blockdiag(H/√n) (`unrotateOutput`).
 * Query head h uses KV head ⌊h / (numHeads / numKvHeads)⌋ (GQA), so its R is that head's.
 */
import { ShapeError, ValueError } from '../errors.js';
import { Tensor, mulberry32 } from '../tensor/tensor.js';

/** The random-sign Hadamard rotation R of a cache's K and V (module comment): one sign vector per (layer, KV head). */
export interface HadamardRotation {
  /** Seed of the sign vectors (PagedKvCacheOptions.rotation; `true` means 0). */
  readonly seed: number;
  readonly headDim: number;
  readonly numKvHeads: number;
  /** Powers of two summing to headDim, largest first (the Hadamard blocks). */
  readonly chunks: readonly number[];
  /** Per layer: the sign vectors s, [numKvHeads, headDim] row-major, each entry ±1. */
  readonly signs: readonly Float32Array[];
}

/** The power-of-two blocks of headDim (its binary expansion), largest first. */
export function hadamardChunks(headDim: number): number[] {
  const out: number[] = [];
  for (let bit = 1 << 30; bit >= 1; bit >>>= 1) if (headDim & bit) out.push(bit);
  return out;
}

/** The ±1 sign vector of (layer, kvHead), see the module comment for the exact generator. */
export function rotationSigns(seed: number, layer: number, kvHead: number, headDim: number): Float32Array {
  const rng = mulberry32((seed ^ Math.imul(layer + 1, 0x9e3779b1) ^ Math.imul(kvHead + 1, 0x85ebca77)) >>> 0);
  const s = new Float32Array(headDim);
  for (let c = 0; c < headDim; c++) s[c] = rng() < 0.5 ? 1 : -1;
  return s;
}

/** The rotation of a cache of this geometry: every (layer, KV head)'s signs from `rotationSigns`, frozen; deterministic in `seed`. */
export function makeRotation(numLayers: number, numKvHeads: number, headDim: number, seed: number): HadamardRotation {
  const signs: Float32Array[] = [];
  for (let l = 0; l < numLayers; l++) {
    const s = new Float32Array(numKvHeads * headDim);
    for (let h = 0; h < numKvHeads; h++) s.set(rotationSigns(seed, l, h, headDim), h * headDim);
    signs.push(s);
  }
  return Object.freeze({ seed, headDim, numKvHeads, chunks: Object.freeze(hadamardChunks(headDim)), signs: Object.freeze(signs) });
}

function fwht(x: Float64Array, base: number, n: number): void {
  for (let h = 1; h < n; h *= 2) {
    for (let i = base; i < base + n; i += 2 * h) {
      for (let j = i; j < i + h; j++) {
        const a = x[j]!, b = x[j + h]!;
        x[j] = a + b;
        x[j + h] = a - b;
      }
    }
  }
  const inv = 1 / Math.sqrt(n);
  for (let j = base; j < base + n; j++) x[j]! *= inv;
}

/** x[off..off+D) ← R·x in place (float64), with the signs at signs[soff..soff+D). */
export function rotateInPlace(x: Float64Array, off: number, signs: Float32Array, soff: number, chunks: readonly number[]): void {
  let D = 0;
  for (const n of chunks) D += n;
  for (let c = 0; c < D; c++) x[off + c]! *= signs[soff + c]!;
  let base = off;
  for (const n of chunks) { fwht(x, base, n); base += n; }
}

/** x[off..off+D) ← Rᵀ·x in place (float64). */
export function unrotateInPlace(x: Float64Array, off: number, signs: Float32Array, soff: number, chunks: readonly number[]): void {
  let base = off;
  for (const n of chunks) { fwht(x, base, n); base += n; }
  for (let c = 0; c < base - off; c++) x[off + c]! *= signs[soff + c]!;
}

/** What the rotation helpers need from a KV storage. */
export interface RotationSource {
  /** The rotation K and V are stored under, or null when they are not rotated. */
  readonly rotation: HadamardRotation | null;
  /** K's per-channel smoothing factors per layer ([numKvHeads · headDim]; null: not calibrated yet), or none. */
  readonly smoothing?: readonly (Float32Array | null)[] | null;
  readonly numKvHeads: number;
  readonly headDim: number;
  readonly numLayers: number;
}

function rotateHeads(t: Tensor, src: RotationSource, layer: number, argument: string, inverse: boolean): Tensor {
  if (!(t instanceof Tensor)) throw new ValueError(`${argument} must be a Tensor`, argument);
  if (!Number.isInteger(layer) || layer < 0 || layer >= src.numLayers) throw new ValueError(`layer must be an integer in 0..${src.numLayers - 1}, got ${layer}`, 'layer');
  const rank = t.rank;
  if (rank < 2) throw new ShapeError(`${argument} must be at least 2-D [..., numHeads, headDim], got [${t.shape.join(', ')}]`, argument);
  const H = t.shape[rank - 2]!, D = t.shape[rank - 1]!;
  if (D !== src.headDim) throw new ShapeError(`${argument} has headDim ${D}, the KV cache has ${src.headDim}`, argument, 'headDim');
  if (H % src.numKvHeads !== 0) throw new ShapeError(`${argument} has ${H} heads, not a multiple of the cache's numKvHeads ${src.numKvHeads}`, argument, 'numHeads');
  const rot = src.rotation;
  // Queries of a smoothed cache take K's factors λ (K is stored divided by them); outputs do not (V is not smoothed).
  // A layer whose 'auto' factors are not calibrated yet (fewer than SMOOTH_MIN_TOKENS written) stores K without
  // them, so its queries go without them too; rotate queries right before the attention call that uses them.
  const lam = !inverse && src.smoothing ? src.smoothing[layer] ?? undefined : undefined;
  if (!rot && !lam) return t;
  const group = H / src.numKvHeads;
  const x = t.toFloat64();
  for (let row = 0; row < x.length / D; row++) {
    const hk = Math.floor((row % H) / group);
    if (lam) for (let c = 0; c < D; c++) x[row * D + c]! *= lam[hk * D + c]!;
    if (rot) (inverse ? unrotateInPlace : rotateInPlace)(x, row * D, rot.signs[layer]!, hk * D, rot.chunks);
  }
  return Tensor.fromValues(x, t.shape, 'f32');
}

/**
 * Rotates queries into the space a rotated cache stores K in, so (R q)·(R k) = q·k; with K smoothing
 * (K stored as R·(k / λ)) the query is R·(λ ⊙ q), so the score is still q·k. q is
 * [..., numHeads, headDim] (BSHD or varlen [totalQ, numHeads, headDim]); query head h uses the
 * rotation of KV head ⌊h / (numHeads / numKvHeads)⌋. Returns a new f32 tensor of the same shape;
 * returns q itself when the cache is neither rotated nor smoothed.
 */
export function rotateQuery(q: Tensor, src: RotationSource, layer: number): Tensor {
  return rotateHeads(q, src, layer, 'q', false);
}

/**
 * Maps an attention output computed against rotated V back to the model's space: o = Rᵀ o'.
 * out is [..., numHeads, headDim]; returns a new f32 tensor (or out itself when not rotated).
 */
export function unrotateOutput(out: Tensor, src: RotationSource, layer: number): Tensor {
  return rotateHeads(out, src, layer, 'out', true);
}

/**
 * The value grid of int8 codes (see the module comment): 'uniform' (level q) or 'gaussian'
 * (level q·(½ + ½·q²/127²), matched to the near-Gaussian blocks the rotation makes).
 */
export type Int8Grid = 'uniform' | 'gaussian';

/** How a cache picks each (block, head)'s grid: always one, or 'auto' (the smaller squared error). */
export type Int8GridMode = Int8Grid | 'auto';

/** ½ / 127²: the gaussian grid's cubic coefficient (kernels use the same f32 constant). */
export const INT8_GAUSSIAN_C = 0.5 / (127 * 127);

/** The level (in units of the scale) that code q stands for on `grid`. */
export function int8Level(q: number, grid: Int8Grid = 'uniform'): number {
  return grid === 'uniform' ? q : q * (0.5 + q * q * INT8_GAUSSIAN_C);
}

const scaleBits = new Float32Array(1);
const scaleU32 = new Uint32Array(scaleBits.buffer);

/**
 * int8 scale of a group with absolute maximum `absmax`: absmax / 127 in f32, stepped down where rounding up
 * would make the top level 127·scale overflow f32 (absmax near 3.4e38 read back as Infinity).
 */
export function int8Scale(absmax: number): number {
  let s = Math.fround(absmax / 127);
  while (s > 0 && !Number.isFinite(Math.fround(127 * s))) {
    scaleBits[0] = s;
    scaleU32[0] = scaleU32[0]! - 1;
    s = scaleBits[0]!;
  }
  return s;
}

/** The gaussian grid's decision points: GAUSS_MID[c] halfway between levels c and c + 1 (c = 0 … 126). */
const GAUSS_MID = Float64Array.from({ length: 127 }, (_, c) => (int8Level(c, 'gaussian') + int8Level(c + 1, 'gaussian')) / 2);
/**
 * GAUSS_START[i]: how many decision points lie at or below i / 4. The levels are at least ½ apart, so a
 * bucket of width ¼ holds at most one: a code is GAUSS_START[⌊4a⌋] plus at most one step.
 */
const GAUSS_START = Uint8Array.from({ length: 127 * 4 + 1 }, (_, i) => {
  let c = 0;
  while (c < 127 && GAUSS_MID[c]! <= i / 4) c++;
  return c;
});

/** The code of a = |x| / scale ≥ 0 on the gaussian grid: the nearest level, ties up (away from zero). */
function gaussianCode(a: number): number {
  if (!(a < 127)) return 127;
  let c = GAUSS_START[(a * 4) | 0]!;
  while (c < 127 && a >= GAUSS_MID[c]!) c++;
  return c;
}

/** Quantises x with `scale` to the nearest level of `grid` (ties away from zero, clamped to ±127); scale 0 gives 0. */
export function quantizeInt8(x: number, scale: number, grid: Int8Grid = 'uniform'): number {
  if (scale === 0) return 0;
  const r = x / scale;
  if (grid === 'uniform') return uniformCode(r);
  const c = gaussianCode(Math.abs(r));
  return r < 0 ? -c : c;
}

/** The uniform grid's code of r = x / scale: round half away from zero, clamped to ±127 (r finite). */
function uniformCode(r: number): number {
  const c = r > 127 ? 127 : r < -127 ? -127 : r;
  return (c + (c < 0 ? -0.5 : 0.5)) | 0;
}

/**
 * Quantises xs[off .. off + n) with `scale` on `grid` into codes[at ..], and returns the squared error
 * Σ (x − fround(level · scale))²: quantizeInt8 and dequantizeInt8 over a row, without a call per value.
 */
export function quantizeRowInt8(xs: ArrayLike<number>, off: number, n: number, scale: number, grid: Int8Grid, codes: Int8Array, at: number): number {
  let e = 0;
  if (scale === 0) {
    for (let i = 0; i < n; i++) { codes[at + i] = 0; e += xs[off + i]! ** 2; }
    return e;
  }
  if (grid === 'uniform') {
    for (let i = 0; i < n; i++) {
      const x = xs[off + i]!, q = uniformCode(x / scale);
      codes[at + i] = q;
      const d = x - Math.fround(q * scale);
      e += d * d;
    }
  } else {
    for (let i = 0; i < n; i++) {
      const x = xs[off + i]!, r = x / scale;
      const c = gaussianCode(r < 0 ? -r : r);
      const q = r < 0 ? -c : c;
      codes[at + i] = q;
      const d = x - Math.fround(q * (0.5 + q * q * INT8_GAUSSIAN_C) * scale);
      e += d * d;
    }
  }
  return e;
}

/** The value an int8 code stands for: fround(level(q) · scale). */
export function dequantizeInt8(q: number, scale: number, grid: Int8Grid = 'uniform'): number {
  return Math.fround(int8Level(q, grid) * scale);
}

/** A (block, head)'s scale as the storage keeps it: negated on the gaussian grid. */
export function storedInt8Scale(scale: number, grid: Int8Grid): number {
  return grid === 'gaussian' ? -scale : scale;
}

/** The scale and grid behind a stored scale (storedInt8Scale's inverse). */
export function int8ScaleOf(stored: number): { scale: number; grid: Int8Grid } {
  return stored < 0 ? { scale: -stored, grid: 'gaussian' } : { scale: stored, grid: 'uniform' };
}



/**
 * Rounding feedback for K's int8 codes under smoothing (PagedKvCacheOptions.smoothK with the rotation).
 * A key's rounding error ε (rotated domain) moves its score by q'·ε, q' = R(λ ⊙ q) the stored query; for
 * queries alike in every channel its mean square is εᵀHε with H ∝ R Λ² Rᵀ, and smoothing puts most of the
 * queries' size on the few directions R·e_c of K's outlier channels (large λ_c). Coding a key's channels in
 * order and pushing each one's error onto the channels not coded yet (GPTQ's update, Frantar et al. 2023,
 * on one row) minimises εᵀHε greedily instead of ‖ε‖², moving K's error out of those directions.
 *
 * H⁻¹ = R Λ⁻² Rᵀ is taken as μ(I + W Δ Wᵀ): μ the median of λ⁻², W = R[:, S] the rotated unit vectors of
 * the channels S whose λ_c⁻² differs from μ by more than `threshold` (relative; at most `maxRank` of them,
 * the largest differences), Δ their relative differences. Every Schur complement GPTQ takes of that matrix
 * is again I + W_F M W_Fᵀ, so the whole update is precomputed as D steps (m_i = Mᵢ wᵢ, a_i = 1 + wᵢ·m_i,
 * Mᵢ₊₁ = Mᵢ − m_i m_iᵀ / a_i, wᵢ = W's row i) and a row costs O(D·|S|). Null when S is empty (no channel
 * stands out): the codes are then plain nearest rounding.
 */
export type KRounding = 'feedback' | 'nearest';

export interface KFeedback {
  /** |S|. */
  readonly rank: number;
  /** W, D × rank row-major. */
  readonly w: Float64Array;
  /** m_i, D × rank row-major. */
  readonly m: Float64Array;
  /** a_i, D. */
  readonly a: Float64Array;
}

export function kFeedback(lam: Float32Array, lamOff: number, signs: Float32Array, soff: number, chunks: readonly number[], threshold = 0.5, maxRank = 16): KFeedback | null {
  let D = 0;
  for (const n of chunks) D += n;
  const inv = Float64Array.from({ length: D }, (_, c) => 1 / lam[lamOff + c]! ** 2);
  const mu = Float64Array.from(inv).sort()[D >> 1]!;
  const S = Array.from({ length: D }, (_, c) => c).filter((c) => Math.abs(inv[c]! / mu - 1) > threshold)
    .sort((x, y) => Math.abs(inv[y]! / mu - 1) - Math.abs(inv[x]! / mu - 1)).slice(0, maxRank);
  const k = S.length;
  if (k === 0) return null;
  const w = new Float64Array(D * k), col = new Float64Array(D);
  S.forEach((c, r) => {
    col.fill(0);
    col[c] = 1;
    rotateInPlace(col, 0, signs, soff, chunks);
    for (let i = 0; i < D; i++) w[i * k + r] = col[i]!;
  });
  const M = new Float64Array(k * k);
  S.forEach((c, r) => { M[r * k + r] = inv[c]! / mu - 1; });
  const m = new Float64Array(D * k), a = new Float64Array(D);
  for (let i = 0; i < D; i++) {
    let ai = 1;
    for (let r = 0; r < k; r++) {
      let s = 0;
      for (let t = 0; t < k; t++) s += M[r * k + t]! * w[i * k + t]!;
      m[i * k + r] = s;
      ai += w[i * k + r]! * s;
    }
    a[i] = ai;
    for (let r = 0; r < k; r++) for (let t = 0; t < k; t++) M[r * k + t]! -= (m[i * k + r]! * m[i * k + t]!) / ai;
  }
  return { rank: k, w, m, a };
}

/**
 * quantizeRowInt8 with K's rounding feedback (kFeedback): each channel is coded after the errors of the
 * channels before it have been pushed onto it. Returns εᵀHε / μ = Σ (errorᵢ² / aᵢ), the loss the feedback
 * minimises, for comparing grids. `z` (length ≥ rank) is scratch.
 */
export function quantizeRowInt8Feedback(xs: ArrayLike<number>, off: number, n: number, scale: number, grid: Int8Grid, codes: Int8Array, at: number, fb: KFeedback, z: Float64Array): number {
  const k = fb.rank, W = fb.w, Mv = fb.m, A = fb.a;
  z.fill(0, 0, k);
  let loss = 0;
  for (let i = 0; i < n; i++) {
    let x = xs[off + i]!;
    for (let r = 0; r < k; r++) x -= W[i * k + r]! * z[r]!;
    let q = 0, deq = 0;
    if (scale !== 0) {
      const rr = x / scale;
      if (grid === 'uniform') { q = uniformCode(rr); deq = Math.fround(q * scale); } else {
        const c = gaussianCode(rr < 0 ? -rr : rr);
        q = rr < 0 ? -c : c;
        deq = Math.fround(q * (0.5 + q * q * INT8_GAUSSIAN_C) * scale);
      }
    }
    codes[at + i] = q;
    const d = x - deq, c = d / A[i]!;
    loss += d * c;
    for (let r = 0; r < k; r++) z[r]! += c * Mv[i * k + r]!;
  }
  return loss;
}
