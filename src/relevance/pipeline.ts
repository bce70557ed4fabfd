/**
 * The relevance-realisation pipeline: options → validated plan → stages → result.
 *
 * ```
 * image ─▶ texture array ─▶ scorers (information, salience, participatory) ─▶ opponent processing
 *       ─▶ allocation (A: water-filling, or B: level DP) ─▶ realised tokens ─▶ LOD attention (varlen)
 * ```
 * Every stage is timed; `latencyTable` compares the stages with the seed's 200 ms plan
 * (texture 10, scoring 30, allocation 5, LOD attention 40, opponent 15 ms, + 100 ms for the LLM,
 * which is not part of this pipeline). `backend` selects the attention backend of the attention
 * stages (participatory scoring, encoder salience, LOD attention); the texture array runs on WebGPU
 * when `backend` (or `textureBackend`) is 'webgpu'; information, opponent and allocation run on
 * the CPU.
 */
import type { BackendName } from '../attention/backend.js';
import { ValueError, checkOptionKeys, optionNames } from '../errors.js';
import type { RgbaImage } from '../viz/png.js';
import { type Allocation, allocateLevels, allocateWaterFill } from './allocate.js';
import { type RgbImage, rgbaToRgb } from './image-ops.js';
import { type LexiconQuery, parseQuery } from './lexicon.js';
import { type OpponentOptions, type OpponentResult, opponentProcess, resolveOpponent } from './opponent.js';
import { type LodAttentionResult, type RealisedTokens, attendRealised, realiseTokens } from './realise.js';
import { type GridOptions, type GridPlan, planGrid } from './regions.js';
import {
  type AttentionInputs, type AttentionScore, informationScore, participatoryFromAttention, participatoryFromEmbeddings,
  checkBandwidth, participatoryFromLexicon, salienceFromAttention, salienceScore,
} from './scorers.js';
import { NUM_TEXTURE_CHANNELS, type TextureArray, computeTexture } from './texture.js';
import { computeTextureGpu } from './texture-gpu.js';

/** A query: free text for the concept lexicon, or embeddings from any encoder. */
export type RelevanceQuery =
  | string
  | { text: Float32Array; patches: Float32Array; dim: number; numHeads?: number; visualGrid?: { rows: number; cols: number } }
  | { attention: AttentionInputs };

/** Options of the whole pipeline. */
export interface RelevanceOptions {
  /** The query (required). */
  query: RelevanceQuery;
  /** Total visual tokens B (default 1600). */
  budget?: number;
  /** 'water-fill' (A, default) or 'levels' (B). */
  allocator?: 'water-fill' | 'levels';
  /** Allocator A: per-region minimum m in tokens (default 64), rounded up to a multiple of `quantum`. */
  min?: number;
  /** Allocator A: per-region maximum M in tokens (default 400), rounded down to a multiple of `quantum`. */
  max?: number;
  /** Allocator A: every region's count is a multiple of this (default 16; 1 for none); the budget must be one too. */
  quantum?: number;
  /** Let regions get 0 tokens: A keeps the top-k regions by ρ; B allows level 0. Default false. */
  allowDrop?: boolean;
  /** Cap each region at its base-patch count n_r (spec's M_r = min(M, n_r)); default false. */
  capByBasePatches?: boolean;
  /** Allocator B: allowed token counts per region, ascending, each > 0 (default [64, 144, 256, 400]). */
  levels?: readonly number[];
  /** Allocator B: 'exact' (Σ tokens = budget, default) or 'at-most' (Σ ≤ budget). */
  levelMode?: 'exact' | 'at-most';
  /** Base patch grid and regions (defaults: see GridOptions). */
  grid?: GridOptions;
  /** The three knobs: scorer weights, temperature, explore (defaults 0.15/0.15/0.7, 0.5, 0.05). */
  opponent?: OpponentOptions;
  /** Lexicon kernel bandwidth σ (default 0.12). */
  bandwidth?: number;
  /** Salience from an encoder's attention instead of the Sobel magnitude. */
  salienceAttention?: AttentionInputs;
  /** Attention backend for the attention stages (default 'auto'). */
  backend?: BackendName;
  /** Where the texture array is computed: 'cpu' or 'webgpu' (default: 'webgpu' when backend is 'webgpu'). */
  textureBackend?: 'cpu' | 'webgpu';
  /** LOD attention: 'per-region' (default), 'with-query', or 'none' to skip. */
  lodAttention?: 'per-region' | 'with-query' | 'none';
  /** Token realisation mode (default 'reencode'). */
  realise?: 'reencode' | 'pool';
  /** Progress callback for long steps: stage name and fraction done. */
  onProgress?: (stage: string, fraction: number) => void;
}

