/**
 * Scorers (spec relevance.md §4.2). Each returns a distribution over regions, p_r = (x_r + ε)/Σ(x + ε)
 * with ε = 1e-6.
 *
 * - information (propositional): entropy of a 16-bin luminance histogram per region, / 4 bits;
 * - salience (perspectival): mean Sobel magnitude per region, or the attention each region receives
 *   from an encoder's CLS token (or the mean over all query rows) when its q/k are given;
 * - participatory (query coupling): the attention mass that the query tokens put on each visual
 *   token, averaged over heads and query tokens, renormalised over the visual tokens once, then
 *   summed per region. Computed with the attention kernels: the forward pass's log-sum-exp, then a
 *   column-sum pass (`columnSums`), never an Sq × Sk probability matrix.
 */
import './backends.js';
import { columnSums } from '../attention/capture.js';
import type { BackendName } from '../attention/backend.js';
import { ShapeError, ValueError } from '../errors.js';
import type { Mask } from '../masks/mask.js';
import { Tensor } from '../tensor/tensor.js';
import type { LexiconQuery } from './lexicon.js';
import type { GridPlan } from './regions.js';
import { CH, NUM_TEXTURE_CHANNELS, type TextureArray } from './texture.js';

/** ε of the spec's normalisation. */
export const SCORE_EPS = 1e-6;

/** p_r = (x_r + ε) / Σ (x + ε). Throws ValueError for negative or non-finite x. */
export function toDistribution(x: ArrayLike<number>, argument = 'scores'): Float64Array {
  const out = new Float64Array(x.length);
  let s = 0;
  for (let i = 0; i < x.length; i++) {
    const v = x[i]!;
    if (!Number.isFinite(v) || v < 0) throw new ValueError(`${argument}[${i}] must be finite and ≥ 0, got ${v}`, argument);
    out[i] = v + SCORE_EPS;
    s += out[i]!;
  }
  for (let i = 0; i < out.length; i++) out[i] = out[i]! / s;
  return out;
}

/** Raw information score per region: entropy (bits) of a 16-bin histogram of L* / 100, divided by 4. */
export function informationRaw(texture: TextureArray): Float64Array {
  const { plan, pixels } = texture;
  const W = plan.workWidth, H = plan.workHeight, n = W * H, p = plan.featurePatch;
  const L = pixels.subarray(CH.lab_l * n, (CH.lab_l + 1) * n);
  const R = plan.regions.length;
  const hist = new Float64Array(R * 16);
  for (let y = 0; y < H; y++) {
    const pr = Math.floor(y / p) * plan.gridCols;
    for (let x = 0; x < W; x++) {
      const r = plan.patchRegion[pr + Math.floor(x / p)]!;
      const bin = Math.min(15, Math.max(0, Math.floor(L[y * W + x]! * 16)));
      hist[r * 16 + bin] += 1;
    }
  }
  const out = new Float64Array(R);
  for (let r = 0; r < R; r++) {
    let tot = 0;
    for (let b = 0; b < 16; b++) tot += hist[r * 16 + b]!;
    let h = 0;
    for (let b = 0; b < 16; b++) { const q = hist[r * 16 + b]! / tot; if (q > 0) h -= q * Math.log2(q); }
    out[r] = h / 4;
  }
  return out;
}

/** Information scorer: distribution over regions. */
export function informationScore(texture: TextureArray): Float64Array {
  return toDistribution(informationRaw(texture), 'information');
}

/** Salience from the texture: mean Sobel magnitude per region, as a distribution. */
export function salienceScore(texture: TextureArray): Float64Array {
  const R = texture.plan.regions.length;
  return toDistribution(texture.regions.subarray(CH.sobel_mag * R, (CH.sobel_mag + 1) * R), 'salience');
}

/** The grid of visual tokens of an encoder (raster order), for mapping tokens to regions. */
export interface VisualGrid {
  /** Visual-token rows. */
  rows: number;
  /** Visual-token columns. */
  cols: number;
}

