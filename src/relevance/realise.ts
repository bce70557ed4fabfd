/**
 * Realising tokens (spec relevance.md §4.6): a region allocated t tokens becomes an a × b grid of
 * tokens with a·b = t (square when t is a square and the region is; otherwise the factor pair
 * closest to the region's aspect ratio), each the adaptive average pool of the region's features:
 *
 * - 'reencode' (default): pool the region's per-pixel texture maps, like re-encoding the crop at
 *   patch·s px; a crop smaller than its token grid is upsampled, as re-encoding it would be (adaptive
 *   pooling then repeats pixels), so every count has a grid;
 * - 'pool': pool the region's base-patch features (texture patches or given patch embeddings;
 *   needs a ≤ patch rows and b ≤ patch columns, spec §4.6's s² ≤ n_r: a count with no such factor pair
 *   is a ShapeError when realised).
 *
 * Position ids are token centres in base-grid coordinates (row, col), also given as integers scaled
 * by a common factor for M-RoPE. Regions are concatenated in raster order; dropped regions (t = 0)
 * contribute nothing. Attention over the result runs in one `attentionVarlen` call: per-region self
 * attention (cu_seqlens at region boundaries) or one sequence of all regions plus the query tokens.
 */
import './backends.js';
import { attentionVarlen } from '../attention/attention.js';
import type { BackendName } from '../attention/backend.js';
import { ShapeError, ValueError } from '../errors.js';
import { Tensor, mulberry32 } from '../tensor/tensor.js';
import type { GridPlan } from './regions.js';
import type { TextureArray } from './texture.js';

/** Adaptive-average-pool start/end (PyTorch): [⌊i·L/n⌋, ⌈(i+1)·L/n⌉). */
export function adaptiveBounds(L: number, n: number, i: number): [number, number] {
  return [Math.floor((i * L) / n), Math.ceil(((i + 1) * L) / n)];
}

/**
 * The token grid a × b for t tokens in a region of aspect `heightOverWidth`: factor pairs of t
 * with a ≤ maxRows and b ≤ maxCols, closest in log-aspect; ties prefer fewer rows. Null if none fits.
 */
export function tokenGridShape(t: number, heightOverWidth: number, maxRows = Infinity, maxCols = Infinity): [number, number] | null {
  let best: [number, number] | null = null, bestD = Infinity;
  const target = Math.log(heightOverWidth);
  for (let a = 1; a <= t; a++) {
    if (t % a !== 0) continue;
    const b = t / a;
    if (a > maxRows || b > maxCols) continue;
    const d = Math.abs(Math.log(a / b) - target);
    if (d < bestD - 1e-12) { bestD = d; best = [a, b]; }
  }
  return best;
}

/** Options for {@link realiseTokens}. */
export interface RealiseOptions {
  /** 'reencode' or 'pool' (see the module comment); default 'pool' with patchEmbeddings, else 'reencode'. */
  mode?: 'reencode' | 'pool';
  /** Base-patch embeddings [gridRows·gridCols, dim] to pool instead of the texture (mode 'pool'). */
  patchEmbeddings?: { data: Float32Array; dim: number };
  /**
   * Integer position ids = round(position · positionScale). Default 8, raised (in steps of 8) where a region's
   * token grid is finer than its base patches, so that every token's ids stay distinct.
   */
  positionScale?: number;
}

/** The realised tokens, in raster order of regions. */
export interface RealisedTokens {
  /** Number of tokens N (= Σ t_r). */
  count: number;
  /** Feature dimension F. */
  dim: number;
  /** Token features [N, F]. */
  features: Float32Array;
  /** Token centres in base-grid units [N, 2] (row, col). */
  positions: Float32Array;
  /** round(positions · positionScale) [N, 2]. */
  positionIds: Int32Array;
  /** Factor from positions to positionIds (RealiseOptions.positionScale; by default 8, or larger when needed). */
  positionScale: number;
  /** Region of each token [N]. */
  regionOf: Int32Array;
  /** Token grid per region ([0, 0] when dropped). */
  shapes: Array<[number, number]>;
  /** Cumulative token counts over non-empty regions (varlen boundaries). */
  cuSeqlens: Int32Array;
  /** Regions in the order of cuSeqlens. */
  sequenceRegions: number[];
}