/** A validated plan. */
export interface RelevancePlan {
  /** The base grid and regions for the image size. */
  readonly grid: GridPlan;
  /** The query, as given. */
  readonly query: RelevanceQuery;
  /** The parsed query for a string query; null for embeddings or attention queries. */
  readonly lexicon: LexiconQuery | null;
  /** Total visual tokens, with its default applied. */
  readonly budget: number;
  /** Which allocator runs, with its default applied. */
  readonly allocator: 'water-fill' | 'levels';
  /** A frozen copy of the options (other defaults are applied by the stages). */
  readonly options: Readonly<RelevanceOptions>;
}

/** Stage names, in pipeline order. */
export const STAGES = ['texture', 'scoring', 'opponent', 'allocation', 'lod-attention'] as const;
/** One timed stage of the pipeline (see STAGES). */
export type Stage = (typeof STAGES)[number];
/** The seed's plan per stage, ms (LLM inference: 100 ms, not part of this pipeline). */
export const SEED_PLAN_MS: Readonly<Record<Stage | 'llm', number>> = Object.freeze({ texture: 10, scoring: 30, allocation: 5, 'lod-attention': 40, opponent: 15, llm: 100 });

/** The pipeline's result. */
export interface RelevanceResult {
  /** The plan it ran. */
  plan: RelevancePlan;
  /** The 14-channel texture array per pixel, base patch and region. */
  texture: TextureArray;
  /** The three scorers' outputs: distributions over regions, [R] each (region order). */
  scores: { information: Float64Array; salience: Float64Array; participatory: Float64Array };
  /** Participatory mass per base patch (or visual token), for heatmaps. */
  participatoryTokens: Float64Array;
  /** Opponent processing: the knobs used and ρ over regions. */
  opponent: OpponentResult;
  /** Tokens per region, Σ = budget (or ≤ budget with levelMode 'at-most'). */
  allocation: Allocation;
  /** The realised tokens: pooled features and positions. */
  tokens: RealisedTokens;
  /** LOD attention's output; null when lodAttention is 'none' or no token was allocated. */
  attention: LodAttentionResult | null;
  /** Milliseconds per stage. */
  timings: Record<Stage, number>;
}

function allocate(plan: RelevancePlan, rho: ArrayLike<number>): Allocation {
  const o = plan.options;
  const caps = o.capByBasePatches ? plan.grid.regions.map((r) => r.basePatches) : undefined;
  return plan.allocator === 'water-fill'
    ? allocateWaterFill(rho, { budget: plan.budget, min: o.min, max: o.max, quantum: o.quantum, allowDrop: o.allowDrop, caps })
    : allocateLevels(rho, { budget: plan.budget, levels: o.levels, allowZero: o.allowDrop, mode: o.levelMode, caps });
}

/** The option names of planRelevance (a misspelt `budjet` would run with the default budget). */
const RELEVANCE_OPTION_KEYS = optionNames<RelevanceOptions>({
  query: true, budget: true, allocator: true, min: true, max: true, quantum: true, allowDrop: true, capByBasePatches: true, levels: true,
  levelMode: true, grid: true, opponent: true, bandwidth: true, salienceAttention: true, backend: true, textureBackend: true,
  lodAttention: true, realise: true, onProgress: true,
});

/**
 * Validates everything that can be checked before seeing pixels: image size, grid, query, knobs,
 * and the budget's feasibility for this grid (an allocation of uniform ρ is attempted, so an
 * infeasible budget fails here with its InfeasibleError). With `realise: 'pool'` a region's count must
 * also factor into a grid within its base patches, which depends on the allocation: that is checked
 * when the tokens are realised ('reencode', the default, realises every count). With `allowDrop` and
 * `capByBasePatches` on regions of unequal size, which regions are kept depends on ρ's order, so a budget
 * feasible for uniform ρ can still fail in runRelevance (InfeasibleError 'no-feasible-region-count').
 * Embedding queries are checked against the grid when they are scored.
 */