/** Sums per-visual-token mass into regions: each token goes to the region holding its centre. */
export function tokensToRegions(mass: ArrayLike<number>, grid: VisualGrid, plan: GridPlan): Float64Array {
  if (mass.length !== grid.rows * grid.cols) throw new ShapeError(`${mass.length} visual tokens do not fill a ${grid.rows}×${grid.cols} grid`, 'visualGrid', 'tokens');
  const out = new Float64Array(plan.regions.length);
  for (let i = 0; i < grid.rows; i++) {
    const pr = Math.min(plan.gridRows - 1, Math.floor(((i + 0.5) * plan.gridRows) / grid.rows));
    for (let j = 0; j < grid.cols; j++) {
      const pc = Math.min(plan.gridCols - 1, Math.floor(((j + 0.5) * plan.gridCols) / grid.cols));
      out[plan.patchRegion[pr * plan.gridCols + pc]!] += mass[i * grid.cols + j]!;
    }
  }
  return out;
}

/** Attention inputs of one layer for the participatory or salience scorer. */
export interface AttentionInputs {
  /** Queries [1, seqLenQ, numHeads, headDim] (BSHD), RoPE already applied. */
  q: Tensor;
  /** Keys [1, seqLenK, numKvHeads, headDim]; GQA uses every query head with its shared key head. */
  k: Tensor;
  /** Query rows T = [start, end) (the text tokens, without padding or special tokens). */
  queryRows: [number, number];
  /** Key positions of the visual tokens, [start, end), raster order over `visualGrid`. */
  visualSpan: [number, number];
  /** The visual tokens' grid (default: the plan's base grid). */
  visualGrid?: VisualGrid;
  /** The model's mask (e.g. causal); its rows are softmaxed over all visible keys. */
  mask?: Mask | null;
  /** Shorthand for a causal mask (bottom-right aligned when seqLenQ ≠ seqLenK), intersected with `mask`. Default false. */
  causal?: boolean;
  /** Softmax scale (default 1/√headDim). */
  scale?: number;
}

/** Options shared by the attention-based scorers. */
export interface ScorerRunOptions {
  /** Attention backend for the LSE forward pass ('auto', 'wasm', 'cpu-ts', 'webgpu'). */
  backend?: BackendName;
}

/** Result of an attention-based scorer. */
export interface AttentionScore {
  /** Distribution over regions. */
  regions: Float64Array;
  /** Renormalised mass per visual token (sums to 1). */
  tokens: Float64Array;
}