/** Pools features for the allocation; see the module comment. */
export function realiseTokens(texture: TextureArray, tokens: ArrayLike<number>, options: RealiseOptions = {}): RealisedTokens {
  const plan: GridPlan = texture.plan;
  const R = plan.regions.length;
  if (tokens.length !== R) throw new ShapeError(`allocation has ${tokens.length} regions, the grid has ${R}`, 'tokens', 'regions');
  const mode = options.mode ?? (options.patchEmbeddings ? 'pool' : 'reencode');
  if (mode !== 'reencode' && mode !== 'pool') throw new ValueError(`mode must be 'reencode' or 'pool', got ${String(mode)}`, 'mode');
  if (mode === 'reencode' && options.patchEmbeddings) throw new ValueError("patchEmbeddings need mode 'pool'", 'mode');
  if (options.positionScale !== undefined && (!Number.isInteger(options.positionScale) || options.positionScale < 1)) {
    throw new ValueError(`positionScale must be an integer ≥ 1, got ${options.positionScale}`, 'positionScale');
  }
  const g = plan.gridRows * plan.gridCols;
  let src: Float32Array, F: number, layout: 'planar' | 'rows';
  if (options.patchEmbeddings) {
    const { data, dim } = options.patchEmbeddings;
    if (!Number.isInteger(dim) || dim < 1 || data.length !== g * dim) throw new ShapeError(`patchEmbeddings must be [${g}, dim] (the base grid), got ${data.length} values for dim ${dim}`, 'patchEmbeddings', 'tokens');
    src = data; F = dim; layout = 'rows';
  } else {
    src = mode === 'pool' ? texture.patches : texture.pixels; F = texture.channels.length; layout = 'planar';
  }
  let N = 0;
  for (let r = 0; r < R; r++) {
    const t = tokens[r]!;
    if (!Number.isInteger(t) || t < 0) throw new ValueError(`tokens[${r}] must be an integer ≥ 0, got ${t}`, 'tokens');
    N += t;
  }
  // Default scale: 8, raised in steps of 8 where a region holds more tokens a side than base patches (a 14×14 image
  // at 400 tokens put 20 rows on 2.5 patches): its centres are then pr/a patches apart, and the ids stay distinct
  // when that times the scale is at least 2.
  let scale = options.positionScale ?? 8;
  if (options.positionScale === undefined) {
    for (const reg of plan.regions) {
      const t = tokens[reg.index]!;
      if (t === 0) continue;
      const pr = reg.patchRow1 - reg.patchRow0, pc = reg.patchCol1 - reg.patchCol0;
      const sh = tokenGridShape(t, pr / pc);
      if (!sh) continue; // 'pool' reports it below
      const need = 2 * Math.max(sh[0] / pr, sh[1] / pc);
      if (need > scale) scale = 8 * Math.ceil(need / 8);
    }
  }
  const features = new Float32Array(N * F), positions = new Float32Array(N * 2), positionIds = new Int32Array(N * 2), regionOf = new Int32Array(N);
  const shapes: Array<[number, number]> = [];
  const cu: number[] = [0];
  const seqRegions: number[] = [];
  const p = plan.featurePatch;
  let o = 0;
  for (const reg of plan.regions) {
    const t = tokens[reg.index]!;
    if (t === 0) { shapes.push([0, 0]); continue; }
    const pr = reg.patchRow1 - reg.patchRow0, pc = reg.patchCol1 - reg.patchCol0;
    const [unitRows, unitCols, off0, off1, stride, planeSize] = mode === 'pool'
      ? [pr, pc, reg.patchRow0, reg.patchCol0, plan.gridCols, g]
      : [pr * p, pc * p, reg.patchRow0 * p, reg.patchCol0 * p, plan.workWidth, plan.workWidth * plan.workHeight];
    // 'reencode' upsamples a crop smaller than its grid (see the module comment); 'pool' cannot.
    const shape = mode === 'pool' ? tokenGridShape(t, pr / pc, unitRows, unitCols) : tokenGridShape(t, pr / pc);
    if (!shape) throw new ShapeError(`region ${reg.index} cannot hold ${t} tokens as a grid within its ${unitRows}×${unitCols} base patches (mode 'pool'); use mode 'reencode', or caps or levels whose counts factor within the region`, 'tokens', 'regions');
    shapes.push(shape);
    const [a, b] = shape;
    for (let i = 0; i < a; i++) {
      const [y0, y1] = adaptiveBounds(unitRows, a, i);
      for (let j = 0; j < b; j++) {
        const [x0, x1] = adaptiveBounds(unitCols, b, j);
        const cnt = (y1 - y0) * (x1 - x0);
        for (let c = 0; c < F; c++) {
          let s = 0;
          for (let y = y0; y < y1; y++) {
            const rowOff = (off0 + y) * stride + off1;
            if (layout === 'planar') { const base = c * planeSize + rowOff; for (let x = x0; x < x1; x++) s += src[base + x]!; }
            else for (let x = x0; x < x1; x++) s += src[(rowOff + x) * F + c]!;
          }
          features[o * F + c] = s / cnt;
        }
        const rowPos = reg.patchRow0 + ((i + 0.5) * pr) / a, colPos = reg.patchCol0 + ((j + 0.5) * pc) / b;
        positions[o * 2] = rowPos; positions[o * 2 + 1] = colPos;
        positionIds[o * 2] = Math.round(rowPos * scale); positionIds[o * 2 + 1] = Math.round(colPos * scale);
        regionOf[o] = reg.index;
        o++;
      }
    }
    cu.push(o);
    seqRegions.push(reg.index);
  }
  return { count: N, dim: F, features, positions, positionIds, positionScale: scale, regionOf, shapes, cuSeqlens: Int32Array.from(cu), sequenceRegions: seqRegions };
}