export function planRelevance(width: number, height: number, options: RelevanceOptions): RelevancePlan {
  if (!options || options.query === undefined) throw new ValueError('query is required', 'query');
  checkOptionKeys(options, RELEVANCE_OPTION_KEYS, 'planRelevance');
  const grid = planGrid(width, height, options.grid);
  const budget = options.budget ?? 1600;
  if (typeof budget !== 'number' || !Number.isFinite(budget) || budget < 0 || !Number.isInteger(budget)) {
    throw new ValueError(`budget must be a finite integer ≥ 0 (tokens), got ${budget}`, 'budget');
  }
  const allocator = options.allocator ?? 'water-fill';
  if (allocator !== 'water-fill' && allocator !== 'levels') throw new ValueError(`allocator must be 'water-fill' or 'levels', got ${String(allocator)}`, 'allocator');
  // Each allocator's own knobs: the other's would be ignored, which reads as accepted.
  const foreign = (allocator === 'levels' ? ['min', 'max', 'quantum'] as const : ['levels', 'levelMode'] as const).filter((k) => options[k] !== undefined);
  if (foreign.length) throw new ValueError(`${foreign.join(', ')} ${foreign.length > 1 ? 'do' : 'does'} nothing with allocator '${allocator}'`, foreign[0]!);
  if (options.levelMode !== undefined && options.levelMode !== 'exact' && options.levelMode !== 'at-most') {
    throw new ValueError(`levelMode must be 'exact' or 'at-most', got ${String(options.levelMode)}`, 'levelMode');
  }
  resolveOpponent(options.opponent);
  let lexicon: LexiconQuery | null = null;
  const q = options.query;
  if (typeof q === 'string') lexicon = parseQuery(q);
  else if (!q || (!('attention' in q) && !('text' in q))) throw new ValueError('query must be a string, {text, patches, dim} embeddings, or {attention}', 'query');
  const lod = options.lodAttention ?? 'per-region';
  if (lod !== 'per-region' && lod !== 'with-query' && lod !== 'none') throw new ValueError(`lodAttention must be 'per-region', 'with-query' or 'none', got ${String(lod)}`, 'lodAttention');
  if (lod === 'with-query' && !lexicon) throw new ValueError("lodAttention 'with-query' needs a text (lexicon) query", 'lodAttention');
  if (options.textureBackend !== undefined && options.textureBackend !== 'cpu' && options.textureBackend !== 'webgpu') {
    throw new ValueError(`textureBackend must be 'cpu' or 'webgpu', got ${String(options.textureBackend)}`, 'textureBackend');
  }
  // Checked here rather than after the texture stage.
  if (options.realise !== undefined && options.realise !== 'reencode' && options.realise !== 'pool') throw new ValueError(`realise must be 'reencode' or 'pool', got ${String(options.realise)}`, 'realise');
  if (options.bandwidth !== undefined) checkBandwidth(options.bandwidth);
  const BACKENDS = ['auto', 'cpu', 'wasm', 'cpu-ts', 'webgpu'];
  if (options.backend !== undefined && !BACKENDS.includes(options.backend as string)) throw new ValueError(`backend must be one of ${BACKENDS.join(', ')}, got ${String(options.backend)}`, 'backend');
  const plan: RelevancePlan = Object.freeze({ grid, query: q, lexicon, budget, allocator, options: Object.freeze({ ...options }) });
  const R = grid.regions.length;
  allocate(plan, new Float64Array(R).fill(1 / R));
  return plan;
}

const now = () => (typeof performance !== 'undefined' ? performance.now() : Date.now());

/** Runs the pipeline on an image (8-bit RGBA or planar float RGB) of the plan's size. */
export async function runRelevance(image: RgbaImage | RgbImage, plan: RelevancePlan): Promise<RelevanceResult> {
  const o = plan.options;
  const progress = o.onProgress ?? (() => undefined);
  // The texture stage (computeTexture / computeTextureGpu) checks the image first, values included.
  const rgb: RgbImage = image.data instanceof Float32Array ? (image as RgbImage) : rgbaToRgb(image as RgbaImage);
  const timings = {} as Record<Stage, number>;
  let t = now();
  const lap = (s: Stage) => { const n = now(); timings[s] = n - t; t = n; progress(s, 1); };

  progress('texture', 0);
  const texture = (o.textureBackend ?? (o.backend === 'webgpu' ? 'webgpu' : 'cpu')) === 'webgpu'
    ? await computeTextureGpu(rgb, plan.grid)
    : computeTexture(rgb, plan.grid);
  lap('texture');

  progress('scoring', 0);
  const information = informationScore(texture);
  const salience = o.salienceAttention
    ? (await salienceFromAttention(o.salienceAttention, plan.grid, { backend: o.backend })).regions
    : salienceScore(texture);
  let part: AttentionScore;
  const q = plan.query;
  if (typeof q === 'string') part = await participatoryFromLexicon(plan.lexicon!, texture, { backend: o.backend, bandwidth: o.bandwidth });
  else if ('attention' in q) part = await participatoryFromAttention(q.attention, plan.grid, { backend: o.backend });
  else part = await participatoryFromEmbeddings(q.text, q.patches, q.dim, plan.grid, { backend: o.backend, numHeads: q.numHeads, visualGrid: q.visualGrid });
  lap('scoring');

  progress('opponent', 0);
  const opponent = opponentProcess(information, salience, part.regions, o.opponent);
  lap('opponent');

  progress('allocation', 0);
  const allocation = allocate(plan, opponent.rho);
  lap('allocation');

  progress('lod-attention', 0);
  const tokens = realiseTokens(texture, allocation.tokens, { mode: o.realise });
  let attention: LodAttentionResult | null = null;
  const lod = o.lodAttention ?? 'per-region';
  if (lod !== 'none' && tokens.count > 0) {
    const queryFeatures = lod === 'with-query' ? lexiconQueryFeatures(plan.lexicon!) : undefined;
    attention = await attendRealised(tokens, { mode: lod, queryFeatures, backend: o.backend });
  }
  lap('lod-attention');
  return {
    plan, texture, scores: { information, salience, participatory: part.regions }, participatoryTokens: part.tokens,
    opponent, allocation, tokens, attention, timings,
  };
}