async function attentionMass(inp: AttentionInputs, plan: GridPlan, opts: ScorerRunOptions, what: string): Promise<AttentionScore> {
  const { q, k } = inp;
  if (q.rank !== 4 || q.shape[0] !== 1) throw new ShapeError(`${what}: q must be [1, seqLenQ, numHeads, headDim], got [${q.shape.join(', ')}]`, 'q', 'batch');
  if (k.rank !== 4 || k.shape[0] !== 1) throw new ShapeError(`${what}: k must be [1, seqLenK, numKvHeads, headDim], got [${k.shape.join(', ')}]`, 'k', 'batch');
  const Sq = q.shape[1]!, Sk = k.shape[1]!, H = q.shape[2]!;
  for (const key of ['queryRows', 'visualSpan'] as const) {
    const r = inp[key];
    if (!r || typeof r !== 'object' || r.length !== 2) throw new ShapeError(`${what}: ${key} must be a [start, end) pair, got ${JSON.stringify(r)}`, key, key === 'queryRows' ? 'seqLenQ' : 'seqLenK');
  }
  const [t0, t1] = inp.queryRows;
  if (!Number.isInteger(t0) || !Number.isInteger(t1) || t0 < 0 || t1 > Sq || t0 >= t1) throw new ShapeError(`queryRows [${t0}, ${t1}) must be a non-empty range inside 0..${Sq}`, 'queryRows', 'seqLenQ');
  const [v0, v1] = inp.visualSpan;
  if (!Number.isInteger(v0) || !Number.isInteger(v1) || v0 < 0 || v1 > Sk || v0 >= v1) throw new ShapeError(`visualSpan [${v0}, ${v1}) must be a non-empty range inside 0..${Sk}`, 'visualSpan', 'seqLenK');
  const grid = inp.visualGrid ?? { rows: plan.gridRows, cols: plan.gridCols };
  if (!grid || !Number.isInteger(grid.rows) || !Number.isInteger(grid.cols) || grid.rows < 1 || grid.cols < 1) {
    throw new ShapeError(`visualGrid must have positive integer rows and cols, got ${JSON.stringify(grid)}`, 'visualGrid', 'tokens');
  }
  if (grid.rows * grid.cols !== v1 - v0) throw new ShapeError(`visualSpan holds ${v1 - v0} tokens but visualGrid is ${grid.rows}×${grid.cols}`, 'visualGrid', 'tokens');
  const sums = await columnSums(q, k, { queryStart: t0, queryEnd: t1, mask: inp.mask, causal: inp.causal, scale: inp.scale, backend: opts.backend });
  const d = sums.data as Float32Array;
  // rel_j = (1/(H·|T|)) Σ_h Σ_i P; then renormalise once over the visual tokens.
  const nV = v1 - v0;
  const rel = new Float64Array(nV);
  for (let h = 0; h < H; h++) for (let j = 0; j < nV; j++) rel[j] += d[h * Sk + v0 + j]! / (H * (t1 - t0));
  let tot = 0;
  for (let j = 0; j < nV; j++) tot += rel[j]!;
  if (Number.isNaN(tot)) throw new ValueError(`${what}: the attention mass is NaN (q or k holds a NaN or an infinity)`, 'q');
  if (!(tot > 0)) throw new ValueError(`${what}: the query rows put no attention on the visual tokens (all masked?)`, 'visualSpan');
  for (let j = 0; j < nV; j++) rel[j] = rel[j]! / tot;
  return { tokens: rel, regions: toDistribution(tokensToRegions(rel, grid, plan), what) };
}

/**
 * Participatory scorer from a model layer's q and k (spec §4.2): the mass the text rows put on each
 * visual token, averaged over heads and text tokens, renormalised over the visual span, summed per
 * region. Memory O(seqLenK) per head; no Sq × Sk matrix.
 */
export async function participatoryFromAttention(inputs: AttentionInputs, plan: GridPlan, options: ScorerRunOptions = {}): Promise<AttentionScore> {
  return attentionMass(inputs, plan, options, 'participatory');
}

/**
 * Salience from an encoder layer's attention: the mass received from the CLS row (`queryRows` =
 * [cls, cls + 1], VisionZip/PruMerge) or the mean over all rows (SigLIP, no CLS).
 */
export async function salienceFromAttention(inputs: AttentionInputs, plan: GridPlan, options: ScorerRunOptions = {}): Promise<AttentionScore> {
  return attentionMass(inputs, plan, options, 'salience');
}

/**
 * Standalone participatory variant from embeddings (no LLM): q = text·W_Q, k = patch·W_K, softmax over
 * the patches only. `text` [T, D] and `patches` [gridRows·gridCols or visualGrid tokens, D] are
 * row-major; `numHeads` splits D (default 1). Projections default to the identity.
 */