/** Options for {@link attendRealised}. */
export interface LodAttentionOptions {
  /** 'per-region' (default): self-attention within each region; 'with-query': one sequence of all tokens + query tokens. */
  mode?: 'per-region' | 'with-query';
  /** Query token features [T, F] (same feature space as the tokens) for 'with-query'. */
  queryFeatures?: Float32Array;
  /** Heads of the projections (default 4). */
  numHeads?: number;
  /** Head dim of the projections, 1–256 (default 32). */
  headDim?: number;
  /** Seed of the fixed random q/k/v projections (default 1234). */
  seed?: number;
  /** Attention backend (default 'auto'). */
  backend?: BackendName;
}

/** Output of the LOD attention stage. */
export interface LodAttentionResult {
  /** Attention output [N (+T), numHeads, headDim]. */
  out: Tensor;
  /** Sequence boundaries used: per region (RealisedTokens.cuSeqlens), or [0, N + T] with 'with-query'. */
  cuSeqlens: Int32Array;
  /** Heads used. */
  numHeads: number;
  /** Head dim used. */
  headDim: number;
  /** The projected inputs [N (+T), numHeads, headDim] (for inspection and tests). */
  q: Tensor;
  /** Projected keys, laid out as q. */
  k: Tensor;
  /** Projected values, laid out as q. */
  v: Tensor;
}

/**
 * Runs attention over the realised tokens in one varlen call. Features are standardised over the
 * tokens and projected to q, k, v by fixed seeded Gaussian projections (a stand-in for a model's
 * layer when only texture features exist).
 */
export async function attendRealised(tokens: RealisedTokens, options: LodAttentionOptions = {}): Promise<LodAttentionResult> {
  const H = options.numHeads ?? 4, D = options.headDim ?? 32;
  if (!Number.isInteger(H) || H < 1) throw new ValueError(`numHeads must be an integer ≥ 1, got ${H}`, 'numHeads');
  if (!Number.isInteger(D) || D < 1 || D > 256) throw new ValueError(`headDim must be an integer in 1..256, got ${D}`, 'headDim');
  const mode = options.mode ?? 'per-region';
  if (mode !== 'per-region' && mode !== 'with-query') throw new ValueError(`mode must be 'per-region' or 'with-query', got ${String(mode)}`, 'mode');
  const F = tokens.dim;
  let feats = tokens.features, N = tokens.count;
  if (mode === 'with-query') {
    const qf = options.queryFeatures;
    if (!qf || qf.length === 0 || qf.length % F !== 0) throw new ShapeError(`queryFeatures must be [T, ${F}] with T ≥ 1`, 'queryFeatures', 'dim');
    const all = new Float32Array(feats.length + qf.length);
    all.set(feats); all.set(qf, feats.length);
    feats = all; N += qf.length / F;
  }
  if (N === 0) throw new ValueError('nothing to attend: every region was dropped', 'tokens');
  // Standardise per feature over the tokens.
  const mean = new Float64Array(F), sd = new Float64Array(F);
  for (let i = 0; i < N; i++) for (let c = 0; c < F; c++) mean[c] += feats[i * F + c]! / N;
  for (let i = 0; i < N; i++) for (let c = 0; c < F; c++) sd[c] += (feats[i * F + c]! - mean[c]!) ** 2 / N;
  const rnd = mulberry32(options.seed ?? 1234);
  const proj = () => Float32Array.from({ length: F * H * D }, () => {
    let u = 0; while (u === 0) u = rnd();
    return (Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rnd())) / Math.sqrt(F);
  });
  const wq = proj(), wk = proj(), wv = proj();
  const q = new Float32Array(N * H * D), k = new Float32Array(N * H * D), v = new Float32Array(N * H * D);
  const x = new Float32Array(F);
  for (let i = 0; i < N; i++) {
    for (let c = 0; c < F; c++) x[c] = (feats[i * F + c]! - mean[c]!) / Math.sqrt(sd[c]! + 1e-6);
    for (let o = 0; o < H * D; o++) {
      let sq = 0, sk = 0, sv = 0;
      for (let c = 0; c < F; c++) { const xc = x[c]!, w = c * H * D + o; sq += xc * wq[w]!; sk += xc * wk[w]!; sv += xc * wv[w]!; }
      q[i * H * D + o] = sq; k[i * H * D + o] = sk; v[i * H * D + o] = sv;
    }
  }
  const cu = mode === 'per-region' ? tokens.cuSeqlens : Int32Array.from([0, N]);
  const Q = new Tensor(q, [N, H, D]), K = new Tensor(k, [N, H, D]), V = new Tensor(v, [N, H, D]);
  const res = await attentionVarlen(Q, K, V, { cuSeqlensQ: cu, backend: options.backend });
  return { out: res.out, cuSeqlens: cu, numHeads: H, headDim: D, q: Q, k: K, v: V };
}