/** Query tokens of a lexicon query as texture-space features [T, 14] (their prototype targets). */
export function lexiconQueryFeatures(query: LexiconQuery): Float32Array {
  const C = NUM_TEXTURE_CHANNELS;
  const out = new Float32Array(query.tokens.length * C);
  query.tokens.forEach((tok, t) => out.set(tok.target, t * C));
  return out;
}

/** One row of the latency table. */
export interface LatencyRow {
  /** The stage; 'llm' is the seed plan's LLM inference, 'total' sums the stages without it. */
  stage: Stage | 'llm' | 'total';
  /** Measured wall time in ms; null for 'llm' (not part of this pipeline). */
  measuredMs: number | null;
  /** The seed's planned time in ms. */
  planMs: number;
}

/** The per-stage latency table vs the seed's plan, with a total that excludes the LLM. */
export function latencyTable(timings: Record<Stage, number>): LatencyRow[] {
  const rows: LatencyRow[] = STAGES.map((s) => ({ stage: s, measuredMs: timings[s] ?? 0, planMs: SEED_PLAN_MS[s] }));
  rows.push({ stage: 'llm', measuredMs: null, planMs: SEED_PLAN_MS.llm });
  rows.push({ stage: 'total', measuredMs: STAGES.reduce((s, k) => s + (timings[k] ?? 0), 0), planMs: STAGES.reduce((s, k) => s + SEED_PLAN_MS[k], 0) });
  return rows;
}

/** Formats the latency table as fixed-width text. */
export function formatLatencyTable(rows: readonly LatencyRow[]): string {
  const lines = ['stage           measured ms   seed plan ms'];
  for (const r of rows) {
    const m = r.measuredMs === null ? '(not ours)' : r.measuredMs.toFixed(1);
    lines.push(`${r.stage.padEnd(15)} ${m.padStart(11)}   ${String(r.planMs).padStart(12)}`);
  }
  return lines.join('\n');
}

/**
 * Relevance precision: the share of the budget on the regions an object occupies. A region counts
 * as the object's when the object covers at least `minCover` of it (default 0.1).
 */
export function relevancePrecision(tokens: ArrayLike<number>, grid: GridPlan, mask: Uint8Array, minCover = 0.1): { precision: number; targetRegions: number[]; uniformPrecision: number } {
  if (mask.length !== grid.imageWidth * grid.imageHeight) throw new ValueError(`mask must be ${grid.imageWidth}×${grid.imageHeight}`, 'mask');
  const target = regionCover(grid, mask).map((c, r) => (c >= minCover ? r : -1)).filter((r) => r >= 0);
  let tot = 0, on = 0;
  for (let r = 0; r < tokens.length; r++) { tot += tokens[r]!; if (target.includes(r)) on += tokens[r]!; }
  return { precision: tot > 0 ? on / tot : 0, targetRegions: target, uniformPrecision: target.length / grid.regions.length };
}

/** Fraction of each region's pixels that the mask covers. */
export function regionCover(grid: GridPlan, mask: Uint8Array): number[] {
  const W = grid.imageWidth;
  return grid.regions.map((reg) => {
    const { x, y, width, height } = reg.imageRect;
    const x0 = Math.round(x), x1 = Math.round(x + width), y0 = Math.round(y), y1 = Math.round(y + height);
    let c = 0;
    for (let yy = y0; yy < y1; yy++) for (let xx = x0; xx < x1; xx++) c += mask[yy * W + xx]!;
    return c / Math.max(1, (x1 - x0) * (y1 - y0));
  });
}