export async function participatoryFromEmbeddings(
  text: Float32Array, patches: Float32Array, dim: number, plan: GridPlan,
  options: ScorerRunOptions & { numHeads?: number; wq?: Float32Array; wk?: Float32Array; visualGrid?: VisualGrid; scale?: number } = {},
): Promise<AttentionScore> {
  if (!Number.isInteger(dim) || dim < 1) throw new ValueError(`dim must be a positive integer, got ${dim}`, 'dim');
  if (text.length % dim !== 0 || text.length === 0) throw new ShapeError(`text has ${text.length} values, not a non-empty multiple of dim ${dim}`, 'text', 'dim');
  if (patches.length % dim !== 0 || patches.length === 0) throw new ShapeError(`patches has ${patches.length} values, not a non-empty multiple of dim ${dim}`, 'patches', 'dim');
  const H = options.numHeads ?? 1;
  if (!Number.isInteger(H) || H < 1 || dim % H !== 0) throw new ValueError(`numHeads must divide dim (${dim}), got ${H}`, 'numHeads');
  const project = (x: Float32Array, w: Float32Array | undefined, name: string) => {
    if (!w) return x;
    if (w.length !== dim * dim) throw new ShapeError(`${name} must be [dim, dim] = ${dim * dim} values, got ${w.length}`, name, 'dim');
    const n = x.length / dim, out = new Float32Array(x.length);
    for (let i = 0; i < n; i++) for (let o = 0; o < dim; o++) {
      let s = 0;
      for (let c = 0; c < dim; c++) s += x[i * dim + c]! * w[c * dim + o]!;
      out[i * dim + o] = s;
    }
    return out;
  };
  const T = text.length / dim, N = patches.length / dim;
  const q = Tensor.fromValues(project(text, options.wq, 'wq'), [1, T, H, dim / H]);
  const k = Tensor.fromValues(project(patches, options.wk, 'wk'), [1, N, H, dim / H]);
  const grid = options.visualGrid ?? { rows: plan.gridRows, cols: plan.gridCols };
  return attentionMass({ q, k, queryRows: [0, T], visualSpan: [0, N], visualGrid: grid, scale: options.scale }, plan, options, 'participatory');
}

/** Options for {@link participatoryFromLexicon}. */
export interface LexiconScoreOptions extends ScorerRunOptions {
  /** Kernel bandwidth σ in normalised texture units (default 0.12). */
  bandwidth?: number;
}

/** The lexicon kernel bandwidth σ: a finite number > 0 (ValueError naming `bandwidth`). */
export function checkBandwidth(bandwidth: number): void {
  if (!(typeof bandwidth === 'number' && bandwidth > 0 && Number.isFinite(bandwidth))) throw new ValueError(`bandwidth must be a finite number > 0, got ${bandwidth}`, 'bandwidth');
}

/**
 * Query keys/values for a lexicon query, as an attention problem whose logits are a Gaussian
 * kernel in texture space: logit(t, j) = −Σ_c w_tc (f_jc − μ_tc)² / (2σ²) + const_t, written as a dot
 * product q_t·k_j with q_t = [2 w_t μ_t, −w_t], k_j = [f_j, f_j²] (2C dims) and scale 1/(2σ²). The
 * per-token constant cancels in the softmax, so the kernels compute the Gaussian kernel exactly.
 */
export function lexiconAttentionInputs(query: LexiconQuery, texture: TextureArray, bandwidth = 0.12): { q: Tensor; k: Tensor; scale: number } {
  checkBandwidth(bandwidth);
  const C = NUM_TEXTURE_CHANNELS, D = 2 * C;
  const T = query.tokens.length;
  const g = texture.plan.gridRows * texture.plan.gridCols;
  const qv = new Float32Array(T * D);
  query.tokens.forEach((tok, t) => {
    for (let c = 0; c < C; c++) { qv[t * D + c] = 2 * tok.weight[c]! * tok.target[c]!; qv[t * D + C + c] = -tok.weight[c]!; }
  });
  const kv = new Float32Array(g * D);
  for (let j = 0; j < g; j++) for (let c = 0; c < C; c++) {
    const f = texture.patches[c * g + j]!;
    kv[j * D + c] = f; kv[j * D + C + c] = f * f;
  }
  return { q: Tensor.fromValues(qv, [1, T, 1, D]), k: Tensor.fromValues(kv, [1, g, 1, D]), scale: 1 / (2 * bandwidth * bandwidth) };
}

/** Participatory scorer for a lexicon query over the base patches (see {@link lexiconAttentionInputs}). */
export async function participatoryFromLexicon(query: LexiconQuery, texture: TextureArray, options: LexiconScoreOptions = {}): Promise<AttentionScore> {
  const { q, k, scale } = lexiconAttentionInputs(query, texture, options.bandwidth ?? 0.12);
  const g = texture.plan.gridRows * texture.plan.gridCols;
  return attentionMass({ q, k, queryRows: [0, query.tokens.length], visualSpan: [0, g], scale }, texture.plan, options, 'participatory');
}
